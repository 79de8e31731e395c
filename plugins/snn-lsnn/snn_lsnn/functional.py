"""Pure step functions of LSNN (the reference's ``norse.torch.functional`` names, plus ours)."""

from snn_lsnn.lsnn import (
    initial_feed_forward_state,
    initial_state,
    lsnn_feed_forward_step,
    lsnn_recurrent_step,
    lsnn_step,
)

__all__ = [
    "initial_feed_forward_state",
    "initial_state",
    "lsnn_feed_forward_step",
    "lsnn_recurrent_step",
    "lsnn_step",
]
