"""Quadratic integrate-and-fire (QIF): the canonical model of type-I excitability, as a plugin.

Below threshold the membrane is pulled back to rest; above ``v_critical`` it runs away on its own,
so firing starts at an arbitrarily low rate.  Time in s, rates in 1/s, voltages in model units;
one forward-Euler step of ``dt`` seconds, the input ``x`` a current in voltage units:

    v1 = v + dt·tau_mem_inv·((v − v_rest)·(v − v_critical)/(v_critical − v_rest) + x)
    z  = Θ(v1 − v_th)               (surrogate gradient ``method``, sharpness ``alpha``)
    v' = v1 + z·(v_reset − v1)      (z detached in the reset: no gradient through it)

Dividing by ``v_critical − v_rest`` makes the slope −1 at rest (a LIF leak near ``v_rest``); a
constant input fires repetitively above the rheobase ``(v_critical − v_rest)/4``.  Latham et al.,
J. Neurophysiol. 83 (2000); Ermentrout, Neural Comput. 8 (1996).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import snncore
import torch
from snncore import method_field, tensor_field


@attrs.frozen
class QIFParameters:
    """Each number a scalar or a per-neuron tensor."""

    tau_mem_inv: torch.Tensor = tensor_field(100.0, "1/s", "inverse membrane time constant")
    v_rest: torch.Tensor = tensor_field(0.0, "V", "resting potential (stable fixed point)")
    v_critical: torch.Tensor = tensor_field(0.5, "V", "critical potential (unstable fixed point)")
    v_th: torch.Tensor = tensor_field(1.0, "V", "spike threshold")
    v_reset: torch.Tensor = tensor_field(0.0, "V", "potential after a spike")
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(100.0, "", "surrogate gradient sharpness")

    def __attrs_post_init__(self) -> None:
        if not bool((self.v_critical > self.v_rest).all()):
            raise ValueError(f"v_critical must be above v_rest, got {self}")


class QIFState(NamedTuple):
    z: torch.Tensor  # last spikes: the recurrent variants feed W_rec·z back
    v: torch.Tensor


def qif_step(
    x: torch.Tensor,
    state: QIFState,
    p: QIFParameters,
    dt: float = 0.001,
) -> tuple[torch.Tensor, QIFState]:
    """One Euler step; ``x`` is the input current (``W_in·x + W_rec·z`` when recurrent)."""
    v = state.v
    v1 = v + dt * p.tau_mem_inv * (
        (v - p.v_rest) * (v - p.v_critical) / (p.v_critical - p.v_rest) + x
    )
    z = snncore.spike(v1 - p.v_th, p.method, p.alpha)
    v_new = v1 + z.detach() * (p.v_reset - v1)
    return z, QIFState(z, v_new)


QIF_MODEL = snncore.NeuronModel(
    name="qif",
    family="qif",
    summary="quadratic integrate-and-fire (type-I excitability, current input, no synapse)",
    parameters=QIFParameters,
    feed_forward_step=qif_step,
    feed_forward_state=QIFState,
    recurrent_step=qif_step,
    state=QIFState,
    initial_values={"v": "v_rest"},  # every other state field starts at 0
    class_names={  # the module classes' names (else derived: QifCell, ...)
        "cell": "QIFCell",
        "recurrent_cell": "QIFRecurrentCell",
        "layer": "QIF",
        "recurrent": "QIFRecurrent",
    },
    equations="v1 = v + dt*tau_mem_inv*((v - v_rest)*(v - v_critical)/(v_critical - v_rest) + x);\n"
    "z = H(v1 - v_th);  v' = v1 + z*(v_reset - v1)",
    units={"z": "spikes (0/1)", "v": "V"},
    reference="Latham et al., J. Neurophysiol. 83 (2000); Ermentrout, Neural Comput. 8 (1996)",
)


@snncore.hookimpl
def register_models(register):
    register(QIF_MODEL)
