"""``train(task, options)``: one Lightning run of a task, and the options every task shares.

A run, in order: fill in the defaults (the common options', then the task's ``defaults``, then
what the caller gave); check the backend name and the output directory; seed every RNG with
``lightning.seed_everything``; build the task's module and data; ``Trainer.fit`` (resuming from
the newest checkpoint in ``OUTPUT/checkpoints/`` with ``resume``, see
:mod:`snn_tasks.run_directory`); ``Trainer.test``; print the final metrics and write
``OUTPUT/metrics.json``.

Output directory layout::

    OUTPUT/
      metrics.json            final metrics (``test_accuracy`` ...), wall time, settings
      checkpoints/            epoch=NNN.ckpt after every epoch, and last.ckpt (the newest)
      logs/version_N/         metrics.csv (CSV log) and hparams.yaml, one version per invocation
      ranks/rank-R.json       per process: global rank, batches it trained, parameter checksum

Multi-process training is Lightning's: ``devices=2, strategy="ddp"`` on CPU starts a second
process running the same command line (gloo), ``num_nodes`` and a cluster environment (SLURM,
torchrun) take it to several machines.  Only the first process (Lightning's global rank 0)
prepares the output directory and writes ``metrics.json``; every process writes its own rank
report.  A run that diverges or is stopped by SIGTERM exits non-zero
(:mod:`snn_tasks.run_failures`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from snn_tasks import run_directory, run_failures
from snn_tasks.plots import LOGGER_OPTION, make_loggers, write_plots


class TrainingError(click.ClickException):
    """An expected failure of a run (bad setting, nothing to resume): one line, exit code 2."""

    exit_code = 2


def _devices(value: Any) -> Any:
    """``--devices``: ``auto``, a count (``2``) or a list of indices (``0,1``)."""
    if isinstance(value, (int, list)):
        return value
    text = str(value).strip()
    if text == "auto" or text == "-1":
        return "auto" if text == "auto" else -1
    try:
        if "," in text:
            return [int(part) for part in text.split(",") if part.strip()]
        return int(text)
    except ValueError:
        raise TrainingError(
            f"--devices must be 'auto', a number or a comma-separated list of indices, got {text!r}"
        ) from None


def _limit(value: Any) -> int | float | None:
    """``--limit-train-batches``: a count (``5``) or a fraction of the epoch (``0.25``)."""
    if value is None:
        return None
    number = float(value)
    if number <= 0:
        raise TrainingError(f"--limit-train-batches must be positive, got {value}")
    return int(number) if number.is_integer() and number >= 1 else number


COMMON_OPTIONS: tuple[click.Option, ...] = (
    click.Option(
        ["--max-epochs"], type=click.IntRange(1), default=10, show_default=True,
        help="Epochs to train (in total, counting those of a resumed run).",
    ),
    click.Option(
        ["--accelerator"], default="auto", show_default=True,
        help="Lightning accelerator: cpu, gpu, cuda, mps or auto.",
    ),
    click.Option(
        ["--devices"], default="1", show_default=True,
        help="Devices (processes) per node: a number, a list such as 0,1, or auto.",
    ),
    click.Option(
        ["--strategy"], default="auto", show_default=True,
        help="Lightning strategy, e.g. ddp (one process per device; gloo on CPU), ddp_spawn, auto.",
    ),
    click.Option(
        ["--num-nodes"], type=click.IntRange(1), default=1, show_default=True,
        help="Machines taking part (DDP under SLURM, torchrun or MASTER_ADDR/NODE_RANK).",
    ),
    click.Option(
        ["--precision"], default="32-true", show_default=True,
        help="Lightning precision: 64-true, 32-true, bf16-mixed, 16-mixed, ...",
    ),
    click.Option(
        ["--seed"], type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
        help="Seeds weights, data and every RNG (lightning.seed_everything; 0 to 2**32 - 1).",
    ),
    click.Option(
        ["--output"], type=click.Path(file_okay=False), default=None,
        help="Output directory (metrics.json, checkpoints/, logs/).  [default: runs/TASK]",
    ),
    click.Option(
        ["--backend"], default="auto", show_default=True,
        help="snncore backend for the spiking layers: torch, fused or auto (see snn list-backends).",
    ),
    click.Option(
        ["--resume"], is_flag=True, default=False,
        help="Continue the run in --output from its newest checkpoint (epoch, optimizer, "
        "scheduler).",
    ),
    click.Option(
        ["--overwrite"], is_flag=True, default=False,
        help="Delete a previous run's checkpoints, logs and metrics in --output first (only "
        "files a run writes; others are kept).",
    ),
    click.Option(
        ["--progress/--no-progress"], default=True, show_default=True,
        help="Show the progress bar.",
    ),
    click.Option(
        ["--limit-train-batches"], type=float, default=None,
        help="Train on only this many batches per epoch (or this fraction, if < 1).",
    ),
    click.Option(
        ["--threads"], type=click.IntRange(1), default=None,
        help="CPU threads per process (torch.set_num_threads).  [default: the task's, else "
        "torch's]",
    ),
    LOGGER_OPTION,
)  # fmt: skip


def option_name(option: click.Option) -> str:
    """The Python name a click option passes its value under."""
    assert option.name is not None
    return option.name


def resolve_options(task: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of ``task`` with a value: defaults, then ``task.defaults``, then ``given``."""
    declared = [*COMMON_OPTIONS, *getattr(task, "options", ())]
    options = {option_name(o): o.default for o in declared}
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for task {task.name!r}; its options are {sorted(options)}"
        )
    options.update(getattr(task, "defaults", {}))
    options.update(given)
    if options.get("output") is None:
        options["output"] = str(Path("runs") / task.name)
    return options


