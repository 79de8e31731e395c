"""``snn train`` writes ``OUTPUT/plots/`` (curves from the CSV log; the memory task's raster) and,
with ``--logger tensorboard``, TensorBoard event files.  Tiny runs (T = 20, 4 batches/epoch)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from snncore.cli import cli
from snncore.plugins import get_manager

pytest.importorskip("matplotlib", reason="the plots need snncore[plot]")

TINY = [
    "--seq-length", "5", "--periods", "4", "--train-samples", "16", "--val-samples", "4",
    "--test-samples", "4", "--batch-size", "4", "--no-progress", "--threads", "1",
]  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


def train(*args: str):
    """``snn train memory ARGS`` in this process; thread count and Lightning's seed restored."""
    get_manager().call_commands_hook(cli)
    threads, seed = torch.get_num_threads(), os.environ.get("PL_GLOBAL_SEED")
    try:
        return CliRunner().invoke(cli, ["train", "memory", *TINY, *args], catch_exceptions=False)
    finally:
        torch.set_num_threads(threads)
        if seed is None:
            os.environ.pop("PL_GLOBAL_SEED", None)


def test_a_run_writes_curves_and_a_raster_with_the_cues_marked(tmp_path: Path, monkeypatch):
    from snn_tasks import plots

    figures = {}
    for name in ("curves_figure", "memory_raster"):
        real = getattr(plots, name)
        monkeypatch.setattr(
            plots,
            name,
            lambda *a, _real=real, _name=name, **k: figures.setdefault(_name, _real(*a, **k)),
        )
    output = tmp_path / "run"
    result = train("--max-epochs", "3", "--output", str(output), "--logger", "tensorboard")
    assert result.exit_code == 0, result.output
    for name in ("curves.png", "raster.png"):
        assert (output / "plots" / name).read_bytes()[:8] == PNG
    assert f"plots: {output / 'plots' / 'curves.png'}" in result.output

    # the curves are the CSV log's per-epoch values
    curves = plots.epoch_curves(output / "logs" / "version_0" / "metrics.csv")
    loss_ax, accuracy_ax = figures["curves_figure"].axes
    (val,) = [line for line in accuracy_ax.lines if line.get_gid() == "val_accuracy"]
    assert list(val.get_xdata()) == [0, 1, 2]
    assert list(val.get_ydata()) == [curves["val_accuracy"][e] for e in range(3)]
    (train_loss,) = [line for line in loss_ax.lines if line.get_gid() == "train_loss"]
    assert len(train_loss.get_xdata()) == 3  # 4 steps per epoch averaged into one point

    # the raster: the first test sequence, store and recall periods shaded on both panels
    top, bottom = figures["memory_raster"].axes
    from snn_tasks.memory_data import MemoryDataModule

    sample = MemoryDataModule(
        test_samples=4, periods=4, period_length=5, population=5, batch_size=4
    ).test_set.sample(0)
    (inputs,) = [c for c in top.collections if c.get_gid() == "raster"]
    assert len(inputs.get_offsets()) == int(sample.spikes.sum())
    for kind, periods in (("store", sample.store), ("recall", sample.recall)):
        spans = [p for p in top.patches if p.get_gid() == kind]
        starts = sorted(round(float(p.get_x()), 6) for p in spans)
        assert starts == sorted(5.0 * p for p in periods.tolist())  # 5 steps of 1 ms a period
        assert len([p for p in bottom.patches if p.get_gid() == kind]) == len(periods)

    # --logger tensorboard: event files beside the CSV log
    events = list((output / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(output / "tensorboard" / "version_0"))
    accumulator.Reload()
    assert {"train_loss", "val_accuracy"} <= set(accumulator.Tags()["scalars"])


def test_without_matplotlib_the_run_succeeds_and_says_the_plots_were_skipped(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    output = tmp_path / "run"
    result = train("--max-epochs", "1", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert "plots skipped: plotting needs matplotlib" in result.output
    assert (output / "metrics.json").is_file() and not (output / "plots").exists()


def test_tensorboard_logger_missing_is_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    result = train("--max-epochs", "1", "--output", str(tmp_path / "r"), "--logger", "tensorboard")
    assert result.exit_code == 2
    assert "pip install 'snn-tasks[tensorboard]'" in result.output
