"""Conductance-based leaky integrate-and-fire neuron (CobaLIF) with exponential synapses.

Input moves two conductances, not a current: positive input opens excitatory channels (reversal
potential ``e_rev_E``), negative input inhibitory ones (``e_rev_I``).  ODE (Euler, step ``dt``):

    dv/dt   = c_m_inv · (g_l·(v_rest − v) + g_e·(e_rev_E − v) + g_i·(e_rev_I − v))
    dg_e/dt = −tau_syn_exc_inv · g_e;   dg_i/dt = −tau_syn_inh_inv · g_i
    z = Θ(v − v_thresh);  v ← (1 − z)·v + z·v_reset

One step, in the order of the reference (Norse 1.x: jump, decay, then the voltage with the decayed
conductances and the old ``v``):

    1. g_e1 = g_e + relu(x),  g_i1 = g_i + relu(−x)
       recurrent: g_e1 = g_e + relu(W_in)·x + relu(W_rec)·z_prev,
                  g_i1 = g_i + relu(−W_in)·x + relu(−W_rec)·z_prev
    2. g_e' = g_e1 − dt·tau_syn_exc_inv·g_e1,  g_i' = g_i1 − dt·tau_syn_inh_inv·g_i1
    3. v1 = v + dt·c_m_inv·(g_l·(v_rest − v) + g_e'·(e_rev_E − v) + g_i'·(e_rev_I − v))
    4. z  = Θ(v1 − v_thresh);  v' = (1 − z)·v1 + z·v_reset

Deliberate differences from the reference (docs/models-coba.md):

- **Recurrent input fix.**  The reference's recurrent step computes the input jump and then
  overwrites it with the recurrent one (``g_e = state.g_e + relu(W_rec)·z``), so input spikes are
  lost whenever it runs.  We add both contributions, as its own docstring says.
- **Conductances never go below zero** (``g1 = max(g1, 0)`` after the jump).  Spikes are
  non-negative and the split weights ``relu(±W)`` are too, so this changes nothing for spike
  input; it matters only for negative "spikes" or a negative initial state, where a negative total
  conductance makes the Euler step unstable (``v`` grows by a factor ``1 + dt·c_m_inv·|g|`` per
  step) and the reference overflows to inf/NaN.  The clamp passes gradients at exactly 0.
- **Initial state** ``v = v_rest`` (the reference's ``CobaLIFCell`` starts at ``v = 0``, above the
  default threshold of −10, so every neuron spikes on the first step), ``g_e = g_i = 0``, ``z = 0``.

As in the reference, the recurrent step keeps the spike's gradient in the reset (no detach).
The recurrent modules receive the excitatory and inhibitory input as one two-channel tensor
``[relu(W)·s, relu(−W)·s]`` (last dimension ``2·hidden``) through the model's ``synaptic_input``.

Units follow the reference's defaults: voltages in mV, conductances and ``c_m_inv`` in consistent
model units (``dt·c_m_inv·g`` is dimensionless), rates in 1/s.  Destexhe, Rudolph & Paré,
"The high-conductance state of neocortical neurons in vivo", Nat. Rev. Neurosci. 4 (2003) 739–751;
Gerstner et al., *Neuronal Dynamics* (2014), ch. 3.1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch

import snncore
from snncore import method_field, tensor_field
from snncore.parameters import ParameterRecord, finite, non_negative_finite, positive_finite


@attrs.frozen
class CobaLIFParameters(ParameterRecord):
    """Parameters of a conductance-based LIF neuron; each a scalar or per-neuron tensor."""

    tau_syn_exc_inv: torch.Tensor = tensor_field(
        0.2, "1/s", "inverse excitatory synaptic time constant", validator=positive_finite
    )
    tau_syn_inh_inv: torch.Tensor = tensor_field(
        0.2, "1/s", "inverse inhibitory synaptic time constant", validator=positive_finite
    )
    c_m_inv: torch.Tensor = tensor_field(
        5.0, "1/F (model units)", "inverse membrane capacitance", validator=positive_finite
    )
    g_l: torch.Tensor = tensor_field(0.25, "S (model units)", "leak conductance", validator=finite)
    e_rev_I: torch.Tensor = tensor_field(
        -100.0, "mV", "inhibitory reversal potential", validator=finite
    )
    e_rev_E: torch.Tensor = tensor_field(
        60.0, "mV", "excitatory reversal potential", validator=finite
    )
    v_rest: torch.Tensor = tensor_field(-20.0, "mV", "resting potential", validator=finite)
    v_reset: torch.Tensor = tensor_field(-70.0, "mV", "potential after a spike", validator=finite)
    v_thresh: torch.Tensor = tensor_field(-10.0, "mV", "spike threshold", validator=finite)
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(
        100.0, "", "surrogate gradient sharpness", validator=non_negative_finite
    )


class CobaLIFFeedForwardState(NamedTuple):
    """State of a feed-forward CobaLIF neuron: voltage ``v``, conductances ``g_e`` and ``g_i``."""

    v: torch.Tensor
    g_e: torch.Tensor
    g_i: torch.Tensor


class CobaLIFState(NamedTuple):
    """State of a recurrent CobaLIF neuron: last spikes ``z``, ``v``, ``g_e`` and ``g_i``."""

    z: torch.Tensor
    v: torch.Tensor
    g_e: torch.Tensor
    g_i: torch.Tensor


def coba_synaptic_input(spikes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``[relu(W)·s, relu(−W)·s]`` along the last dimension: excitatory then inhibitory input.

    ``weights`` is (hidden × n), ``spikes`` (..., n); the result is (..., 2·hidden).
    """
    return torch.nn.functional.linear(spikes, coba_synaptic_weights(weights))


