"""Entry point of snn-backend-fused: registers the ``fused`` backend and ``snn kernels``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import snncore
from snn_backend_fused.backend import FusedBackend


@snncore.hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(FusedBackend())


@snncore.hookimpl
def register_commands(cli: Any) -> None:
    from snn_backend_fused.cli import kernels_command

    cli.add_command(kernels_command)
