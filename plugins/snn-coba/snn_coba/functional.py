"""Pure step functions of CobaLIF (the reference's ``norse.torch.functional`` names).

``coba_lif_step`` takes input spikes and both weight matrices, as the reference's does (with its
recurrent-input bug fixed); ``coba_lif_recurrent_step`` takes the two-channel conductance jump
``coba_synaptic_input(x, W_in) + coba_synaptic_input(z_prev, W_rec)`` (what the core's recurrent
modules pass); ``coba_lif_feed_forward_step`` takes a signed input.
"""

from snn_coba.coba import (
    coba_lif_feed_forward_step,
    coba_lif_recurrent_step,
    coba_lif_step,
    coba_synaptic_input,
)

__all__ = [
    "coba_lif_feed_forward_step",
    "coba_lif_recurrent_step",
    "coba_lif_step",
    "coba_synaptic_input",
]
