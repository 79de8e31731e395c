"""Leaky integrate-and-fire neuron with a current-based exponential synapse.

ODE (Euler, step ``dt`` seconds), with input current ``x`` jumping into the synaptic current:

    dv/dt = tau_mem_inv · ((v_leak − v) + i)      membrane voltage
    di/dt = −tau_syn_inv · i                      synaptic current
    z = Θ(v − v_th);  v ← (1 − z)·v + z·v_reset   spike and reset

One step, in the order of the reference (Norse 1.x):

    1. i1 = i + x
    2. v1 = v + dt·tau_mem_inv·((v_leak − v) + i1)
    3. i' = i1 − dt·tau_syn_inv·i1
    4. z  = Θ(v1 − v_th)             (surrogate gradient ``method`` with sharpness ``alpha``)
    5. v' = (1 − z)·v1 + z·v_reset   (recurrent step: z detached in the reset)

Initial state: ``v = v_leak``, ``i = 0``, ``z = 0``.  Voltages in the model's (dimensionless)
units, rates in 1/s.  Gerstner, Kistler, Naud & Paninski, *Neuronal Dynamics* (2014), ch. 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch

import snncore
from snncore import method_field, tensor_field
from snncore.parameters import ParameterRecord, finite, non_negative_finite, positive_finite


@attrs.frozen
class LIFParameters(ParameterRecord):
    """Parameters of a LIF neuron; each numeric field a scalar or per-neuron tensor."""

    tau_syn_inv: torch.Tensor = tensor_field(
        200.0, "1/s", "inverse synaptic time constant", validator=positive_finite
    )
    tau_mem_inv: torch.Tensor = tensor_field(
        100.0, "1/s", "inverse membrane time constant", validator=positive_finite
    )
    v_leak: torch.Tensor = tensor_field(0.0, "V", "leak (resting) potential", validator=finite)
    v_th: torch.Tensor = tensor_field(1.0, "V", "spike threshold", validator=finite)
    v_reset: torch.Tensor = tensor_field(0.0, "V", "potential after a spike", validator=finite)
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(
        100.0, "", "surrogate gradient sharpness", validator=non_negative_finite
    )


class LIFFeedForwardState(NamedTuple):
    """State of a feed-forward LIF neuron: membrane voltage ``v`` and synaptic current ``i``."""

    v: torch.Tensor
    i: torch.Tensor


class LIFState(NamedTuple):
    """State of a recurrent LIF neuron: last spikes ``z``, voltage ``v``, current ``i``."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor


def _integrate(
    i_jump: torch.Tensor, v: torch.Tensor, p: LIFParameters, dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 2 and 3: decayed voltage and current, after the input jumped into the current."""
    v_decayed = v + dt * p.tau_mem_inv * ((p.v_leak - v) + i_jump)
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    return v_decayed, i_decayed


def lif_feed_forward_step(
    input_current: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFFeedForwardState]:
    """One Euler step of LIF driven by ``input_current``; returns ``(spikes, state)``."""
    v_decayed, i_decayed = _integrate(state.i + input_current, state.v, p, dt)
    z = snncore.spike(v_decayed - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, LIFFeedForwardState(v_new, i_decayed)


def lif_recurrent_step(
    input_current: torch.Tensor,
    state: LIFState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFState]:
    """One step of recurrent LIF; ``input_current`` is ``W_in·x + W_rec·z_prev``.

    The reset uses the detached spike, as the reference does: no gradient flows through it.
    """
    v_decayed, i_decayed = _integrate(state.i + input_current, state.v, p, dt)
    z = snncore.spike(v_decayed - p.v_th, p.method, p.alpha)
    z_const = z.detach()
    v_new = (1 - z_const) * v_decayed + z_const * p.v_reset
    return z, LIFState(z, v_new, i_decayed)


def lif_step(
    input_spikes: torch.Tensor,
    state: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFState]:
    """Recurrent LIF step that weighs its inputs itself (the reference's functional signature)."""
    current = torch.nn.functional.linear(input_spikes, input_weights) + torch.nn.functional.linear(
        state.z, recurrent_weights
    )
    return lif_recurrent_step(current, state, p, dt)


def initial_feed_forward_state(
    p: LIFParameters, shape: Any, device: Any = None, dtype: Any = None
) -> LIFFeedForwardState:
    i = torch.zeros(shape, device=device, dtype=dtype)
    return LIFFeedForwardState(v=i + p.v_leak.detach().to(device=device, dtype=dtype), i=i)


def initial_state(p: LIFParameters, shape: Any, device: Any = None, dtype: Any = None) -> LIFState:
    zeros = torch.zeros(shape, device=device, dtype=dtype)
    return LIFState(z=zeros, v=zeros + p.v_leak.detach().to(device=device, dtype=dtype), i=zeros)


def _feed_forward_sequence(
    x: torch.Tensor, state: LIFFeedForwardState, p: LIFParameters, dt: float
) -> Any:
    from snn_lif.sequence import lif_feed_forward_sequence

    return lif_feed_forward_sequence(x, state, p, dt)


def _adjoint_layer(x: torch.Tensor, state: LIFFeedForwardState, p: LIFParameters, dt: float) -> Any:
    from snn_lif.adjoint import lif_adjoint_layer

    return lif_adjoint_layer(x, state, p, dt)


def _adjoint_recurrent(
    x: torch.Tensor, state: LIFState, p: LIFParameters, dt: float, *w: Any
) -> Any:
    from snn_lif.adjoint import lif_adjoint_recurrent

    return lif_adjoint_recurrent(x, state, p, dt, *w)


LIF_MODEL = snncore.NeuronModel(
    name="lif",
    family="lif",
    summary="leaky integrate-and-fire with exponential current synapse",
    parameters=LIFParameters,
    feed_forward_step=lif_feed_forward_step,
    feed_forward_state=LIFFeedForwardState,
    initial_feed_forward_state=initial_feed_forward_state,
    feed_forward_sequence=_feed_forward_sequence,
    adjoint={"layer": _adjoint_layer, "recurrent": _adjoint_recurrent},
    recurrent_step=lif_recurrent_step,
    state=LIFState,
    initial_state=initial_state,
    equations=(
        "i1 = i + x;  v1 = v + dt*tau_mem_inv*((v_leak - v) + i1);  i' = i1 - dt*tau_syn_inv*i1;\n"
        "z = H(v1 - v_th);  v' = (1 - z)*v1 + z*v_reset"
    ),
    units={"z": "spikes (0/1)", "v": "V", "i": "A (model units)"},
    reference="Gerstner et al., Neuronal Dynamics (2014), ch. 1",
    class_names={
        "cell": "LIFCell",
        "recurrent_cell": "LIFRecurrentCell",
        "layer": "LIF",
        "recurrent": "LIFRecurrent",
    },
)

LIFCell, LIFRecurrentCell, LIF, LIFRecurrent = snncore.module_classes(LIF_MODEL)
