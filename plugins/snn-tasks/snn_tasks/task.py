"""What a training task is: a name, its own command-line options, and a builder.

A task is registered through the ``register_tasks`` hook like any other plugin object, so a third
party adds one by registering a ``TrainingTask`` from its own distribution; ``snn train NAME``
then offers it with the common Trainer options (``snn_tasks.training.COMMON_OPTIONS``) and the
task's own.  The builder is named by a ``"module:function"`` string and imported only when the task
runs, because importing Lightning costs seconds that ``snn list-tasks`` must not pay.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import attrs
import click


@attrs.frozen
class TrainingTask:
    """A task ``snn train NAME`` can run.

    ``builder`` names a function ``build(options) -> (LightningModule, LightningDataModule)``
    where ``options`` maps every option's Python name (common and the task's own) to its value.
    The module logs ``metric`` (on the test set) for the final report.
    """

    name: str
    summary: str
    builder: str
    options: tuple[click.Option, ...] = ()
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    metric: str = "test_accuracy"
    #: ``"module:function"`` of ``f(checkpoint_path) -> (network, sample_input, dt)`` for
    #: ``snn nir export`` (docs/nir.md); None: the task's network is not offered as NIR.
    nir_builder: str | None = None

    def nir_network(self, checkpoint: Any) -> tuple[Any, Any, float]:
        """The trained network of ``checkpoint`` as a time-major chain ``snncore.to_nir`` maps."""
        if self.nir_builder is None:
            raise ValueError(f"task {self.name!r} does not offer NIR export")
        module_name, _, function_name = self.nir_builder.partition(":")
        return getattr(importlib.import_module(module_name), function_name)(checkpoint)

    def build(self, options: Mapping[str, Any]) -> tuple[Any, Any]:
        module_name, _, function_name = self.builder.partition(":")
        return getattr(importlib.import_module(module_name), function_name)(options)

    def run(self, **options: Any) -> dict[str, float]:
        """Train with ``options`` (missing ones take their defaults); return the final metrics."""
        from snn_tasks.training import train

        return train(self, options)
