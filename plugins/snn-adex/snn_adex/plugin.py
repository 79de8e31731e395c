"""Entry point of snn-adex: registers the ``lif_adex`` and ``lif_ex`` models (family ``adex``)."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_adex.adex import LIF_ADEX_MODEL
from snn_adex.ex import LIF_EX_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    for model in (LIF_ADEX_MODEL, LIF_EX_MODEL):
        register(model)
