"""Entry point of snn-izhikevich: registers the ``izhikevich`` model (with its 20 presets)."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_izhikevich.modules import IZHIKEVICH_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(IZHIKEVICH_MODEL)
