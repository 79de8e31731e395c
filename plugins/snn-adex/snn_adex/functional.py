"""Pure step functions of the AdEx family (the reference's ``norse.torch.functional`` names).

``lif_adex_step`` / ``lif_ex_step`` take input spikes and both weight matrices, as the reference's
do; ``*_recurrent_step`` take the already weighted current ``W_in·x + W_rec·z_prev`` (what the
core's recurrent modules pass); ``*_feed_forward_step`` take an input current;
``*_current_encoder`` let the input current drive the voltage directly (no synaptic current).
"""

from snn_adex.adex import (
    lif_adex_current_encoder,
    lif_adex_feed_forward_step,
    lif_adex_recurrent_step,
    lif_adex_step,
)
from snn_adex.ex import (
    lif_ex_current_encoder,
    lif_ex_feed_forward_step,
    lif_ex_recurrent_step,
    lif_ex_step,
)
from snn_adex.exponential import exp_ceiling, exp_term

__all__ = [
    "exp_ceiling",
    "exp_term",
    "lif_adex_current_encoder",
    "lif_adex_feed_forward_step",
    "lif_adex_recurrent_step",
    "lif_adex_step",
    "lif_ex_current_encoder",
    "lif_ex_feed_forward_step",
    "lif_ex_recurrent_step",
    "lif_ex_step",
]
