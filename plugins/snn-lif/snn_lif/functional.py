"""Pure step functions of the LIF family (the reference's ``norse.torch.functional`` names)."""

from snn_lif.li import li_feed_forward_step, li_step
from snn_lif.lif import lif_feed_forward_step, lif_recurrent_step, lif_step
from snn_lif.mc import lif_mc_recurrent_step, lif_mc_step

__all__ = [
    "li_feed_forward_step",
    "li_step",
    "lif_feed_forward_step",
    "lif_mc_recurrent_step",
    "lif_mc_step",
    "lif_recurrent_step",
    "lif_step",
]
