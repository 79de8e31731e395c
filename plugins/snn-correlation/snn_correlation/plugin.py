"""Entry point of snn-correlation: registers the ``lif_correlation`` model."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_correlation.lif_correlation import LIF_CORRELATION_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(LIF_CORRELATION_MODEL)
