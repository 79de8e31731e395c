"""snn-tasks: training tasks on PyTorch Lightning (LSNN memory task, spiking conv net on MNIST).

The networks and Lightning modules import Lightning, so they are loaded on first access:
``from snn_tasks import MemoryNet`` works, ``import snn_tasks`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from snn_tasks.task import TrainingTask

_LAZY = {
    "LSNNLIFNet": "snn_tasks.memory",
    "MemoryNet": "snn_tasks.memory",
    "LIReadout": "snn_tasks.memory",
    "MemoryDataModule": "snn_tasks.memory_data",
    "StoreRecallDataset": "snn_tasks.memory_data",
    "LIFConvNet": "snn_tasks.mnist",
    "MNISTDataModule": "snn_tasks.mnist_data",
    "train": "snn_tasks.training",
}

__all__ = ["TrainingTask", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'snn_tasks' has no attribute {name!r}")
