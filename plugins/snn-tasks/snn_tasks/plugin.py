"""Entry point of snn-tasks: registers the ``memory`` and ``mnist`` tasks and ``snn train``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import snncore
from snn_tasks.memory_task import MEMORY_TASK
from snn_tasks.mnist_task import MNIST_TASK


@snncore.hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    for task in (MEMORY_TASK, MNIST_TASK):
        register(task)


@snncore.hookimpl
def register_commands(cli: Any) -> None:
    from snn_tasks.cli import train_command

    cli.add_command(train_command)
