"""Adjoint (EventProp-style) gradients of the LIF layer and recurrent layer (``adjoint=True``).

The forward pass is the ordinary one — the same operations in the same order as
:func:`snn_lif.lif.lif_feed_forward_step` and :func:`snn_lif.lif.lif_recurrent_step`, so the same
spikes and final state, bit for bit — run without an autograd tape.  It keeps the spikes (the
output itself) and three numbers per spike; no voltage trace.  The backward pass integrates the
discrete adjoint equations backwards in time, with a jump at every spike.

What gradient (derivation in docs/models-adjoint.md).  Spikes are binary, so a loss of the outputs
is piecewise constant in the inputs; its gradient is that of a *relaxed* system in which each spike
is an event at a time inside its step.  Steps ``t = 0..T−1`` run from ``t·dt`` to ``(t+1)·dt``;
``v_t`` is the voltage entering step ``t``, ``v1_t`` the voltage before the threshold test.  A
spike at step ``t`` crossed threshold at ``(t + θ)·dt``, with ``θ`` from linear interpolation of
the voltage over the step (valid when ``v_t < v_th``; otherwise it has no time gradient):

    θ = (v_th − v_t) / D⁻,   D⁻ = v1_t − v_t = dt·v̇ before the spike

With the spike pattern held fixed, moving a spike's time by ``δθ`` steps has three first-order
effects, each the within-step version of an EventProp jump (Wunderlich & Pehle 2021):

    reset    v_{t+1} = v_reset − D⁺·δθ,  D⁺ = dt·v̇ just after the reset = D⁻ + a·(v_t − v_reset)
    output   z_t − δθ  and  z_{t+1} + δθ  (the spike moves towards the next step's sample)
    and the crossing condition  δθ = −(θ·δv1_t + (1 − θ)·δv_t) / D⁻   (dt*/dv = −1/v̇)

(the reset "happens at the crossing": a reset at the step's start would give ``v_reset + D⁺``, at
its end ``v_reset``).  The computed gradient is the exact gradient, at the current point, of the
loss of this relaxed system; for recurrent layers the spikes fed back through ``W_rec`` move the
same way.  ``a = dt·tau_mem_inv``, ``b = dt·tau_syn_inv``; with ``h_t`` the total cotangent of
``z_t`` (from the loss, plus ``W_recᵀ·λ_{i1,t+1}`` in recurrent layers; ``h_T = 0``):

    λ_c   = (D⁺·λ_v' + h_t − h_{t+1}) / D⁻        at spikes (0 elsewhere)
    λ_v1  = (1 − z_t)·λ_v' + θ·λ_c
    λ_i1  = a·λ_v1 + (1 − b)·λ_i'               = ∂L/∂(input current at t)
    λ_v   = (1 − a)·λ_v1 + (1 − θ)·λ_c,   λ_i = λ_i1

Stored per spike: ``θ``, ``D⁺/D⁻`` and ``1/D⁻``.  Parameters get no gradient (a learnable
parameter raises); ``method``/``alpha`` (the surrogate) are not used.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch.autograd.function import once_differentiable

from snn_lif.lif import LIFFeedForwardState, LIFParameters, LIFState, _integrate
from snncore.adjoint import SpikeRecord


def _record_crossing(
    slot: torch.Tensor, v: torch.Tensor, v1: torch.Tensor, p: LIFParameters, a: torch.Tensor
) -> None:
    """θ, D⁺/D⁻ and 1/D⁻ of a crossing from ``v`` (step start) to ``v1`` (before the test)."""
    d_minus = v1 - v
    inv = torch.reciprocal(d_minus, out=slot[2]).masked_fill_(v >= p.v_th, 0.0)  # no crossing
    torch.mul(p.v_th - v, inv, out=slot[0])
    torch.mul(d_minus.add_(a * (v - p.v_reset)), inv, out=slot[1])


def _backward_step(
    coefficients: torch.Tensor,
    z: torch.Tensor,
    h: torch.Tensor,
    h_next: torch.Tensor,
    lam_v: torch.Tensor,
    lam_i: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the adjoint: ``(λ_v', λ_i') -> (λ_v, λ_i1)``; ``λ_i = λ_i1``."""
    theta, ratio, inv = coefficients.unbind(0)
    lam_c = ratio * lam_v + inv * (h - h_next)
    lam_v1 = (1 - z) * lam_v + theta * lam_c
    lam_i1 = a * lam_v1 + (1 - b) * lam_i
    return (1 - a) * lam_v1 + (lam_c - theta * lam_c), lam_i1


