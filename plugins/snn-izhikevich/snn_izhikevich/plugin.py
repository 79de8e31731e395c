"""Entry point of snn-izhikevich: registers the ``izhikevich`` model (with its 20 presets) and
``snn gallery izhikevich``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import snncore
from snn_izhikevich.modules import IZHIKEVICH_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(IZHIKEVICH_MODEL)


@snncore.hookimpl
def register_commands(cli: Any) -> None:
    """``snn gallery izhikevich``: the 20 behaviours in one figure (needs snncore[plot])."""
    from snn_izhikevich.gallery import gallery_group, izhikevich_gallery_command

    gallery_group(cli).add_command(izhikevich_gallery_command)
