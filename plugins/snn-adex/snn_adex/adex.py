"""Adaptive exponential integrate-and-fire neuron (LIFAdEx, AdEx) with a current synapse.

ODE (Euler, step ``dt`` seconds), the input current ``x`` jumping into the synaptic current:

    dv/dt = tau_mem_inv · ((v_leak − v) + delta_T·exp((v − v_th)/delta_T) + i − a)
    di/dt = −tau_syn_inv · i
    da/dt = tau_ada_inv · (adaptation_current·(v − v_leak) − a)
    z = Θ(v − v_th);  v ← (1 − z)·v + z·v_reset;  a ← a + adaptation_spike·z

``a`` is an adaptation current: driven by the voltage (sub-threshold adaptation) and bumped by
every spike (spike-triggered adaptation), it lowers the firing rate under constant drive.  One
step, in the order of the reference (Norse 1.x):

    1. i1 = i + x
    2. v1 = v + dt·tau_mem_inv·((v_leak − v) + delta_T·exp((v − v_th)/delta_T) + i1 − a)
    3. i' = i1 − dt·tau_syn_inv·i1
    4. a1 = a + dt·tau_ada_inv·(adaptation_current·(v − v_leak) − a)     (the old ``v``)
    5. z  = Θ(v1 − v_th);  v' = (1 − z)·v1 + z·v_reset;  a' = a1 + adaptation_spike·z

The exponent is clamped at ``ln(max float)/2`` so it never overflows (see
:mod:`snn_adex.exponential`: no change to spikes or states where the reference is finite).  As in
the reference, the recurrent step keeps the spike's gradient in the reset and the adaptation jump
(no detach).  Initial state ``v = v_leak``, ``i = 0``, ``a = 0``, ``z = 0``.

Brette & Gerstner, "Adaptive exponential integrate-and-fire model as an effective description of
neuronal activity", J. Neurophysiol. 94 (2005) 3637–3642.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import torch

import snncore
from snn_adex.exponential import check_delta_T, exp_term
from snncore import method_field, tensor_field
from snncore.parameters import ParameterRecord, finite, non_negative_finite, positive_finite


@attrs.frozen
class LIFAdExParameters(ParameterRecord):
    """Parameters of a LIFAdEx neuron; each numeric field a scalar or per-neuron tensor."""

    adaptation_current: torch.Tensor = tensor_field(
        4.0,
        "S (model units)",
        "sub-threshold adaptation: coupling of a to v − v_leak",
        validator=finite,
    )
    adaptation_spike: torch.Tensor = tensor_field(
        0.02, "A (model units)", "spike-triggered adaptation: jump of a per spike", validator=finite
    )
    delta_T: torch.Tensor = tensor_field(
        0.5,
        "V",
        "sharpness of the exponential spike initiation (> 0)",
        validator=attrs.validators.and_(check_delta_T, finite),
    )
    tau_ada_inv: torch.Tensor = tensor_field(
        2.0, "1/s", "inverse adaptation time constant", validator=positive_finite
    )
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


class LIFAdExFeedForwardState(NamedTuple):
    """State of a feed-forward LIFAdEx neuron: voltage ``v``, current ``i``, adaptation ``a``."""

    v: torch.Tensor
    i: torch.Tensor
    a: torch.Tensor


class LIFAdExState(NamedTuple):
    """State of a recurrent LIFAdEx neuron: last spikes ``z``, ``v``, ``i`` and ``a``."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor
    a: torch.Tensor


