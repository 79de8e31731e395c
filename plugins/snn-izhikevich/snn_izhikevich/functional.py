"""Pure step functions of the Izhikevich model (the reference's ``norse.torch.functional`` names).

``izhikevich_recurrent_step`` keeps the reference's signature (it weighs input and last spikes
itself); ``izhikevich_recurrent_current_step`` is the core's (it receives the summed current).
"""

from snn_izhikevich.izhikevich import (
    izhikevich_feed_forward_step,
    izhikevich_recurrent_current_step,
    izhikevich_recurrent_step,
)

__all__ = [
    "izhikevich_feed_forward_step",
    "izhikevich_recurrent_current_step",
    "izhikevich_recurrent_step",
]
