"""Entry point of snn-lif: registers the ``lif``, ``li`` and ``lif_mc`` models."""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_lif.li import LI_MODEL
from snn_lif.lif import LIF_MODEL
from snn_lif.mc import LIF_MC_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    for model in (LIF_MODEL, LI_MODEL, LIF_MC_MODEL):
        register(model)