def _prepare_output(
    trainer: Any, output: Path, options: Mapping[str, Any], module: Any
) -> Path | None:
    """Check (and with ``overwrite`` clear) the output directory; the checkpoint to resume.

    Which process is the first is Lightning's answer (``trainer.global_rank``), not a guess from
    environment variables: a stray ``LOCAL_RANK=1`` in a shell once made a single process skip
    the "previous run" guard and then overwrite ``metrics.json`` as rank 0.  Every process reads
    the same newest checkpoint (DDP's other processes start before any new one is written).
    """
    if trainer.global_rank == 0:
        run_directory.check_writable(output)
        if not options["resume"]:
            kept = run_directory.prepare_fresh(output, options["overwrite"])
            if kept and options["overwrite"]:
                listed = ", ".join(p.relative_to(output).as_posix() for p in kept[:5])
                more = f" and {len(kept) - 5} more" if len(kept) > 5 else ""
                click.echo(
                    f"Note: --overwrite kept {len(kept)} files no run wrote: {listed}{more}",
                    err=True,
                )
    if not options["resume"]:
        return None
    path, checkpoint = run_directory.newest_checkpoint(output)
    run_directory.check_fits(path, checkpoint, module)
    return path


def parameter_checksum(module: Any) -> str:
    """SHA-256 of every parameter's bytes, in ``named_parameters`` order (equal across DDP ranks
    exactly when the parameters are bitwise equal)."""
    digest = hashlib.sha256()
    for name, parameter in module.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _rank_report_callback(output: Path) -> Any:
    import lightning

    class RankReport(lightning.Callback):
        """Counts the batches this process trains; writes ``ranks/rank-R.json`` after fit."""

        def __init__(self) -> None:
            self.batches = 0
            self.batch_seconds = 0.0  # forward, backward and optimizer step, summed
            self.started = self.batch_started = time.perf_counter()

        def on_fit_start(self, trainer: Any, module: Any) -> None:
            self.started = time.perf_counter()

        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            self.batch_started = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            self.batches += 1
            self.batch_seconds += time.perf_counter() - self.batch_started

        def on_fit_end(self, trainer: Any, module: Any) -> None:
            self.fit_seconds = time.perf_counter() - self.started
            report = {
                "global_rank": trainer.global_rank,
                "local_rank": trainer.local_rank,
                "node_rank": trainer.node_rank,
                "world_size": trainer.world_size,
                "pid": os.getpid(),
                "train_batches": self.batches,
                "train_batch_seconds": self.batch_seconds,
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "parameter_checksum": parameter_checksum(module),
                "parameter_sum": float(sum(p.detach().double().sum() for p in module.parameters())),
            }
            ranks = output / "ranks"
            ranks.mkdir(parents=True, exist_ok=True)
            path = ranks / f"rank-{trainer.global_rank}.json"
            path.write_text(json.dumps(report, indent=2) + "\n")

    return RankReport()


