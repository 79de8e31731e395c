"""``snn train`` when things go wrong: a diverging loss, SIGTERM, damaged or moved checkpoints,
foreign files in the output, a stray ``LOCAL_RANK``, bad values.  Each ends with an exit code a
scheduler can trust and one line ``Error: ...``; nothing the run did not write is deleted.

Every test runs the ``snn`` console script as a subprocess, as a user or scheduler does, with
tiny settings (4 batches of 4 sequences of 20 steps per epoch): a run takes a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from snn_tasks.run_failures import json_safe

TINY = [
    "--seq-length", "5", "--periods", "4", "--train-samples", "16", "--val-samples", "4",
    "--test-samples", "4", "--batch-size", "4", "--no-progress",
]  # fmt: skip
_SCRIPT = Path(sys.executable).with_name("snn")
SNN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "snncore.cli"]
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "PL_GLOBAL_SEED")


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _RANK_VARIABLES}
    return {**env, **extra}


def snn(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``snn train memory TINY ARGS`` in a subprocess (``env``: extra environment variables)."""
    return subprocess.run(
        [*SNN, "train", "memory", *TINY, *args],
        capture_output=True, text=True, timeout=300, env=_environment(**env),
    )  # fmt: skip


def error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one ``Error:`` line of a failed run (click's usage hint may precede it)."""
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    return errors[0]


def strict_json(path: Path) -> dict:
    """``path`` parsed as JSON proper: ``NaN``/``Infinity`` are not JSON and fail here."""

    def reject(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=reject)


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- case 2: a loss that becomes NaN or infinite -------------------------------------------------


@pytest.mark.parametrize(
    "option", [["--learning-rate", "inf"], ["--precision", "16-true"]], ids=["lr-inf", "16-true"]
)
def test_a_diverging_loss_stops_the_run_with_exit_1_and_one_line(tmp_path: Path, option) -> None:
    result = snn("--max-epochs", "2", "--output", str(tmp_path / "run"), *option)
    line = error_line(result, 1)
    assert "became nan" in line and "the run diverged and was stopped" in line
    assert "final test_accuracy" not in result.stdout
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_metrics_json_writes_null_for_a_non_finite_value() -> None:
    text = json.dumps(json_safe({"a": math.nan, "b": [1.5, -math.inf], "c": "x"}), allow_nan=False)
    assert text == '{"a": null, "b": [1.5, null], "c": "x"}'


# -- case 3: --overwrite deletes only what a run wrote ------------------------------------------


def test_overwrite_deletes_only_the_runs_own_files(tmp_path: Path) -> None:
    output = tmp_path / "U"
    (output / "logs" / "2024").mkdir(parents=True)
    (output / "logs" / "2024" / "app.log").write_text("someone else's log\n")
    (output / "checkpoints").mkdir()
    (output / "checkpoints" / "my_other_model.pt").write_bytes(b"another project's model")
    # files no run wrote are no "previous run"
    first = snn("--max-epochs", "1", "--output", str(output))
    assert first.returncode == 0, first.stderr[-3000:]
    assert strict_json(output / "metrics.json")["settings"]["threads"] == 1  # the task's default

    second = snn("--max-epochs", "1", "--output", str(output), "--overwrite")
    assert second.returncode == 0, second.stderr[-3000:]
    assert (
        "Note: --overwrite kept 2 files no run wrote: checkpoints/my_other_model.pt, "
        "logs/2024/app.log"
    ) in second.stderr
    assert (output / "logs" / "2024" / "app.log").read_text() == "someone else's log\n"
    assert (output / "checkpoints" / "my_other_model.pt").read_bytes() == b"another project's model"
    assert names(output / "checkpoints") == ["epoch=000.ckpt", "last.ckpt", "my_other_model.pt"]
    assert names(output / "logs") == ["2024", "version_0"]  # the old version_0 and _1 deleted


# -- case 4: --resume after moving the run directory --------------------------------------------


def test_resume_after_a_move_continues_from_the_newest_checkpoint(tmp_path: Path) -> None:
    assert snn("--max-epochs", "1", "--output", str(tmp_path / "A")).returncode == 0
    moved = tmp_path / "B"
    shutil.move(tmp_path / "A", moved)
    checkpoints = moved / "checkpoints"
    for epochs in (2, 3):
        result = snn("--max-epochs", str(epochs), "--output", str(moved), "--resume")
        assert result.returncode == 0, result.stderr[-3000:]
        assert names(checkpoints) == [f"epoch={e:03d}.ckpt" for e in range(epochs)] + ["last.ckpt"]
        assert checkpoint(checkpoints / "last.ckpt")["global_step"] == 4 * epochs
        assert strict_json(moved / "ranks" / "rank-0.json")["train_batches"] == 4

    # a directory as older versions left it: last-v1.ckpt newer than a stale last.ckpt
    shutil.copy(checkpoints / "epoch=000.ckpt", checkpoints / "last.ckpt")
    shutil.copy(checkpoints / "epoch=002.ckpt", checkpoints / "last-v1.ckpt")
    result = snn("--max-epochs", "4", "--output", str(moved), "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = strict_json(moved / "metrics.json")
    assert metrics["resumed_from"] == str(checkpoints / "last-v1.ckpt")
    assert metrics["train_batches_this_run"] == 4 and metrics["global_step"] == 16


# -- case 5: a stray LOCAL_RANK ------------------------------------------------------------------


def test_a_stray_local_rank_does_not_skip_the_previous_run_guard(tmp_path: Path) -> None:
    output = tmp_path / "run"
    assert snn("--max-epochs", "1", "--output", str(output)).returncode == 0
    before = (output / "metrics.json").read_bytes()
    line = error_line(snn("--max-epochs", "1", "--output", str(output), LOCAL_RANK="1"), 2)
    assert line.startswith(f"Error: {output} holds a previous run (checkpoints, logs, metrics.json")
    assert line.endswith(
        "pass --resume to continue it, --overwrite to replace it, or another --output"
    )
    assert (output / "metrics.json").read_bytes() == before


# -- case 7: SIGTERM ----------------------------------------------------------------------------


def test_sigterm_exits_143_keeps_the_checkpoint_and_says_how_to_resume(tmp_path: Path) -> None:
    output = tmp_path / "run"
    # 64 batches per epoch: long enough to be stopped inside epoch 1
    args = [*TINY, "--train-samples", "256", "--max-epochs", "2", "--output", str(output)]
    proc = subprocess.Popen(
        [*SNN, "train", "memory", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (output / "checkpoints" / "last.ckpt").exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint of epoch 0 in time"
            time.sleep(0.02)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    line = error_line(result, 143)
    assert line.startswith("Error: stopped by SIGTERM in epoch 1 (step ")
    assert line.endswith(
        f"its last checkpoint {output / 'checkpoints' / 'last.ckpt'} is kept: continue with the "
        "same command and --resume (snn train memory ... --resume)"
    )
    assert not (output / "metrics.json").exists()
    assert checkpoint(output / "checkpoints" / "last.ckpt")["global_step"] == 64

    resumed = subprocess.run(
        [*SNN, "train", "memory", *args, "--resume"],
        capture_output=True, text=True, timeout=300, env=_environment(),
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert strict_json(output / "metrics.json")["global_step"] == 128


# -- case 8: a checkpoint that cannot be resumed from --------------------------------------------


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("two-epochs") / "run"
    result = snn("--max-epochs", "2", "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:3000])


@pytest.mark.parametrize(
    ("damage", "extra", "problem"),
    [
        (lambda p: p.write_bytes(b""), [], "the file is empty (0 bytes)"),
        (
            _truncate, [],
            "the file is truncated or damaged (not a complete PyTorch checkpoint)",
        ),
        (lambda p: p.write_bytes(os.urandom(5000)), [], "the file is not a PyTorch checkpoint"),
        (
            lambda p: None, ["--hidden", "12"],
            "it was trained with other settings (hidden=10 there, 12 here): resume with the "
            "run's own options",
        ),
    ],
    ids=["empty", "truncated", "random-bytes", "other-hidden"],
)  # fmt: skip
def test_a_checkpoint_that_cannot_be_resumed_is_one_line(
    two_epochs: Path, tmp_path: Path, damage, extra, problem
) -> None:
    output = tmp_path / "run"
    shutil.copytree(two_epochs, output)
    last = output / "checkpoints" / "last.ckpt"
    damage(last)
    line = error_line(snn("--max-epochs", "3", "--output", str(output), "--resume", *extra), 2)
    assert line == (
        f"Error: cannot resume from {last}: {problem}; "
        "other checkpoints there: epoch=000.ckpt, epoch=001.ckpt"
    )


# -- case 9: bad values --------------------------------------------------------------------------


def test_an_odd_number_of_periods_is_one_line(tmp_path: Path) -> None:
    line = error_line(snn("--periods", "3", "--output", str(tmp_path / "run")), 2)
    assert line == (
        "Error: Invalid value for '--periods': 3 is odd; it must be even (each store/recall "
        "pair stores in the first half of its periods and recalls in the second)"
    )


def test_a_negative_seed_is_one_line(tmp_path: Path) -> None:
    line = error_line(snn("--seed", "-5", "--output", str(tmp_path / "run")), 2)
    assert line == "Error: Invalid value for '--seed': -5 is not in the range 0<=x<=4294967295."


@pytest.mark.parametrize("kind", ["read-only", "below-a-file"])
def test_an_output_that_cannot_be_written_is_one_line(tmp_path: Path, kind: str) -> None:
    if kind == "read-only":
        if os.geteuid() == 0:  # root writes anywhere but in sysfs (EPERM, or EROFS)
            output, reason = Path("/sys/snn-run"), ""
        else:
            (tmp_path / "ro").mkdir(mode=0o555)
            output, reason = tmp_path / "ro" / "run", "Permission denied"
    else:
        (tmp_path / "file").write_text("")
        output, reason = tmp_path / "file" / "run", "Not a directory"
    line = error_line(snn("--output", str(output)), 2)
    assert line.startswith(f"Error: --output {output} is not a directory this run can write to (")
    assert line.endswith(f"{reason}); give a writable directory")