def _step(
    input_current: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    a: torch.Tensor,
    p: LIFAdExParameters,
    dt: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1–5: ``(z, v', i', a')``."""
    i_jump = i + input_current
    drive = (p.v_leak - v) + exp_term(v, p.v_th, p.delta_T) + i_jump - a
    v_decayed = v + dt * p.tau_mem_inv * drive
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    a_decayed = a + dt * p.tau_ada_inv * (p.adaptation_current * (v - p.v_leak) - a)
    z = snncore.spike(v_decayed - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    a_new = a_decayed + z * p.adaptation_spike
    return z, v_new, i_decayed, a_new


def lif_adex_feed_forward_step(
    input_current: torch.Tensor,
    state: LIFAdExFeedForwardState,
    p: LIFAdExParameters = LIFAdExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFAdExFeedForwardState]:
    """One Euler step of LIFAdEx driven by ``input_current``; returns ``(spikes, state)``."""
    z, v, i, a = _step(input_current, state.v, state.i, state.a, p, dt)
    return z, LIFAdExFeedForwardState(v, i, a)


def lif_adex_recurrent_step(
    input_current: torch.Tensor,
    state: LIFAdExState,
    p: LIFAdExParameters = LIFAdExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFAdExState]:
    """One step of recurrent LIFAdEx; ``input_current`` is ``W_in·x + W_rec·z_prev``."""
    z, v, i, a = _step(input_current, state.v, state.i, state.a, p, dt)
    return z, LIFAdExState(z, v, i, a)


def lif_adex_step(
    input_spikes: torch.Tensor,
    state: LIFAdExState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFAdExParameters = LIFAdExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFAdExState]:
    """Recurrent LIFAdEx step that weighs its inputs itself (the reference's signature)."""
    current = torch.nn.functional.linear(input_spikes, input_weights) + torch.nn.functional.linear(
        state.z, recurrent_weights
    )
    return lif_adex_recurrent_step(current, state, p, dt)


def lif_adex_current_encoder(
    input_current: torch.Tensor,
    voltage: torch.Tensor,
    adaptation: torch.Tensor,
    p: LIFAdExParameters = LIFAdExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``input_current`` as LIFAdEx spikes: the current drives ``v`` directly.

    Steps 1–5 with the synaptic current at zero (``i1 = x``); the adaptation current is
    integrated like the model's (``a1 = a + dt·tau_ada_inv·(adaptation_current·(v − v_leak) −
    a)`` from the old ``v``, then ``+ adaptation_spike·z``).  Returns ``(z, v', a')``.
    """
    z, v, _, a = _step(input_current, voltage, torch.zeros_like(voltage), adaptation, p, dt)
    return z, v, a


LIF_ADEX_MODEL = snncore.NeuronModel(
    name="lif_adex",
    family="adex",
    summary="adaptive exponential integrate-and-fire (AdEx) with exponential current synapse",
    parameters=LIFAdExParameters,
    feed_forward_step=lif_adex_feed_forward_step,
    feed_forward_state=LIFAdExFeedForwardState,
    recurrent_step=lif_adex_recurrent_step,
    state=LIFAdExState,
    initial_values={"v": "v_leak"},
    equations=(
        "i1 = i + x;\n"
        "v1 = v + dt*tau_mem_inv*((v_leak - v) + delta_T*exp((v - v_th)/delta_T) + i1 - a);\n"
        "i' = i1 - dt*tau_syn_inv*i1;\n"
        "a1 = a + dt*tau_ada_inv*(adaptation_current*(v - v_leak) - a);\n"
        "z = H(v1 - v_th);  v' = (1 - z)*v1 + z*v_reset;  a' = a1 + adaptation_spike*z\n"
        "(exponent clamped at ln(max float)/2 against overflow)"
    ),
    units={"z": "spikes (0/1)", "v": "V", "i": "A (model units)", "a": "A (model units)"},
    reference="Brette & Gerstner, J. Neurophysiol. 94 (2005) 3637",
    class_names={
        "cell": "LIFAdExCell",
        "recurrent_cell": "LIFAdExRecurrentCell",
        "layer": "LIFAdEx",
        "recurrent": "LIFAdExRecurrent",
    },
)

LIFAdExCell, LIFAdExRecurrentCell, LIFAdEx, LIFAdExRecurrent = snncore.module_classes(
    LIF_ADEX_MODEL
)