def coba_synaptic_weights(weights: torch.Tensor) -> torch.Tensor:
    """``[relu(W); relu(−W)]`` (2·hidden × n): the matrix :func:`coba_synaptic_input` applies."""
    return torch.cat((torch.relu(weights), torch.relu(-weights)), dim=0)


def _step(
    g_e_jump: torch.Tensor,
    g_i_jump: torch.Tensor,
    v: torch.Tensor,
    p: CobaLIFParameters,
    dt: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 2–4 after the conductances jumped (clamped at 0): ``(z, v', g_e', g_i')``."""
    g_e = g_e_jump.clamp(min=0)
    g_i = g_i_jump.clamp(min=0)
    g_e = g_e - dt * p.tau_syn_exc_inv * g_e
    g_i = g_i - dt * p.tau_syn_inh_inv * g_i
    drive = p.g_l * (p.v_rest - v) + g_e * (p.e_rev_E - v) + g_i * (p.e_rev_I - v)
    v_decayed = v + dt * p.c_m_inv * drive
    z = snncore.spike(v_decayed - p.v_thresh, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, v_new, g_e, g_i


def coba_lif_feed_forward_step(
    input_tensor: torch.Tensor,
    state: CobaLIFFeedForwardState,
    p: CobaLIFParameters = CobaLIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, CobaLIFFeedForwardState]:
    """One Euler step; positive input raises ``g_e``, negative input ``g_i``."""
    z, v, g_e, g_i = _step(
        state.g_e + torch.relu(input_tensor), state.g_i + torch.relu(-input_tensor), state.v, p, dt
    )
    return z, CobaLIFFeedForwardState(v, g_e, g_i)


def coba_lif_recurrent_step(
    input_conductance: torch.Tensor,
    state: CobaLIFState,
    p: CobaLIFParameters = CobaLIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, CobaLIFState]:
    """One recurrent step; ``input_conductance`` is (..., 2·hidden): the excitatory jump
    ``relu(W_in)·x + relu(W_rec)·z_prev`` then the inhibitory ``relu(−W_in)·x + relu(−W_rec)·z_prev``
    (what :func:`coba_synaptic_input` gives the core's recurrent modules)."""
    if input_conductance.shape[-1] != 2 * state.v.shape[-1]:
        raise ValueError(
            f"coba_lif_recurrent_step expects the excitatory and inhibitory input side by side, "
            f"last dimension 2·hidden = {2 * state.v.shape[-1]}; got "
            f"{tuple(input_conductance.shape)}"
        )
    exc, inh = input_conductance.chunk(2, dim=-1)
    z, v, g_e, g_i = _step(state.g_e + exc, state.g_i + inh, state.v, p, dt)
    return z, CobaLIFState(z, v, g_e, g_i)


def coba_lif_step(
    input_spikes: torch.Tensor,
    state: CobaLIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: CobaLIFParameters = CobaLIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, CobaLIFState]:
    """The reference's functional signature, with both input and recurrent conductances kept."""
    conductance = coba_synaptic_input(input_spikes, input_weights) + coba_synaptic_input(
        state.z, recurrent_weights
    )
    return coba_lif_recurrent_step(conductance, state, p, dt)


COBA_LIF_MODEL = snncore.NeuronModel(
    name="coba_lif",
    family="coba",
    summary="conductance-based leaky integrate-and-fire (excitatory and inhibitory synapses)",
    parameters=CobaLIFParameters,
    feed_forward_step=coba_lif_feed_forward_step,
    feed_forward_state=CobaLIFFeedForwardState,
    recurrent_step=coba_lif_recurrent_step,
    state=CobaLIFState,
    initial_values={"v": "v_rest"},
    synaptic_input=coba_synaptic_input,
    synaptic_weights=coba_synaptic_weights,
    equations=(
        "g_e1 = max(g_e + relu(x), 0);  g_i1 = max(g_i + relu(-x), 0)\n"
        "  (recurrent: relu(+-W_in).x + relu(+-W_rec).z_prev, both kept);\n"
        "g_e' = g_e1 - dt*tau_syn_exc_inv*g_e1;  g_i' = g_i1 - dt*tau_syn_inh_inv*g_i1;\n"
        "v1 = v + dt*c_m_inv*(g_l*(v_rest - v) + g_e'*(e_rev_E - v) + g_i'*(e_rev_I - v));\n"
        "z = H(v1 - v_thresh);  v' = (1 - z)*v1 + z*v_reset"
    ),
    units={
        "z": "spikes (0/1)",
        "v": "mV",
        "g_e": "S (model units)",
        "g_i": "S (model units)",
    },
    reference="Destexhe, Rudolph & Paré, Nat. Rev. Neurosci. 4 (2003) 739",
    class_names={
        "cell": "CobaLIFFeedForwardCell",
        "recurrent_cell": "CobaLIFRecurrentCell",
        "layer": "CobaLIF",
        "recurrent": "CobaLIFRecurrent",
    },
)

CobaLIFFeedForwardCell, CobaLIFRecurrentCell, CobaLIF, CobaLIFRecurrent = snncore.module_classes(
    COBA_LIF_MODEL
)


class CobaLIFCell(CobaLIFRecurrentCell):  # type: ignore[misc, valid-type]
    """The reference's name and signature for the recurrent CobaLIF cell:
    ``CobaLIFCell(input_size, hidden_size, p=CobaLIFParameters(), dt=0.001)``.

    The same module as :class:`CobaLIFRecurrentCell` (whose signature is the core's,
    ``(input_size, hidden_size, p, autapses, dt)``), with ``dt`` the fourth positional argument
    as in the reference; ``autapses`` and the other options are keyword-only.  Unlike the
    reference's cell, self-connections are removed by default (``autapses=False``) and the weights
    start as N(0, 1)·sqrt(2/hidden_size), as in every recurrent module of snncore.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: CobaLIFParameters | None = None,
        dt: float = 0.001,
        *,
        autapses: bool = False,
        **kwargs: Any,
    ):
        super().__init__(input_size, hidden_size, p, autapses, dt, **kwargs)
