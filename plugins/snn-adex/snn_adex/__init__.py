"""snn-adex: adaptive exponential (LIFAdEx) and exponential (LIFEx) integrate-and-fire neurons.

Norse-style names, so code ports by changing imports::

    from snn_adex import LIFAdExCell, LIFAdExParameters
    cell = LIFAdExCell(p=LIFAdExParameters(delta_T=0.3), dt=0.001)
    z, state = cell(x)
"""

from snn_adex import functional
from snn_adex.adex import (
    LIF_ADEX_MODEL,
    LIFAdEx,
    LIFAdExCell,
    LIFAdExFeedForwardState,
    LIFAdExParameters,
    LIFAdExRecurrent,
    LIFAdExRecurrentCell,
    LIFAdExState,
)
from snn_adex.ex import (
    LIF_EX_MODEL,
    LIFEx,
    LIFExCell,
    LIFExFeedForwardState,
    LIFExParameters,
    LIFExRecurrent,
    LIFExRecurrentCell,
    LIFExState,
)

__version__ = "0.1.0"

__all__ = [
    "LIF_ADEX_MODEL",
    "LIF_EX_MODEL",
    "LIFAdEx",
    "LIFAdExCell",
    "LIFAdExFeedForwardState",
    "LIFAdExParameters",
    "LIFAdExRecurrent",
    "LIFAdExRecurrentCell",
    "LIFAdExState",
    "LIFEx",
    "LIFExCell",
    "LIFExFeedForwardState",
    "LIFExParameters",
    "LIFExRecurrent",
    "LIFExRecurrentCell",
    "LIFExState",
    "functional",
]
