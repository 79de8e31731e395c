"""snn-lsnn: LIF neurons with an adaptive threshold (LSNN, Bellec et al. 2018) for snncore.

Norse-style names, so code ports by changing imports::

    from snn_lsnn import LSNNRecurrent, LSNNParameters
    layer = LSNNRecurrent(20, 64, p=LSNNParameters(beta=1.8), dt=0.001)
    z, state = layer(x)            # x: (T, B, 20); state.b is each neuron's current threshold
"""

from snn_lsnn import functional
from snn_lsnn.lsnn import (
    LSNN,
    LSNN_MODEL,
    LSNNCell,
    LSNNFeedForwardState,
    LSNNParameters,
    LSNNRecurrent,
    LSNNRecurrentCell,
    LSNNState,
)

__version__ = "0.1.0"

__all__ = [
    "LSNN",
    "LSNN_MODEL",
    "LSNNCell",
    "LSNNFeedForwardState",
    "LSNNParameters",
    "LSNNRecurrent",
    "LSNNRecurrentCell",
    "LSNNState",
    "functional",
]
