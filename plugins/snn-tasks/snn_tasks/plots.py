"""What ``snn train`` draws into ``OUTPUT/plots/`` after a run, and its ``--logger`` choice.

- ``curves.png``: loss and accuracy per epoch, read back from the run's CSV log
  (``logs/version_N/metrics.csv``): training values averaged over each epoch's steps, validation
  values as logged once per epoch, the test values as a mark after the last epoch.
- ``raster.png`` (the memory task): the trained network's hidden spikes for the first test
  sequence, with the input spikes above them and the store and recall periods shaded, so one can
  see what the network does between storing a bit and recalling it.

Plotting needs matplotlib (``pip install 'snncore[plot]'``); without it the run succeeds and one
line says that the plots were skipped.  ``--logger tensorboard`` adds Lightning's
``TensorBoardLogger`` (``OUTPUT/tensorboard/version_N``; ``pip install 'snn-tasks[tensorboard]'``)
beside the CSV log, which the curves and ``metrics.json`` keep reading.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

#: ``--logger`` values: the CSV log is always written; ``tensorboard`` adds event files.
LOGGERS = ("csv", "tensorboard")

LOGGER_OPTION = click.Option(
    ["--logger"],
    type=click.Choice(LOGGERS),
    default="csv",
    show_default=True,
    help="csv: Lightning's CSV log only; tensorboard: event files in OUTPUT/tensorboard too.",
)


def make_loggers(output: Path, logger: str) -> list[Any]:
    """The Lightning loggers of a run: the CSV log (``logs/``), and TensorBoard's if asked."""
    import lightning

    loggers: list[Any] = [lightning.pytorch.loggers.CSVLogger(output, name="logs")]
    if logger == "tensorboard":
        try:
            import tensorboard  # noqa: F401  (Lightning falls back to tensorboardX silently)
        except ImportError:
            from snn_tasks.training import TrainingError

            raise TrainingError(
                "--logger tensorboard needs tensorboard: pip install 'snn-tasks[tensorboard]'"
            ) from None
        loggers.append(lightning.pytorch.loggers.TensorBoardLogger(output, name="tensorboard"))
    return loggers


def epoch_curves(metrics_csv: Path) -> dict[str, dict[int, float]]:
    """``{metric: {epoch: value}}`` from a Lightning CSV log; a metric logged at several steps
    of an epoch (``train_loss``) is averaged over them."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(metrics_csv, newline="") as file:
        for row in csv.DictReader(file):
            epoch = row.get("epoch")
            if not epoch:
                continue
            for name, value in row.items():
                if name in ("epoch", "step") or value in ("", None):
                    continue
                sums[name][int(float(epoch))].append(float(value))
    return {
        name: {epoch: sum(values) / len(values) for epoch, values in sorted(by_epoch.items())}
        for name, by_epoch in sums.items()
    }


def curves_figure(curves: dict[str, dict[int, float]], title: str = "") -> Any:
    """Loss (left) and accuracy (right) per epoch, train, validation and test."""
    from snncore.plot import require_matplotlib

    require_matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.2), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, kind in zip(axes, ("loss", "accuracy"), strict=True):
        for stage, style in (("train", "-o"), ("val", "-s")):
            values = curves.get(f"{stage}_{kind}", {})
            if values:
                (line,) = ax.plot(list(values), list(values.values()), style, label=stage, ms=3)
                line.set_gid(f"{stage}_{kind}")
        test = curves.get(f"test_{kind}", {})
        if test:
            epoch, value = max(test.items())
            (mark,) = ax.plot([epoch], [value], "*", ms=10, label="test")
            mark.set_gid(f"test_{kind}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(kind)
        ax.legend(fontsize="small")
    if title:
        figure.suptitle(title, fontsize="medium")
    return figure


def memory_raster(module: Any, data: Any, dt: float) -> Any:
    """The first test sequence: input spikes, the hidden LIF and LSNN spikes, store and recall
    periods shaded (store green, recall orange) on both panels."""
    import torch

    from snncore.plot import new_figure, raster

    sample = data.test_set.sample(0)
    x = sample.spikes.unsqueeze(1).to(module.device, module.dtype)  # (T, 1, inputs)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            spikes, _ = module.net(x)
    finally:
        module.train(was_training)
    figure, (top, bottom) = new_figure(2, height=2.4)
    raster(sample.spikes, dt=dt, ax=top, color="tab:blue")
    top.set_ylabel("input")
    raster(spikes[:, 0].cpu(), dt=dt, ax=bottom)
    hidden = spikes.shape[-1] // 2
    bottom.axhline(hidden - 0.5, color="grey", linewidth=0.8)
    bottom.set_ylabel(f"hidden (LIF < {hidden} ≤ LSNN)")
    period_ms = module.period_length * dt * 1000.0
    for ax in (top, bottom):
        for kind, periods, colour in (
            ("store", sample.store, "tab:green"),
            ("recall", sample.recall, "tab:orange"),
        ):
            for k, period in enumerate(periods.tolist()):
                start = period * period_ms
                span = ax.axvspan(start, start + period_ms, color=colour, alpha=0.2, lw=0)
                span.set_gid(kind)
                if ax is top:
                    span.set_label(kind if k == 0 else None)
    top.legend(loc="upper right", fontsize="x-small")
    top.set_xlabel("")
    bits = [b for b in sample.targets.tolist() if b >= 0]
    figure.suptitle(f"first test sequence: recall targets {bits}", fontsize="medium")
    return figure


def write_plots(task: Any, module: Any, data: Any, output: Path, log_dir: str | None) -> list[Path]:
    """Write ``OUTPUT/plots/*.png``; returns the files written (none, with one line said, when
    matplotlib is missing: a finished run is never failed by its pictures)."""
    from snncore.plot import PlotUnavailableError, require_matplotlib, save

    try:
        require_matplotlib()
    except PlotUnavailableError as exc:
        click.echo(f"plots skipped: {exc}")
        return []
    plots = output / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    metrics_csv = Path(log_dir) / "metrics.csv" if log_dir else None
    try:
        if metrics_csv is not None and metrics_csv.is_file():
            save(curves_figure(epoch_curves(metrics_csv), title=task.name), plots / "curves.png")
            written.append(plots / "curves.png")
        if task.name == "memory" and hasattr(data, "test_set") and hasattr(module, "net"):
            dt = float(module.hparams.get("dt", 0.001))
            save(memory_raster(module, data, dt), plots / "raster.png")
            written.append(plots / "raster.png")
    except Exception as exc:  # the run and its metrics.json are done; say so, do not fail it
        click.echo(f"plots failed ({type(exc).__name__}: {exc}); the run itself is complete")
    if written:
        click.echo(f"plots: {', '.join(str(p) for p in written)}")
    return written
