"""Adjoint (EventProp-style) gradients of the LSNN layer and recurrent layer (``adjoint=True``).

The forward pass is the ordinary one (:func:`snn_lsnn.lsnn.lsnn_feed_forward_step`,
:func:`snn_lsnn.lsnn.lsnn_recurrent_step`: same operations, same order, same bits) run without
an autograd tape, keeping the spikes (the output itself) and three numbers per spike.  The
backward pass integrates the discrete adjoint equations backwards in time with a jump at every
spike.  The construction is that of :mod:`snn_lif.adjoint` (see docs/models-adjoint.md); what
changes is that the threshold ``b`` moves too, so the crossing is that of the distance
``d = v − b``, and that the spike also lifts the threshold by ``beta``.

Steps ``t = 0..T−1`` run from ``t·dt`` to ``(t+1)·dt``; ``(v_t, i_t, b_t)`` enter step ``t``,
``v1_t, b1_t`` are the decayed voltage and threshold compared at its end.  A spike at step ``t``
crossed at ``(t + θ)·dt``, by linear interpolation of the distance over the step (valid when
``d_t = v_t − b_t < 0``; otherwise it has no time gradient):

    θ = −d_t / D⁻,   D⁻ = (v1_t − b1_t) − (v_t − b_t)

With the spike pattern fixed, moving a spike by ``δθ`` steps has, to first order:

    crossing    δθ = −(θ·(δv1 − δb1) + (1 − θ)·(δv_t − δb_t)) / D⁻
    reset       v_{t+1} = v_reset − D⁺·δθ,   D⁺ = (v1_t − v_t) + a·(v_t − v_reset)
    threshold   b_{t+1} = b1_t + beta + e·beta·δθ   (an earlier jump has decayed longer)
    output      z_t − δθ  and  z_{t+1} + δθ

(``a = dt·tau_mem_inv``, ``c = dt·tau_syn_inv``, ``e = dt·tau_adapt_inv``).  The computed gradient
is the exact gradient, at the current point, of the loss of this relaxed system.  Backwards, with
``h_t`` the total cotangent of ``z_t`` (recurrent: plus ``W_recᵀ·λ_i_{t+2}``, the spike's effect
through the next step's current; ``h_T = 0``) and primes for the state after step ``t``:

    λ_c   = (D⁺·λ_v' − e·beta·λ_b' + h_t − h_{t+1}) / D⁻       at spikes (0 elsewhere)
    λ_v1  = (1 − z)·λ_v' + θ·λ_c,     λ_b1 = λ_b' − θ·λ_c
    ∂L/∂x_t = λ_i'                     (the input joins the current after the voltage update)
    λ_v   = (1 − a)·λ_v1 + (1 − θ)·λ_c
    λ_i   = a·λ_v1 + (1 − c)·λ_i'
    λ_b   = (1 − e)·λ_b1 − (1 − θ)·λ_c

Parameters get no gradient (a learnable parameter raises); ``method``/``alpha`` are not used.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch.autograd.function import once_differentiable

from snn_lsnn.lsnn import LSNNFeedForwardState, LSNNParameters, LSNNState, _decay
from snncore.adjoint import SpikeRecord


def _step(
    record: SpikeRecord,
    t: int,
    current: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    b: torch.Tensor,
    p: LSNNParameters,
    dt: float,
    z_out: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference step (spikes written into ``z_out``) plus the crossing's numbers."""
    v_decayed, i_decayed, b_decayed = _decay(v, i, b, p, dt)
    z = z_out.copy_(v_decayed - b_decayed > 0)
    slot = record.slot(t)
    distance = v - b
    d_minus = (v_decayed - b_decayed) - distance
    inv = torch.reciprocal(d_minus, out=slot[2]).masked_fill_(distance >= 0, 0.0)  # no crossing
    torch.mul(distance.neg_(), inv, out=slot[0])
    d_plus = (v_decayed - v).add_(dt * p.tau_mem_inv * (v - p.v_reset))
    torch.mul(d_plus, inv, out=slot[1])
    v_new = (1 - z) * v_decayed + z * p.v_reset
    b_new = b_decayed + z * p.beta
    return v_new, i_decayed + current, b_new


