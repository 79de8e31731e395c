"""Entry point of snn-lsnn: registers the ``lsnn`` model."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_lsnn.lsnn import LSNN_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(LSNN_MODEL)
