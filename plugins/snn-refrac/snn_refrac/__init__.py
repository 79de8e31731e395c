"""snn-refrac: LIF neurons with an absolute refractory period for snncore.

Norse-style names, so code ports by changing imports::

    from snn_lif import LIFParameters
    from snn_refrac import LIFRefracCell, LIFRefracParameters
    cell = LIFRefracCell(p=LIFRefracParameters(lif=LIFParameters(v_th=0.5), rho_reset=3))
    z, state = cell(x)             # state.lif (v, i) and state.rho (steps left)
"""

from snn_refrac import functional
from snn_refrac.mc_refrac import (
    LIF_MC_REFRAC_MODEL,
    LIFMCRefracRecurrent,
    LIFMCRefracRecurrentCell,
)
from snn_refrac.refrac import (
    LIF_REFRAC_MODEL,
    LIFRefrac,
    LIFRefracCell,
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracRecurrent,
    LIFRefracRecurrentCell,
    LIFRefracState,
)

__version__ = "0.1.0"

__all__ = [
    "LIF_MC_REFRAC_MODEL",
    "LIF_REFRAC_MODEL",
    "LIFMCRefracRecurrent",
    "LIFMCRefracRecurrentCell",
    "LIFRefrac",
    "LIFRefracCell",
    "LIFRefracFeedForwardState",
    "LIFRefracParameters",
    "LIFRefracRecurrent",
    "LIFRefracRecurrentCell",
    "LIFRefracState",
    "functional",
]
