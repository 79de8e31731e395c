"""Entry point of snn-refrac: registers the ``lif_refrac`` and ``lif_mc_refrac`` models."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_refrac.mc_refrac import LIF_MC_REFRAC_MODEL
from snn_refrac.refrac import LIF_REFRAC_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    for model in (LIF_REFRAC_MODEL, LIF_MC_REFRAC_MODEL):
        register(model)
