"""Entry point of snn-qif (``[project.entry-points.snncore] snn-qif = "snn_qif.plugin"``).

snncore imports this module when it discovers plugins and calls the hooks it implements.
"""

from __future__ import annotations

from collections.abc import Callable

import snncore
from snn_qif.qif import QIF_MODEL


@snncore.hookimpl
def register_models(register: Callable[..., None]) -> None:
    register(QIF_MODEL)