def _backward_step(
    coefficients: torch.Tensor,
    z: torch.Tensor,
    h: torch.Tensor,
    h_next: torch.Tensor,
    lam: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    rates: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(λ_v', λ_i', λ_b') -> (λ_v, λ_i, λ_b)`` of one step; ∂L/∂x_t is ``λ_i'``."""
    theta, ratio, inv = coefficients.unbind(0)
    lam_v, lam_i, lam_b = lam
    a, c, e, e_beta = rates
    lam_c = ratio * lam_v + inv * (h - h_next - e_beta * lam_b)
    lam_v1 = (1 - z) * lam_v + theta * lam_c
    lam_b1 = lam_b - theta * lam_c
    rest = lam_c - theta * lam_c  # (1 − θ)·λ_c
    return (1 - a) * lam_v1 + rest, a * lam_v1 + (1 - c) * lam_i, (1 - e) * lam_b1 - rest


def _rates(p: LSNNParameters, dt: float, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # Rounded as in the forward pass (parameter dtype), then used in the input's dtype.
    a, c, e = ((dt * r).to(like.dtype) for r in (p.tau_mem_inv, p.tau_syn_inv, p.tau_adapt_inv))
    return a, c, e, e * p.beta.to(like.dtype)


class _LSNNAdjointLayer(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        v: torch.Tensor,
        i: torch.Tensor,
        b: torch.Tensor,
        p: LSNNParameters,
        dt: float,
    ) -> tuple[torch.Tensor, ...]:
        steps = x.shape[0]
        spikes = torch.empty_like(x)
        record = SpikeRecord(3, v, steps)
        start = 0
        for t, x_t in enumerate(x.unbind(0)):
            v, i, b = _step(record, t, x_t, v, i, b, p, dt, spikes[t])
            if record.end_of_chunk(t):
                record.flush(spikes[start : t + 1])
                start = t + 1
        ctx.save_for_backward(spikes)
        ctx.record, ctx.p, ctx.dt = record, p, dt
        return spikes, v, i, b

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any,
        grad_spikes: torch.Tensor,
        grad_v: torch.Tensor,
        grad_i: torch.Tensor,
        grad_b: torch.Tensor,
    ) -> tuple[Any, ...]:
        (spikes,) = ctx.saved_tensors
        record: SpikeRecord = ctx.record
        rates = _rates(ctx.p, ctx.dt, spikes)
        lam = (grad_v, grad_i, grad_b)
        h_next = torch.zeros_like(grad_v)
        grad_x = torch.empty_like(spikes)
        for c in record.chunks():
            start, stop = record.bounds(c)
            dense = record.dense(c, spikes[start:stop])
            for t in range(stop - 1, start - 1, -1):
                grad_x[t] = lam[1]
                lam = _backward_step(
                    dense[t - start], spikes[t], grad_spikes[t], h_next, lam, rates
                )
                h_next = grad_spikes[t]
        return grad_x, *lam, None, None


class _LSNNAdjointRecurrent(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        z: torch.Tensor,
        v: torch.Tensor,
        i: torch.Tensor,
        b: torch.Tensor,
        input_weights: torch.Tensor,
        recurrent_weights: torch.Tensor,
        p: LSNNParameters,
        dt: float,
    ) -> tuple[torch.Tensor, ...]:
        # The input currents as the eager backend computes them: W_in·x over all steps at once.
        currents = torch.nn.functional.linear(x, input_weights)
        steps = x.shape[0]
        spikes = currents.new_empty(currents.shape)
        record = SpikeRecord(3, v, steps)
        start, z_prev = 0, z
        for t, current_t in enumerate(currents.unbind(0)):
            current = current_t + torch.nn.functional.linear(z_prev, recurrent_weights)
            v, i, b = _step(record, t, current, v, i, b, p, dt, spikes[t])
            z_prev = spikes[t]
            if record.end_of_chunk(t):
                record.flush(spikes[start : t + 1])
                start = t + 1
        ctx.save_for_backward(x, z, input_weights, recurrent_weights, spikes)
        ctx.record, ctx.p, ctx.dt = record, p, dt
        return spikes, v, i, b

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any,
        grad_spikes: torch.Tensor,
        grad_v: torch.Tensor,
        grad_i: torch.Tensor,
        grad_b: torch.Tensor,
    ) -> tuple[Any, ...]:
        x, z0, w_in, w_rec, spikes = ctx.saved_tensors
        record: SpikeRecord = ctx.record
        rates = _rates(ctx.p, ctx.dt, spikes)
        lam = (grad_v, grad_i, grad_b)
        h_next = torch.zeros_like(grad_v)
        grad_current = torch.empty_like(spikes)  # ∂L/∂(W_in·x_t + W_rec·z_{t−1}) = λ_i'
        for c in record.chunks():
            start, stop = record.bounds(c)
            dense = record.dense(c, spikes[start:stop])
            for t in range(stop - 1, start - 1, -1):
                grad_current[t] = lam[1]
                h = grad_spikes[t]
                if t + 1 < spikes.shape[0]:  # z_t reaches step t+1's current through W_rec
                    h = h + grad_current[t + 1].mm(w_rec)
                lam = _backward_step(dense[t - start], spikes[t], h, h_next, lam, rates)
                h_next = h
        grad_x = grad_current.matmul(w_in) if ctx.needs_input_grad[0] else None
        grad_w_in = None
        if ctx.needs_input_grad[5]:
            grad_w_in = grad_current.flatten(0, 1).t().mm(x.flatten(0, 1))
        grad_w_rec = None
        if ctx.needs_input_grad[6]:
            grad_w_rec = grad_current[0].t().mm(z0)
            if spikes.shape[0] > 1:
                grad_w_rec += grad_current[1:].flatten(0, 1).t().mm(spikes[:-1].flatten(0, 1))
        grad_z0 = grad_current[0].mm(w_rec)
        return grad_x, grad_z0, *lam, grad_w_in, grad_w_rec, None, None


def _check(p: LSNNParameters) -> None:
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


def lsnn_adjoint_layer(
    x: torch.Tensor,
    state: LSNNFeedForwardState,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LSNNFeedForwardState]:
    """The feed-forward LSNN layer over ``x`` (T, B, *features) with adjoint gradients."""
    _check(p)
    if x.shape[0] == 0:
        return x.clone(), state
    shape = x.shape[1:]
    v, i, b = (s.expand(shape) for s in state)
    spikes, v, i, b = _LSNNAdjointLayer.apply(x, v, i, b, p, float(dt))
    return spikes, LSNNFeedForwardState(v, i, b)


def lsnn_adjoint_recurrent(
    x: torch.Tensor,
    state: LSNNState,
    p: LSNNParameters,
    dt: float,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
) -> tuple[torch.Tensor, LSNNState]:
    """The recurrent LSNN layer over ``x`` (T, B, input_size) with adjoint gradients."""
    _check(p)
    shape = (x.shape[1], recurrent_weights.shape[0])
    if x.shape[0] == 0:
        return x.new_zeros((0, *shape)), state
    z, v, i, b = (s.expand(shape) for s in state)
    spikes, v, i, b = _LSNNAdjointRecurrent.apply(
        x, z, v, i, b, input_weights, recurrent_weights, p, float(dt)
    )
    return spikes, LSNNState(spikes[-1], v, i, b)
