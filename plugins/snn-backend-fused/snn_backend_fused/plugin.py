"""Entry point of snn-backend-fused: registers the ``fused`` backend."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_backend_fused.backend import FusedBackend


@snncore.hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(FusedBackend())
