"""snn-lif: leaky integrate-and-fire, leaky integrator and multi-compartment LIF for snncore.

Norse-style names, so code ports by changing imports::

    from snn_lif import LIFCell, LIFParameters
    cell = LIFCell(p=LIFParameters(v_th=0.5), dt=0.001)
    z, state = cell(x)
"""

from snn_lif import functional
from snn_lif.li import LI, LI_MODEL, LICell, LILinearCell, LIParameters, LIState
from snn_lif.lif import (
    LIF,
    LIF_MODEL,
    LIFCell,
    LIFFeedForwardState,
    LIFParameters,
    LIFRecurrent,
    LIFRecurrentCell,
    LIFState,
)
from snn_lif.mc import LIF_MC_MODEL, LIFMCRecurrent, LIFMCRecurrentCell

__version__ = "0.1.0"

__all__ = [
    "LI",
    "LIF",
    "LIF_MC_MODEL",
    "LIF_MODEL",
    "LI_MODEL",
    "LICell",
    "LIFCell",
    "LIFFeedForwardState",
    "LIFMCRecurrent",
    "LIFMCRecurrentCell",
    "LIFParameters",
    "LIFRecurrent",
    "LIFRecurrentCell",
    "LIFState",
    "LILinearCell",
    "LIParameters",
    "LIState",
    "functional",
]
