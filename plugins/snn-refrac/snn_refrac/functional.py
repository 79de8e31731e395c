"""Pure step functions of the refractory LIF family (the reference's ``norse.torch.functional``
names, plus the ``*_recurrent_step`` functions the core calls with the weighted input current)."""

from snn_refrac.mc_refrac import (
    lif_mc_refrac_feed_forward_step,
    lif_mc_refrac_recurrent_step,
    lif_mc_refrac_step,
)
from snn_refrac.refrac import (
    compute_refractory_update,
    initial_feed_forward_state,
    initial_state,
    lif_refrac_feed_forward_step,
    lif_refrac_recurrent_step,
    lif_refrac_step,
)

__all__ = [
    "compute_refractory_update",
    "initial_feed_forward_state",
    "initial_state",
    "lif_mc_refrac_feed_forward_step",
    "lif_mc_refrac_recurrent_step",
    "lif_mc_refrac_step",
    "lif_refrac_feed_forward_step",
    "lif_refrac_recurrent_step",
    "lif_refrac_step",
]
