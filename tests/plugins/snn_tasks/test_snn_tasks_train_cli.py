"""``snn train``: help listing every task with its options, and one-line errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from snn_tasks.memory_task import MEMORY_TASK

from snncore.cli import cli
from snncore.plugins import get_manager

TINY = [
    "--seq-length", "2", "--periods", "2", "--train-samples", "2", "--val-samples", "2",
    "--test-samples", "2", "--batch-size", "2", "--max-epochs", "1", "--no-progress",
]  # fmt: skip


@pytest.fixture
def snn():
    """Invoke ``snn ARGS`` in this process, with the plugins' commands added as ``main`` does."""
    get_manager().call_commands_hook(cli)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_help_lists_each_task_with_its_options_and_the_common_options(snn):
    result = snn("train", "--help")
    assert result.exit_code == 0
    text = result.output
    assert "Tasks:" in text and "memory" in text
    memory_section = text.split("Options of memory:")[1].split("Options of ")[0]
    for option in ("--batch-size", "--learning-rate", "--seq-length", "--train-samples",
                   "--data-subset", "--tau-adapt", "--test-pairs"):  # fmt: skip
        assert option in memory_section
    # the task's own default for a common option
    assert f"--max-epochs {MEMORY_TASK.defaults['max_epochs']}" in memory_section
    common = text.split("Common options (every task):")[1]
    for option in ("--max-epochs", "--accelerator", "--devices", "--strategy", "--num-nodes",
                   "--precision", "--seed", "--output", "--backend", "--resume"):  # fmt: skip
        assert option in common


def test_task_help_shows_task_defaults(snn):
    result = snn("train", "memory", "--help")
    assert result.exit_code == 0
    assert "--seq-length" in result.output and "--max-epochs" in result.output
    epochs = MEMORY_TASK.defaults["max_epochs"]
    assert epochs != 10  # the common default: the task's own must show instead
    assert f"default: {epochs}" in result.output.split("--max-epochs")[1].split("--")[0]


def test_list_tasks_lists_memory(snn):
    result = snn("list-tasks")
    assert result.exit_code == 0 and "memory" in result.output


def test_unknown_task_suggests_the_close_name(snn):
    line = one_line_error(snn("train", "memroy"))
    assert "unknown task 'memroy'" in line and "memory" in line


def test_resume_without_a_checkpoint(snn, tmp_path: Path):
    line = one_line_error(snn("train", "memory", *TINY, "--output", str(tmp_path), "--resume"))
    assert "nothing to resume" in line and "last.ckpt" in line


def test_a_previous_run_is_not_overwritten_silently(snn, tmp_path: Path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    line = one_line_error(snn("train", "memory", *TINY, "--output", str(tmp_path)))
    assert "holds a previous run" in line and "--resume" in line and "--overwrite" in line
    line = one_line_error(
        snn("train", "memory", *TINY, "--output", str(tmp_path), "--resume", "--overwrite")
    )
    assert "contradict" in line
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_unknown_backend_suggests_names(snn, tmp_path: Path):
    line = one_line_error(
        snn("train", "memory", *TINY, "--output", str(tmp_path), "--backend", "fusd")
    )
    assert "fusd" in line and "fused" in line


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--devices", "two", "--devices must be"),
        ("--precision", "17-bits", "cannot set up the Trainer"),
        ("--accelerator", "abacus", "cannot set up the Trainer"),
        ("--limit-train-batches", "0", "must be positive"),
    ],
)
def test_bad_trainer_settings_are_one_line_errors(snn, tmp_path: Path, option, value, message):
    line = one_line_error(snn("train", "memory", *TINY, "--output", str(tmp_path), option, value))
    assert message in line


def test_bad_task_option_is_a_usage_error(snn, tmp_path: Path):
    result = snn("train", "memory", "--batch-size", "0", "--output", str(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--batch-size" in result.output
