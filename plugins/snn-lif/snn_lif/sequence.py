"""Whole-sequence feed-forward LIF for the eager backend: one autograd node for all T steps.

The forward pass runs the reference step (:func:`snn_lif.lif.lif_feed_forward_step`, same
operations in the same order, so the same bits) without recording a graph, keeping only the
distance to threshold ``s_t = v1_t − v_th`` and the spikes ``z_t``.  The backward pass is the
step's exact chain rule, run backwards in time (BPTT without the autograd tape).  With
``a = dt·tau_mem_inv``, ``b = dt·tau_syn_inv`` and ``σ'`` the surrogate's derivative:

    gz   = ∂L/∂z_t + g_v'·(v_reset − v1_t)          (the reset passes gradient through z)
    g_v1 = g_v'·(1 − z_t) + gz·σ'(s_t)
    g_i1 = a·g_v1 + (1 − b)·g_i'
    g_v  = (1 − a)·g_v1,   g_i = g_i1,   ∂L/∂x_t = g_i1

Each step's backward is a dozen in-place operations on step-sized buffers; there is no autograd
tape, whose per-operation overhead dominates an eager LIF layer.  It is used only where it is
exact: no parameter needs a gradient, the state has the input's shape, states are not recorded;
otherwise the backend loops over the step function as usual.

Double backward (``torch.autograd.grad(..., create_graph=True)``, e.g. a gradient penalty) needs
a backward that is itself differentiable, which in-place buffers are not.  There (grad mode on
inside ``backward``) the backward replays the reference step with autograd from the saved
inputs and differentiates that: the same gradients, at the step loop's cost, only when asked.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

import snncore
from snn_lif.lif import LIFFeedForwardState, LIFParameters, _integrate, lif_feed_forward_step


class _LIFFeedForwardSequence(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        v: torch.Tensor,
        i: torch.Tensor,
        p: LIFParameters,
        dt: float,
        derivative: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        distance = torch.empty_like(x)
        spikes = torch.empty_like(x)
        start = (v, i)  # kept (not copied) for a double backward's replay
        for t, x_t in enumerate(x.unbind(0)):
            v_decayed, i = _integrate(i + x_t, v, p, dt)
            s = torch.sub(v_decayed, p.v_th, out=distance[t])
            z = spikes[t].copy_(s > 0)
            v = (1 - z) * v_decayed + z * p.v_reset
        ctx.save_for_backward(distance, spikes, x, *start)
        ctx.p, ctx.dt, ctx.derivative = p, dt, derivative
        return spikes, v, i

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_spikes: torch.Tensor, grad_v: torch.Tensor, grad_i: torch.Tensor
    ) -> tuple[Any, ...]:
        if torch.is_grad_enabled():  # create_graph=True: the gradient must be differentiable
            return _differentiable_backward(ctx, grad_spikes, grad_v, grad_i)
        distance, spikes = ctx.saved_tensors[:2]
        p, dt, derivative = ctx.p, ctx.dt, ctx.derivative
        # The rates are rounded as in the forward pass (parameter dtype), the rest in the input's.
        a = (dt * p.tau_mem_inv).to(distance.dtype)
        b = (dt * p.tau_syn_inv).to(distance.dtype)
        one_minus_a, one_minus_b = 1 - a, 1 - b
        reset_offset = (p.v_reset - p.v_th).to(distance.dtype)  # v_reset − v1_t = this − s_t
        grad_x = torch.empty_like(distance)
        g_v = grad_v.expand_as(distance[0]).clone()
        g_i = grad_i.expand_as(distance[0]).clone()
        # Per step, on buffers that stay in cache: full-sequence temporaries cost more in page
        # faults than the arithmetic they would vectorise.
        for t in range(distance.shape[0] - 1, -1, -1):
            surrogate = derivative(distance[t], p.alpha)
            # g_v1 = g_v'·((1 − z) + (v_reset − v1)·σ') + ∂L/∂z·σ'
            factor = torch.sub(reset_offset, distance[t]).mul_(surrogate).add_(1).sub_(spikes[t])
            g_v.mul_(factor).addcmul_(grad_spikes[t], surrogate)
            g_x = torch.add(g_i.mul_(one_minus_b), g_v * a, out=grad_x[t])  # a·g_v1 + (1−b)·g_i'
            g_i.copy_(g_x)
            g_v.mul_(one_minus_a)
        return grad_x, g_v, g_i, None, None, None


def _differentiable_backward(
    ctx: Any, grad_spikes: torch.Tensor, grad_v: torch.Tensor, grad_i: torch.Tensor
) -> tuple[Any, ...]:
    """The backward by autograd through the reference step, replayed from the saved inputs, so
    that the returned gradients have a graph (double backward)."""
    x, v, i = ctx.saved_tensors[2:]
    wanted = [t for t, need in zip((x, v, i), ctx.needs_input_grad[:3], strict=True) if need]
    outputs = []
    for x_t in x.unbind(0):
        z, (v, i) = lif_feed_forward_step(x_t, LIFFeedForwardState(v, i), ctx.p, ctx.dt)
        outputs.append(z)
    found = iter(
        torch.autograd.grad(
            (torch.stack(outputs), v, i),
            wanted,
            (grad_spikes, grad_v, grad_i),
            create_graph=True,
            allow_unused=True,
        )
    )
    grads = [next(found) if need else None for need in ctx.needs_input_grad[:3]]
    return (*grads, None, None, None)


def lif_feed_forward_sequence(
    x: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFFeedForwardState] | None:
    """All T steps of :func:`lif_feed_forward_step` at once; ``None`` where it would not be exact."""
    shape = x.shape[1:]
    if state.v.shape != shape or state.i.shape != shape:
        return None
    if any(torch.is_tensor(v) and v.requires_grad for v in attrs.astuple(p, recurse=False)):
        return None
    derivative = snncore.get_surrogate(p.method).derivative
    spikes, v, i = _LIFFeedForwardSequence.apply(x, state.v, state.i, p, dt, derivative)
    return spikes, LIFFeedForwardState(v, i)
