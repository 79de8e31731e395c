"""Entry point of snn-lif: registers the ``lif``, ``li`` and ``lif_mc`` models and the NIR
mappings of ``lif`` and ``li``."""

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


@snncore.hookimpl
def register_nir(register: Callable[..., None]) -> None:
    from snn_lif.nir_mapping import NIR_MAPPINGS

    for mapping in NIR_MAPPINGS:
        register(mapping)
