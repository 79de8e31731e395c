"""LIF with an absolute refractory period: after a spike the voltage is held for ``rho_reset`` steps.

Each step is an ordinary LIF step (:mod:`snn_lif.lif`: input jumps into the current, voltage and
current decay, spike, reset) giving ``(z_lif, v_lif, i')``, followed by the refractory update with
the counter ``rho`` (in time steps):

    m    = Θ(rho)                                  1 while refractory (same surrogate as the spike)
    v'   = (1 − m)·v_lif + m·v                     voltage frozen at its old value while refractory
    z'   = (1 − m)·z_lif                           no spikes while refractory
    rho' = (1 − z')·relu(rho − m) + z'·rho_reset   count down; restart at a spike

The synaptic current keeps integrating while refractory (``i'`` is the LIF step's).  The recurrent
step takes the LIF recurrent step (detached spike in the LIF reset) and feeds back the masked
spikes ``z'``.  Initial state: the LIF initial state and ``rho = 0``.  With ``rho_reset = 5`` a
neuron that spikes at step t is held at steps t+1 … t+5 and may spike again at t+6.

Gerstner, Kistler, Naud & Paninski, *Neuronal Dynamics* (2014), ch. 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch
from snn_lif.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_recurrent_step,
)
from snn_lif.lif import initial_feed_forward_state as lif_initial_feed_forward_state
from snn_lif.lif import initial_state as lif_initial_state

import snncore
from snncore import tensor_field
from snncore.parameters import ParameterRecord, finite


def _non_negative(instance: Any, attribute: attrs.Attribute, value: torch.Tensor) -> None:
    if not bool((value >= 0).all()):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be >= 0 (a number of time steps), "
            f"got {value}"
        )


@attrs.frozen
class LIFRefracParameters(ParameterRecord):
    """Parameters of a refractory LIF neuron: the LIF parameters and the refractory period."""

    lif: LIFParameters = attrs.field(
        factory=LIFParameters, validator=attrs.validators.instance_of(LIFParameters)
    )
    rho_reset: torch.Tensor = tensor_field(
        5.0,
        "steps",
        "refractory period after a spike",
        validator=attrs.validators.and_(_non_negative, finite),
    )

    @property
    def method(self) -> str:
        """The surrogate gradient of the spike and of the refractory mask (``lif.method``)."""
        return self.lif.method


class LIFRefracFeedForwardState(NamedTuple):
    """State of a feed-forward refractory LIF neuron: the LIF state and the counter ``rho``."""

    lif: LIFFeedForwardState
    rho: torch.Tensor


class LIFRefracState(NamedTuple):
    """State of a recurrent refractory LIF neuron: the LIF state (with ``z``) and ``rho``."""

    lif: LIFState
    rho: torch.Tensor


def compute_refractory_update(
    state: LIFRefracState | LIFRefracFeedForwardState,
    z_new: torch.Tensor,
    v_new: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The refractory update after a LIF step: returns ``(v', z', rho')``.

    ``state`` is the state *before* the LIF step (its ``lif.v`` is the frozen voltage),
    ``z_new`` and ``v_new`` the LIF step's spikes and voltage.
    """
    refractory = snncore.spike(state.rho, p.lif.method, p.lif.alpha)
    v_out = (1 - refractory) * v_new + refractory * state.lif.v
    z_out = (1 - refractory) * z_new
    rho_out = (1 - z_out) * torch.nn.functional.relu(state.rho - refractory) + z_out * p.rho_reset
    return v_out, z_out, rho_out


def lif_refrac_feed_forward_step(
    input_current: torch.Tensor,
    state: LIFRefracFeedForwardState,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFRefracFeedForwardState]:
    """One Euler step of refractory LIF driven by ``input_current``; returns ``(spikes, state)``."""
    z, s = lif_feed_forward_step(input_current, state.lif, p.lif, dt)
    v, z, rho = compute_refractory_update(state, z, s.v, p)
    return z, LIFRefracFeedForwardState(LIFFeedForwardState(v, s.i), rho)


def lif_refrac_recurrent_step(
    input_current: torch.Tensor,
    state: LIFRefracState,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFRefracState]:
    """One recurrent step; ``input_current`` is ``W_in·x + W_rec·z_prev`` (``z_prev = lif.z``)."""
    z, s = lif_recurrent_step(input_current, state.lif, p.lif, dt)
    v, z, rho = compute_refractory_update(state, z, s.v, p)
    return z, LIFRefracState(LIFState(z, v, s.i), rho)


def lif_refrac_step(
    input_spikes: torch.Tensor,
    state: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFRefracState]:
    """Recurrent step that weighs its inputs itself (the reference's functional signature)."""
    current = torch.nn.functional.linear(input_spikes, input_weights) + torch.nn.functional.linear(
        state.lif.z, recurrent_weights
    )
    return lif_refrac_recurrent_step(current, state, p, dt)


def refrac_last_spikes(state: LIFRefracState) -> torch.Tensor:
    """The spikes a recurrent refractory state feeds back: ``state.lif.z``."""
    return state.lif.z


def initial_feed_forward_state(
    p: LIFRefracParameters, shape: Any, device: Any = None, dtype: Any = None
) -> LIFRefracFeedForwardState:
    lif = lif_initial_feed_forward_state(p.lif, shape, device=device, dtype=dtype)
    return LIFRefracFeedForwardState(lif, torch.zeros(shape, device=device, dtype=dtype))


def initial_state(
    p: LIFRefracParameters, shape: Any, device: Any = None, dtype: Any = None
) -> LIFRefracState:
    lif = lif_initial_state(p.lif, shape, device=device, dtype=dtype)
    return LIFRefracState(lif, torch.zeros(shape, device=device, dtype=dtype))


UNITS = {
    "lif": "LIF state: v V, i A (model units); recurrent also z spikes (0/1)",
    "rho": "time steps left in the refractory period",
}

LIF_REFRAC_MODEL = snncore.NeuronModel(
    name="lif_refrac",
    family="lif_refrac",
    summary="LIF with an absolute refractory period of rho_reset steps",
    parameters=LIFRefracParameters,
    feed_forward_step=lif_refrac_feed_forward_step,
    feed_forward_state=LIFRefracFeedForwardState,
    initial_feed_forward_state=initial_feed_forward_state,
    recurrent_step=lif_refrac_recurrent_step,
    state=LIFRefracState,
    initial_state=initial_state,
    last_spikes=refrac_last_spikes,
    equations=(
        "LIF step (parameters lif.*):  i1 = i + x;  v1 = v + dt*tau_mem_inv*((v_leak - v) + i1);\n"
        "  i' = i1 - dt*tau_syn_inv*i1;  z_lif = H(v1 - v_th);  v_lif = (1 - z_lif)*v1 + z_lif*v_reset\n"
        "refractory:  m = H(rho);  v' = (1 - m)*v_lif + m*v;  z = (1 - m)*z_lif;\n"
        "  rho' = (1 - z)*relu(rho - m) + z*rho_reset"
    ),
    units=UNITS,
    reference="Gerstner et al., Neuronal Dynamics (2014), ch. 1",
    class_names={
        "cell": "LIFRefracCell",
        "recurrent_cell": "LIFRefracRecurrentCell",
        "layer": "LIFRefrac",
        "recurrent": "LIFRefracRecurrent",
    },
)

LIFRefracCell, LIFRefracRecurrentCell, LIFRefrac, LIFRefracRecurrent = snncore.module_classes(
    LIF_REFRAC_MODEL
)
