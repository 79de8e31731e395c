"""Multi-compartment LIF with an absolute refractory period (recurrent).

The compartments' voltages are coupled by ``g_coupling`` (hidden × hidden), a tensor the
recurrent modules own.  One step, in the order of the reference's released step (Norse 1.1.0,
``lif_mc_refrac_step``), which is the acceptance test for numerics — it is the *older* order
(input added after the voltage update) and differs from both :mod:`snn_refrac.refrac` and
``lif_mc`` (:mod:`snn_lif.mc`):

    1. m    = Θ(rho)
    2. v1   = v + (1 − m)·dt·tau_mem_inv·((v_leak − v) + i) + g_coupling·v
    3. i1   = i − dt·tau_syn_inv·i
    4. z    = Θ(v1 − v_th)
    5. v'   = (1 − z)·v1 + z·v_reset
    6. i'   = i1 + x                   (x = W_in·x_in + W_rec·z_prev, from the core)
    7. rho' = (1 − z)·relu(rho − m) + z·rho_reset

So while refractory the leak and the synaptic drive are switched off but the coupling still
moves ``v``, and a spike is *not* suppressed (it restarts the period).  The coupling is applied per
step (no ``dt``), as in the reference; ``g_coupling`` is therefore dimensionless (per step), and
its default is N(0, 1)/sqrt(hidden)·0.001 — the per-step coupling of ``lif_mc``'s default at
``dt = 1 ms``.  The reference's own default, N(0, 1)/sqrt(hidden) per step, makes the voltages
diverge within a few tens of steps.  No spike is detached (as in the reference).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from snn_lif.lif import LIFFeedForwardState, LIFState

import snncore
from snn_refrac.refrac import (
    UNITS,
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
    initial_state,
    refrac_last_spikes,
)

#: Scale of the default ``g_coupling`` (per step) relative to N(0, 1)/sqrt(hidden).
G_COUPLING_SCALE = 1e-3


def _mc_refrac_update(
    current: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    rho: torch.Tensor,
    g_coupling: torch.Tensor,
    p: LIFRefracParameters,
    dt: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1–7 on plain tensors; returns ``(z, v', i', rho')``."""
    lif = p.lif
    refractory = snncore.spike(rho, lif.method, lif.alpha)
    dv = (1 - refractory) * dt * lif.tau_mem_inv * (
        (lif.v_leak - v) + i
    ) + torch.nn.functional.linear(v, g_coupling)
    v_decayed = v + dv
    i_decayed = i - dt * lif.tau_syn_inv * i
    z = snncore.spike(v_decayed - lif.v_th, lif.method, lif.alpha)
    v_new = (1 - z) * v_decayed + z * lif.v_reset
    rho_new = (1 - z) * torch.nn.functional.relu(rho - refractory) + z * p.rho_reset
    return z, v_new, i_decayed + current, rho_new


def lif_mc_refrac_recurrent_step(
    input_current: torch.Tensor,
    state: LIFRefracState,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
    *,
    g_coupling: torch.Tensor,
) -> tuple[torch.Tensor, LIFRefracState]:
    """One step; ``input_current`` is ``W_in·x + W_rec·z_prev``."""
    s = state.lif
    z, v, i, rho = _mc_refrac_update(input_current, s.v, s.i, state.rho, g_coupling, p, dt)
    return z, LIFRefracState(LIFState(z, v, i), rho)


def lif_mc_refrac_step(
    input_tensor: torch.Tensor,
    state: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    g_coupling: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFRefracState]:
    """The reference's functional signature: weighs the inputs, then the step above."""
    current = torch.nn.functional.linear(input_tensor, input_weights) + torch.nn.functional.linear(
        state.lif.z, recurrent_weights
    )
    return lif_mc_refrac_recurrent_step(current, state, p, dt, g_coupling=g_coupling)


def lif_mc_refrac_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFRefracFeedForwardState,
    g_coupling: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFRefracFeedForwardState]:
    """The same step driven by an input current (the reference's functional signature; no module
    variant uses it, since feed-forward modules own no coupling matrix)."""
    s = state.lif
    z, v, i, rho = _mc_refrac_update(input_tensor, s.v, s.i, state.rho, g_coupling, p, dt)
    return z, LIFRefracFeedForwardState(LIFFeedForwardState(v, i), rho)


def _init_g_coupling(hidden_size: int, input_size: int, p: Any) -> torch.Tensor:
    return G_COUPLING_SCALE * torch.randn(hidden_size, hidden_size) / math.sqrt(hidden_size)


LIF_MC_REFRAC_MODEL = snncore.NeuronModel(
    name="lif_mc_refrac",
    family="lif_refrac",
    summary="multi-compartment LIF (coupling g_coupling) with an absolute refractory period",
    parameters=LIFRefracParameters,
    recurrent_step=lif_mc_refrac_recurrent_step,
    state=LIFRefracState,
    initial_state=initial_state,
    last_spikes=refrac_last_spikes,
    module_tensors={"g_coupling": _init_g_coupling},
    equations=(
        "m = H(rho);  v1 = v + (1 - m)*dt*tau_mem_inv*((v_leak - v) + i) + g_coupling @ v;\n"
        "i1 = i - dt*tau_syn_inv*i;  z = H(v1 - v_th);  v' = (1 - z)*v1 + z*v_reset;\n"
        "i' = i1 + W_in*x + W_rec*z_prev;  rho' = (1 - z)*relu(rho - m) + z*rho_reset"
    ),
    units={**UNITS, "g_coupling": "1 (per step)"},
    reference="Gerstner et al., Neuronal Dynamics (2014), ch. 1",
    class_names={
        "recurrent_cell": "LIFMCRefracRecurrentCell",
        "recurrent": "LIFMCRefracRecurrent",
    },
)

LIFMCRefracRecurrentCell, LIFMCRefracRecurrent = snncore.module_classes(LIF_MC_REFRAC_MODEL)
