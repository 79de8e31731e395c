"""``snn train memory`` end to end: outputs, resume after SIGKILL, 2-process DDP on CPU (gloo).

Tiny settings throughout (periods of a few steps), so the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from snncore.cli import cli
from snncore.plugins import get_manager

# 4 periods of 5 steps (T = 20), 16 training sequences in batches of 4: 4 batches per epoch
TINY = [
    "--seq-length", "5", "--periods", "4", "--train-samples", "16", "--val-samples", "4",
    "--test-samples", "4", "--batch-size", "4", "--no-progress", "--threads", "1",
]  # fmt: skip
# the console script, as users run it (DDP re-launches exactly this command line)
_SCRIPT = Path(sys.executable).with_name("snn")
SNN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "snncore.cli"]


def run_in_process(*args: str):
    """``snn ARGS`` in this process; the thread count and Lightning's seed variable restored."""
    get_manager().call_commands_hook(cli)
    threads, seed = torch.get_num_threads(), os.environ.get("PL_GLOBAL_SEED")
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        torch.set_num_threads(threads)
        if seed is None:
            os.environ.pop("PL_GLOBAL_SEED", None)


def csv_rows(output: Path, version: int) -> list[dict[str, str]]:
    with open(output / "logs" / f"version_{version}" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_a_short_run_writes_metrics_csv_log_and_a_checkpoint_per_epoch(tmp_path: Path):
    output = tmp_path / "run"
    result = run_in_process("train", "memory", *TINY, "--max-epochs", "2", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert "final test_accuracy" in result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["task"] == "memory" and metrics["metric"] == "test_accuracy"
    # 4 test sequences × 2 recalls each: the accuracy is a multiple of 1/8
    accuracy = metrics["test_accuracy"]
    assert 0 <= accuracy <= 1 and abs(accuracy * 8 - round(accuracy * 8)) < 1e-6
    assert metrics["epochs"] == 2 and metrics["global_step"] == 8
    assert {"test_loss", "val_accuracy", "val_loss"} <= set(metrics["metrics"])
    assert metrics["settings"]["seq_length"] == 5 and metrics["settings"]["backend"] == "auto"
    assert metrics["wall_seconds"] > 0 and metrics["seconds_per_train_batch"] > 0
    names = sorted(p.name for p in (output / "checkpoints").iterdir())
    assert names == ["epoch=000.ckpt", "epoch=001.ckpt", "last.ckpt"]
    rows = csv_rows(output, 0)
    assert sorted({r["epoch"] for r in rows if r.get("val_accuracy")}) == ["0", "1"]
    assert sum(1 for r in rows if r.get("train_loss")) == 8  # one row per training step
    report = json.loads((output / "ranks" / "rank-0.json").read_text())
    assert report["train_batches"] == 8 and report["world_size"] == 1


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path):
    # 256 sequences in batches of 4: 64 batches per epoch, long enough to be killed inside one
    n = 64
    args = [*TINY, "--train-samples", str(4 * n), "--max-epochs", "4", "--lr-step", "2"]
    output = tmp_path / "killed"
    proc = subprocess.Popen(
        [*SNN, "train", "memory", *args, "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (output / "checkpoints" / "epoch=001.ckpt").exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint of epoch 1 in time"
            time.sleep(0.02)
        time.sleep(0.05)  # into epoch 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (output / "metrics.json").exists()
    killed_at = checkpoint(output / "checkpoints" / "last.ckpt")
    done = killed_at["epoch"] + 1  # epochs completed before the kill
    assert 2 <= done < 4 and killed_at["global_step"] == n * done

    resumed = subprocess.run(
        [*SNN, "train", "memory", *args, "--output", str(output), "--resume"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    final = checkpoint(output / "checkpoints" / "last.ckpt")
    assert final["epoch"] == 3 and final["global_step"] == 4 * n
    # Adam's step count continued from the checkpoint: one per batch of all four epochs
    steps = {int(s["step"]) for s in final["optimizer_states"][0]["state"].values()}
    assert steps == {4 * n}
    # the StepLR (every 2 epochs, × 0.3) continued too: 0.01 · 0.3² after 4 epochs
    assert final["lr_schedulers"][0]["last_epoch"] == 4
    assert final["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.01 * 0.09)
    # the resumed process trained only the remaining epochs; its log continues the numbering
    report = json.loads((output / "ranks" / "rank-0.json").read_text())
    assert report["train_batches"] == n * (4 - done)
    rows = csv_rows(output, 1)
    assert {int(r["epoch"]) for r in rows if r.get("val_accuracy")} == set(range(done, 4))
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["resumed_from"].endswith("last.ckpt") and metrics["epochs"] == 4

    # the same four epochs without interruption end with the very same parameters
    straight = tmp_path / "straight"
    result = run_in_process("train", "memory", *args, "--output", str(straight))
    assert result.exit_code == 0, result.output
    straight_report = json.loads((straight / "ranks" / "rank-0.json").read_text())
    assert straight_report["parameter_checksum"] == report["parameter_checksum"]
    assert json.loads((straight / "metrics.json").read_text())["test_accuracy"] == pytest.approx(
        metrics["test_accuracy"]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_on_cpu_trains_on_both_ranks_and_ends_with_equal_parameters(
    tmp_path: Path,
):
    output = tmp_path / "ddp"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    for variable in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "PL_GLOBAL_SEED"):
        env.pop(variable, None)
    result = subprocess.run(
        [*SNN, "train", "memory", *TINY, "--max-epochs", "2", "--accelerator", "cpu",
         "--devices", "2", "--strategy", "ddp", "--output", str(output)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((output / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["global_rank"] for r in reports] == [0, 1]
    assert all(r["world_size"] == 2 for r in reports)
    assert reports[0]["pid"] != reports[1]["pid"]
    # 16 sequences split between 2 ranks, batches of 4: 2 batches per rank and epoch
    assert [r["train_batches"] for r in reports] == [4, 4]
    assert reports[0]["parameter_checksum"] == reports[1]["parameter_checksum"]
    # ... and they did train: the parameters moved away from the seeded initial ones
    from snn_tasks.memory_task import MEMORY_TASK
    from snn_tasks.training import parameter_checksum, resolve_options

    torch.manual_seed(0)  # what seed_everything(0) does for the weights
    initial, _ = MEMORY_TASK.build(resolve_options(MEMORY_TASK, {}))
    assert parameter_checksum(initial) != reports[0]["parameter_checksum"]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and 0 <= metrics["test_accuracy"] <= 1
