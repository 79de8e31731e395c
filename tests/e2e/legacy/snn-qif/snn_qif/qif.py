"""Quadratic integrate-and-fire (QIF) neuron: the canonical model of type-I excitability.

Below threshold the membrane is pulled back to rest; above a critical voltage it runs away on its
own, so firing can start at an arbitrarily low rate.  Time in seconds, rates in 1/s, voltages in the
model's (dimensionless) units, the input ``x`` a current in voltage units:

    dv/dt = tau_mem_inv · ((v − v_rest)·(v − v_critical) / (v_critical − v_rest) + x)
    z = Θ(v − v_th);  v ← (1 − z)·v + z·v_reset

Dividing the quadratic by ``v_critical − v_rest`` keeps it a voltage and makes its slope −1 at rest,
so near ``v_rest`` the neuron leaks exactly like a LIF neuron with the same ``tau_mem_inv``.  For
a constant input the neuron fires repetitively once ``x > (v_critical − v_rest) / 4`` (the
rheobase); below that ``v`` settles at a stable fixed point under ``v_critical``.

One forward-Euler step of ``dt`` seconds (no synapse: the input enters the voltage directly):

    1. v1 = v + dt·tau_mem_inv·((v − v_rest)·(v − v_critical)/(v_critical − v_rest) + x)
    2. z  = Θ(v1 − v_th)             (surrogate gradient ``method`` with sharpness ``alpha``)
    3. v' = (1 − z)·v1 + z·v_reset   (recurrent step: z detached in the reset)

Initial state: ``v = v_rest``, ``z = 0``.  Euler is only accurate while ``dt·tau_mem_inv`` times
the right-hand side stays small against ``v_th − v_reset``; a very large input makes ``v`` jump
over the threshold in one step (still one spike, then reset).

Latham, Richmond, Nelson & Nirenberg, "Intrinsic dynamics in neuronal networks. I. Theory",
J. Neurophysiol. 83 (2000) 808–827; Ermentrout, "Type I membranes, phase resetting curves, and
synchrony", Neural Computation 8 (1996) 979–1001.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch

import snncore
from snncore import method_field, tensor_field

# 1. Parameters: an immutable attrs record; every number becomes a tensor (scalar or per neuron).


@attrs.frozen
class QIFParameters:
    """Parameters of a QIF neuron; each numeric field a scalar or a per-neuron tensor."""

    tau_mem_inv: torch.Tensor = tensor_field(100.0, "1/s", "inverse membrane time constant")
    v_rest: torch.Tensor = tensor_field(0.0, "V", "resting potential (stable fixed point)")
    v_critical: torch.Tensor = tensor_field(0.5, "V", "critical potential (unstable fixed point)")
    v_th: torch.Tensor = tensor_field(1.0, "V", "spike threshold (the cut-off of the run-away)")
    v_reset: torch.Tensor = tensor_field(0.0, "V", "potential after a spike")
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(100.0, "", "surrogate gradient sharpness")

    def __attrs_post_init__(self) -> None:
        if not bool((self.v_critical > self.v_rest).all()):
            raise ValueError(
                f"QIFParameters: v_critical ({self.v_critical}) must be above "
                f"v_rest ({self.v_rest})"
            )


# 2. States: NamedTuples.  The recurrent state needs a `z` field (the core feeds W_rec·z back).


class QIFFeedForwardState(NamedTuple):
    """State of a feed-forward QIF neuron: the membrane voltage ``v``."""

    v: torch.Tensor


class QIFState(NamedTuple):
    """State of a recurrent QIF neuron: the last spikes ``z`` and the voltage ``v``."""

    z: torch.Tensor
    v: torch.Tensor


# 3. Pure step functions: (input current, state, parameters, dt) -> (spikes, new state).


def _integrate(v: torch.Tensor, x: torch.Tensor, p: QIFParameters, dt: float) -> torch.Tensor:
    """Step 1: one Euler step of the membrane equation."""
    quadratic = (v - p.v_rest) * (v - p.v_critical) / (p.v_critical - p.v_rest)
    return v + dt * p.tau_mem_inv * (quadratic + x)


def qif_feed_forward_step(
    input_current: torch.Tensor, state: QIFFeedForwardState, p: QIFParameters, dt: float = 0.001
) -> tuple[torch.Tensor, QIFFeedForwardState]:
    """One Euler step of QIF driven by ``input_current``; returns ``(spikes, state)``."""
    v_integrated = _integrate(state.v, input_current, p, dt)
    z = snncore.spike(v_integrated - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_integrated + z * p.v_reset
    return z, QIFFeedForwardState(v_new)


def qif_recurrent_step(
    input_current: torch.Tensor, state: QIFState, p: QIFParameters, dt: float = 0.001
) -> tuple[torch.Tensor, QIFState]:
    """One step of recurrent QIF; ``input_current`` is ``W_in·x + W_rec·z_prev`` (made by the core).

    The reset uses the detached spike, so no gradient flows through it (as for LIF).
    """
    v_integrated = _integrate(state.v, input_current, p, dt)
    z = snncore.spike(v_integrated - p.v_th, p.method, p.alpha)
    z_const = z.detach()
    v_new = (1 - z_const) * v_integrated + z_const * p.v_reset
    return z, QIFState(z, v_new)


# 4. Initial states for a batch of neurons of `shape` (e.g. (batch, features)).


def initial_feed_forward_state(
    p: QIFParameters, shape: Any, device: Any = None, dtype: Any = None
) -> QIFFeedForwardState:
    v = torch.zeros(shape, device=device, dtype=dtype)
    return QIFFeedForwardState(v=v + p.v_rest.detach().to(device=device, dtype=dtype))


def initial_state(p: QIFParameters, shape: Any, device: Any = None, dtype: Any = None) -> QIFState:
    zeros = torch.zeros(shape, device=device, dtype=dtype)
    return QIFState(z=zeros, v=zeros + p.v_rest.detach().to(device=device, dtype=dtype))


# 5. The model: data the core turns into cell, recurrent cell, layer and recurrent modules.

QIF_MODEL = snncore.NeuronModel(
    name="qif",
    family="qif",
    summary="quadratic integrate-and-fire (type-I excitability, current input, no synapse)",
    parameters=QIFParameters,
    feed_forward_step=qif_feed_forward_step,
    feed_forward_state=QIFFeedForwardState,
    initial_feed_forward_state=initial_feed_forward_state,
    recurrent_step=qif_recurrent_step,
    state=QIFState,
    initial_state=initial_state,
    equations=(
        "v1 = v + dt*tau_mem_inv*((v - v_rest)*(v - v_critical)/(v_critical - v_rest) + x);\n"
        "z = H(v1 - v_th);  v' = (1 - z)*v1 + z*v_reset"
    ),
    units={"z": "spikes (0/1)", "v": "V"},
    reference="Latham et al., J. Neurophysiol. 83 (2000); Ermentrout, Neural Comput. 8 (1996)",
)

# 6. Norse-style class names, importable from this module so that instances pickle.

QIFCell = snncore.module_class(QIF_MODEL, "cell", "QIFCell", __name__)
QIFRecurrentCell = snncore.module_class(QIF_MODEL, "recurrent_cell", "QIFRecurrentCell", __name__)
QIF = snncore.module_class(QIF_MODEL, "layer", "QIF", __name__)
QIFRecurrent = snncore.module_class(QIF_MODEL, "recurrent", "QIFRecurrent", __name__)
