"""Entry point of snn-coba: registers the ``coba_lif`` model (family ``coba``)."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_coba.coba import COBA_LIF_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(COBA_LIF_MODEL)