def _rates(p: LIFParameters, dt: float, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # Rounded as in the forward pass (parameter dtype), then used in the input's dtype.
    return (dt * p.tau_mem_inv).to(like.dtype), (dt * p.tau_syn_inv).to(like.dtype)


class _LIFAdjointLayer(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, v: torch.Tensor, i: torch.Tensor, p: LIFParameters, dt: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        steps = x.shape[0]
        spikes = torch.empty_like(x)
        record = SpikeRecord(3, v, steps)
        a = dt * p.tau_mem_inv
        start = 0
        for t, x_t in enumerate(x.unbind(0)):
            v_decayed, i = _integrate(i + x_t, v, p, dt)
            z = spikes[t].copy_(v_decayed - p.v_th > 0)
            _record_crossing(record.slot(t), v, v_decayed, p, a)
            v = (1 - z) * v_decayed + z * p.v_reset
            if record.end_of_chunk(t):
                record.flush(spikes[start : t + 1])
                start = t + 1
        ctx.save_for_backward(spikes)
        ctx.record, ctx.p, ctx.dt = record, p, dt
        return spikes, v, i

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any, grad_spikes: torch.Tensor, grad_v: torch.Tensor, grad_i: torch.Tensor
    ) -> tuple[Any, ...]:
        (spikes,) = ctx.saved_tensors
        record: SpikeRecord = ctx.record
        a, b = _rates(ctx.p, ctx.dt, spikes)
        shape = spikes.shape[1:]
        lam_v, lam_i = grad_v.expand(shape), grad_i.expand(shape)
        h_next = torch.zeros_like(lam_v)
        grad_x = torch.empty_like(spikes)
        for c in record.chunks():
            start, stop = record.bounds(c)
            dense = record.dense(c, spikes[start:stop])
            for t in range(stop - 1, start - 1, -1):
                lam_v, lam_i = _backward_step(
                    dense[t - start], spikes[t], grad_spikes[t], h_next, lam_v, lam_i, a, b
                )
                grad_x[t] = lam_i
                h_next = grad_spikes[t]
        return grad_x, lam_v, lam_i, None, None


class _LIFAdjointRecurrent(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        z: torch.Tensor,
        v: torch.Tensor,
        i: torch.Tensor,
        input_weights: torch.Tensor,
        recurrent_weights: torch.Tensor,
        p: LIFParameters,
        dt: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # The input currents as the eager backend computes them: W_in·x over all steps at once.
        currents = torch.nn.functional.linear(x, input_weights)
        steps = x.shape[0]
        spikes = currents.new_empty(currents.shape)
        record = SpikeRecord(3, v, steps)
        a = dt * p.tau_mem_inv
        start, z_prev = 0, z
        for t, current_t in enumerate(currents.unbind(0)):
            current = current_t + torch.nn.functional.linear(z_prev, recurrent_weights)
            v_decayed, i = _integrate(i + current, v, p, dt)
            z_prev = spikes[t].copy_(v_decayed - p.v_th > 0)
            _record_crossing(record.slot(t), v, v_decayed, p, a)
            v = (1 - z_prev) * v_decayed + z_prev * p.v_reset
            if record.end_of_chunk(t):
                record.flush(spikes[start : t + 1])
                start = t + 1
        ctx.save_for_backward(x, z, input_weights, recurrent_weights, spikes)
        ctx.record, ctx.p, ctx.dt = record, p, dt
        return spikes, v, i

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any, grad_spikes: torch.Tensor, grad_v: torch.Tensor, grad_i: torch.Tensor
    ) -> tuple[Any, ...]:
        x, z0, w_in, w_rec, spikes = ctx.saved_tensors
        record: SpikeRecord = ctx.record
        a, b = _rates(ctx.p, ctx.dt, spikes)
        shape = spikes.shape[1:]
        lam_v, lam_i = grad_v.expand(shape), grad_i.expand(shape)
        h_next = torch.zeros_like(lam_v)
        grad_current = torch.empty_like(spikes)  # ∂L/∂(W_in·x_t + W_rec·z_{t−1}) = λ_i1 at t
        for c in record.chunks():
            start, stop = record.bounds(c)
            dense = record.dense(c, spikes[start:stop])
            for t in range(stop - 1, start - 1, -1):
                h = grad_spikes[t]
                if t + 1 < spikes.shape[0]:  # z_t reaches step t+1 through W_rec
                    h = h + grad_current[t + 1].mm(w_rec)
                lam_v, lam_i = _backward_step(
                    dense[t - start], spikes[t], h, h_next, lam_v, lam_i, a, b
                )
                grad_current[t] = lam_i
                h_next = h
        flat = grad_current.flatten(0, 1)
        grad_x = grad_current.matmul(w_in) if ctx.needs_input_grad[0] else None
        grad_w_in = flat.t().mm(x.flatten(0, 1)) if ctx.needs_input_grad[4] else None
        grad_w_rec = None
        if ctx.needs_input_grad[5]:
            grad_w_rec = grad_current[0].t().mm(z0)
            if spikes.shape[0] > 1:
                grad_w_rec += grad_current[1:].flatten(0, 1).t().mm(spikes[:-1].flatten(0, 1))
        grad_z0 = grad_current[0].mm(w_rec)
        return grad_x, grad_z0, lam_v, lam_i, grad_w_in, grad_w_rec, None, None


def _check(p: LIFParameters) -> None:
    learnt = [
        f.name
        for f in attrs.fields(type(p))
        if torch.is_tensor(getattr(p, f.name)) and getattr(p, f.name).requires_grad
    ]
    if learnt:
        raise ValueError(
            f"adjoint=True gives gradients for the input, the initial state and the weights only; "
            f"learnable parameters {learnt} need adjoint=False"
        )


def lif_adjoint_layer(
    x: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFFeedForwardState]:
    """The feed-forward LIF layer over ``x`` (T, B, *features) with adjoint gradients."""
    _check(p)
    if x.shape[0] == 0:
        return x.clone(), state
    shape = x.shape[1:]
    spikes, v, i = _LIFAdjointLayer.apply(
        x, state.v.expand(shape), state.i.expand(shape), p, float(dt)
    )
    return spikes, LIFFeedForwardState(v, i)


def lif_adjoint_recurrent(
    x: torch.Tensor,
    state: LIFState,
    p: LIFParameters,
    dt: float,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
) -> tuple[torch.Tensor, LIFState]:
    """The recurrent LIF layer over ``x`` (T, B, input_size) with adjoint gradients."""
    _check(p)
    shape = (x.shape[1], recurrent_weights.shape[0])
    if x.shape[0] == 0:
        return x.new_zeros((0, *shape)), state
    z, v, i = (s.expand(shape) for s in state)
    spikes, v, i = _LIFAdjointRecurrent.apply(
        x, z, v, i, input_weights, recurrent_weights, p, float(dt)
    )
    return spikes, LIFState(spikes[-1], v, i)