def _quiet_lightning() -> None:
    """Hide Lightning's advice that does not apply here (in-memory data needs no workers)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*`litlogger`.*")
    warnings.filterwarnings("ignore", ".*LitLogger.*")
    warnings.filterwarnings("ignore", ".*treespec, LeafSpec.*")  # Lightning 2.6 on torch 2.13
    # DDP tests on a DistributedSampler, which pads the set to a multiple of the processes
    # (documented in docs/tasks.md)
    warnings.filterwarnings("ignore", ".*Using `DistributedSampler` with the dataloaders.*")
    # a resumed run writes into its own checkpoint directory (a fresh one is checked before)
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _check_backend(name: str) -> None:
    if name == "auto":
        return
    from snncore.api import get_backend

    get_backend(name)  # UnknownNameError (exit 2 with suggestions on the command line)


def train(task: Any, options: Mapping[str, Any]) -> dict[str, float]:
    """Train ``task`` with ``options`` (missing ones take their defaults); test; report.

    Returns the final metrics (``task.metric`` among them) as floats.  Writes
    ``OUTPUT/metrics.json`` from the first process; see the module docstring for the layout.
    """
    started = time.perf_counter()
    options = resolve_options(task, options)
    _check_backend(options["backend"])
    output = Path(options["output"])
    if options["resume"] and options["overwrite"]:
        raise TrainingError("--resume and --overwrite contradict each other; give one")
    if options["threads"] is not None:
        import torch

        torch.set_num_threads(options["threads"])

    import lightning
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    _quiet_lightning()
    lightning.seed_everything(options["seed"], workers=True, verbose=False)
    module, data = task.build(options)
    checkpoints = run_directory.checkpoint_callback(output)
    report = _rank_report_callback(output)
    try:
        trainer = lightning.Trainer(
            max_epochs=options["max_epochs"],
            accelerator=options["accelerator"],
            devices=_devices(options["devices"]),
            strategy=options["strategy"],
            num_nodes=options["num_nodes"],
            precision=options["precision"],
            logger=make_loggers(output, options["logger"]),
            callbacks=[checkpoints, report, run_failures.finite_loss_callback()],
            enable_progress_bar=options["progress"],
            enable_model_summary=not options["resume"],
            limit_train_batches=_limit(options["limit_train_batches"]),
            log_every_n_steps=1,
            default_root_dir=output,
        )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as exc:
        raise TrainingError(f"cannot set up the Trainer: {_first_line(exc)}") from None

    resume_from = _prepare_output(trainer, output, options, module)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
        fit_seconds = getattr(report, "fit_seconds", time.perf_counter() - started)
        metrics = _scalars(trainer.callback_metrics)  # the last epoch's training and validation
        trainer.test(module, datamodule=data, verbose=False)
        metrics.update(_scalars(trainer.callback_metrics))
        for name, value in run_failures.non_finite_losses(metrics).items():
            raise run_failures.Diverged(f"{name} became {value} (after step {trainer.global_step})")
    except run_failures.Diverged as exc:
        raise run_failures.diverged(exc) from None
    except SIGTERMException:  # a SystemExit without a code: exit 0, unless caught here
        last = checkpoints.last_model_path or resume_from
        raise run_failures.interrupted(task.name, trainer, Path(last) if last else None) from None
    wall = time.perf_counter() - started
    if trainer.global_rank == 0:
        result = {
            "task": task.name,
            "metric": task.metric,
            task.metric: metrics.get(task.metric),
            "metrics": metrics,
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "train_batches_this_run": report.batches,
            "seconds_per_train_batch": (
                report.batch_seconds / report.batches if report.batches else None
            ),
            "fit_seconds": fit_seconds,
            "wall_seconds": wall,
            "resumed_from": str(resume_from) if resume_from else None,
            "world_size": trainer.world_size,
            "settings": {k: _plain(v) for k, v in options.items()},
        }
        output.mkdir(parents=True, exist_ok=True)
        safe = run_failures.json_safe(result)  # null, not NaN: bare NaN is not JSON
        (output / "metrics.json").write_text(json.dumps(safe, indent=2, allow_nan=False) + "\n")
        _print_summary(task, result, output)
        write_plots(task, module, data, output, trainer.loggers[0].log_dir)
    return metrics


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def _print_summary(task: Any, result: Mapping[str, Any], output: Path) -> None:
    click.echo(f"\n{task.name}: {result['epochs']} epochs, {result['global_step']} steps")
    for name, value in sorted(result["metrics"].items()):
        click.echo(f"  {name:<20} {value:.4f}")
    if result["seconds_per_train_batch"] is not None:
        click.echo(f"  {'s per train batch':<20} {result['seconds_per_train_batch']:.4f}")
    click.echo(f"  {'wall time':<20} {result['wall_seconds']:.1f} s")
    click.echo(
        f"final {task.metric}: {result[task.metric]:.4f}  (written to {output / 'metrics.json'})"
    )
    sys.stdout.flush()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
