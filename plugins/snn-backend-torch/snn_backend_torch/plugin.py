"""Entry point of snn-backend-torch: registers the ``torch`` backend."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_backend_torch.backend import TorchBackend


@snncore.hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(TorchBackend())
