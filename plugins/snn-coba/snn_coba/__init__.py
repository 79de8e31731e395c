"""snn-coba: the conductance-based leaky integrate-and-fire neuron (CobaLIF) for snncore.

Norse-style names, so code ports by changing imports::

    from snn_coba import CobaLIFCell, CobaLIFParameters
    cell = CobaLIFCell(10, 20, p=CobaLIFParameters(), dt=0.001)   # recurrent, as in the reference
    z, state = cell(spikes)                                        # spikes: (batch, 10)

plus a feed-forward cell (``CobaLIFFeedForwardCell``) and the time-loop layers ``CobaLIF`` and
``CobaLIFRecurrent``.
"""

from snn_coba import functional
from snn_coba.coba import (
    COBA_LIF_MODEL,
    CobaLIF,
    CobaLIFCell,
    CobaLIFFeedForwardCell,
    CobaLIFFeedForwardState,
    CobaLIFParameters,
    CobaLIFRecurrent,
    CobaLIFRecurrentCell,
    CobaLIFState,
)

__version__ = "0.1.0"

__all__ = [
    "COBA_LIF_MODEL",
    "CobaLIF",
    "CobaLIFCell",
    "CobaLIFFeedForwardCell",
    "CobaLIFFeedForwardState",
    "CobaLIFParameters",
    "CobaLIFRecurrent",
    "CobaLIFRecurrentCell",
    "CobaLIFState",
    "functional",
]
