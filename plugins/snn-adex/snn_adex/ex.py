"""Exponential integrate-and-fire neuron (LIFEx) with a current-based exponential synapse.

ODE (Euler, step ``dt`` seconds), the input current ``x`` jumping into the synaptic current:

    dv/dt = tau_mem_inv · ((v_leak − v) + delta_T·exp((v − v_th)/delta_T) + i)
    di/dt = −tau_syn_inv · i
    z = Θ(v − v_th);  v ← (1 − z)·v + z·v_reset

The exponential term makes the membrane run away once ``v`` nears ``v_th``; ``delta_T`` (> 0) sets
how sharply.  One step, in the order of the reference (Norse 1.x):

    1. i1 = i + x
    2. v1 = v + dt·tau_mem_inv·((v_leak − v) + delta_T·exp((v − v_th)/delta_T) + i1)
    3. i' = i1 − dt·tau_syn_inv·i1
    4. z  = Θ(v1 − v_th)             (surrogate gradient ``method`` with sharpness ``alpha``)
    5. v' = (1 − z)·v1 + z·v_reset

The exponent is clamped at ``ln(max float)/2`` so it never overflows (see
:mod:`snn_adex.exponential`: no change to spikes or states where the reference is finite).  As in
the reference, the recurrent step keeps the spike's gradient in the reset (no detach).
Initial state ``v = v_leak``, ``i = 0``, ``z = 0``.  Voltages in the model's units, rates in 1/s.

Fourcaud-Trocmé, Hansel, van Vreeswijk & Brunel, "How spike generation mechanisms determine the
neuronal response to fluctuating inputs", J. Neurosci. 23 (2003) 11628–11640; Gerstner et al.,
*Neuronal Dynamics* (2014), ch. 5.2.
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
class LIFExParameters(ParameterRecord):
    """Parameters of a LIFEx neuron; each numeric field a scalar or per-neuron tensor."""

    delta_T: torch.Tensor = tensor_field(
        0.5,
        "V",
        "sharpness of the exponential spike initiation (> 0)",
        validator=attrs.validators.and_(check_delta_T, finite),
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


class LIFExFeedForwardState(NamedTuple):
    """State of a feed-forward LIFEx neuron: membrane voltage ``v``, synaptic current ``i``."""

    v: torch.Tensor
    i: torch.Tensor


class LIFExState(NamedTuple):
    """State of a recurrent LIFEx neuron: last spikes ``z``, voltage ``v``, current ``i``."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor


def _step(
    input_current: torch.Tensor, v: torch.Tensor, i: torch.Tensor, p: LIFExParameters, dt: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1–5: ``(z, v', i')``."""
    i_jump = i + input_current
    dv = dt * p.tau_mem_inv * ((p.v_leak - v) + exp_term(v, p.v_th, p.delta_T) + i_jump)
    v_decayed = v + dv
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    z = snncore.spike(v_decayed - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, v_new, i_decayed


def lif_ex_feed_forward_step(
    input_current: torch.Tensor,
    state: LIFExFeedForwardState,
    p: LIFExParameters = LIFExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFExFeedForwardState]:
    """One Euler step of LIFEx driven by ``input_current``; returns ``(spikes, state)``."""
    z, v, i = _step(input_current, state.v, state.i, p, dt)
    return z, LIFExFeedForwardState(v, i)


def lif_ex_recurrent_step(
    input_current: torch.Tensor,
    state: LIFExState,
    p: LIFExParameters = LIFExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFExState]:
    """One step of recurrent LIFEx; ``input_current`` is ``W_in·x + W_rec·z_prev``."""
    z, v, i = _step(input_current, state.v, state.i, p, dt)
    return z, LIFExState(z, v, i)


def lif_ex_step(
    input_spikes: torch.Tensor,
    state: LIFExState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFExParameters = LIFExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFExState]:
    """Recurrent LIFEx step that weighs its inputs itself (the reference's functional signature)."""
    current = torch.nn.functional.linear(input_spikes, input_weights) + torch.nn.functional.linear(
        state.z, recurrent_weights
    )
    return lif_ex_recurrent_step(current, state, p, dt)


def lif_ex_current_encoder(
    input_current: torch.Tensor,
    voltage: torch.Tensor,
    p: LIFExParameters = LIFExParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``input_current`` as LIFEx spikes: the current drives ``v`` directly (no synapse).

    The step above with the synaptic current at zero, ``i1 = x``:
    ``v1 = v + dt·tau_mem_inv·((v_leak − v) + delta_T·exp((v − v_th)/delta_T) + x)``,
    ``z = Θ(v1 − v_th)``, ``v' = (1 − z)·v1 + z·v_reset``.  Returns ``(z, v')``.
    """
    z, v, _ = _step(input_current, voltage, torch.zeros_like(voltage), p, dt)
    return z, v


LIF_EX_MODEL = snncore.NeuronModel(
    name="lif_ex",
    family="adex",
    summary="exponential integrate-and-fire with exponential current synapse",
    parameters=LIFExParameters,
    feed_forward_step=lif_ex_feed_forward_step,
    feed_forward_state=LIFExFeedForwardState,
    recurrent_step=lif_ex_recurrent_step,
    state=LIFExState,
    initial_values={"v": "v_leak"},
    equations=(
        "i1 = i + x;\n"
        "v1 = v + dt*tau_mem_inv*((v_leak - v) + delta_T*exp((v - v_th)/delta_T) + i1);\n"
        "i' = i1 - dt*tau_syn_inv*i1;  z = H(v1 - v_th);  v' = (1 - z)*v1 + z*v_reset\n"
        "(exponent clamped at ln(max float)/2 against overflow)"
    ),
    units={"z": "spikes (0/1)", "v": "V", "i": "A (model units)"},
    reference="Fourcaud-Trocmé et al., J. Neurosci. 23 (2003) 11628; Gerstner et al., "
    "Neuronal Dynamics (2014), ch. 5.2",
    class_names={
        "cell": "LIFExCell",
        "recurrent_cell": "LIFExRecurrentCell",
        "layer": "LIFEx",
        "recurrent": "LIFExRecurrent",
    },
)

LIFExCell, LIFExRecurrentCell, LIFEx, LIFExRecurrent = snncore.module_classes(LIF_EX_MODEL)
