"""Launching the Triton kernels: arguments, buffers, and the autograd function.

Every family exports a forward and a backward kernel with one signature each (lif.py,
lsnn.py, adex.py, refrac.py)::

    NAME_forward(x, out, state, saved, params, T, M, K, PER_NEURON, SAVE, CDT, BLOCK)
    NAME_backward(x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
                  HAS_G, PER_NEURON, SURROGATE, CDT, BLOCK)

``saved`` is what the KernelSpec's ``saves`` says: LIF's distance to threshold (T, M), nothing
for LI, else checkpoints of the state every ``K`` steps (C, S, M).  The checkpointed families'
backward recomputes each ``K``-step segment from its checkpoint into ``scratch`` (K, R, M) --
``R`` rows per step, each program touching only its own neurons' columns, so the segment stays in
L2 -- and walks it backwards.  ``saved``, ``scratch``, ``state`` and ``grad_state`` are in the
compute dtype (float32, float64 for float64 inputs), so that the recomputation gives the forward
pass's bits whatever the input's dtype.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from snn_backend_fused import kernels
from snn_backend_fused.kernels import CHECKPOINT_EVERY, KernelSpec
from snn_backend_fused.triton import adex, interpreting, lif, lsnn, refrac

#: Input dtypes the kernels take; float16 and bfloat16 are computed in float32.
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_COMPUTE = {torch.float64: (torch.float64, tl.float64)}
_FLOAT32 = (torch.float32, tl.float32)

#: kernel name -> (forward, backward, scratch rows per step of a recomputed segment)
FAMILIES: dict[str, tuple[Any, Any, int]] = {
    "lif": (lif.lif_forward, lif.lif_backward, 0),
    "li": (lif.li_forward, lif.li_backward, 0),
    "lsnn": (lsnn.lsnn_forward, lsnn.lsnn_backward, 2),
    "lif_ex": (adex.lif_ex_forward, adex.lif_ex_backward, 2),
    "lif_adex": (adex.lif_adex_forward, adex.lif_adex_backward, 2),
    "lif_refrac": (refrac.lif_refrac_forward, refrac.lif_refrac_backward, 3),
}

#: Whether the kernels were decorated for Triton's interpreter (``TRITON_INTERPRET`` set before
#: they were imported): then, and only then, they run on CPU tensors.
INTERPRETED = interpreting() and type(lif.lif_forward).__name__ == "InterpretedFunction"

#: Neurons per program on a GPU, and its warps: one neuron per thread.  Not tuned (no GPU was
#: available when this was written; see docs/backend-fused.md).
GPU_BLOCK, GPU_WARPS = 128, 4
#: Under the interpreter a program is a numpy loop: fewer, wider programs run faster.
INTERPRETER_BLOCK = 1024


@attrs.frozen
class _Call:
    """Everything a launch needs besides the tensors autograd sees."""

    spec: KernelSpec
    forward: Any
    backward: Any
    scratch_rows: int
    params: torch.Tensor  # (P,) or (P, M), compute dtype, on the input's device
    per_neuron: bool
    surrogate: int
    shape: tuple[int, ...]
    dtype: torch.dtype  # the input's
    compute: torch.dtype
    compute_tl: Any
    block: int
    warps: int


def prepare(spec: KernelSpec, x: torch.Tensor, state: Any, p: Any, dt: float) -> _Call | None:
    """The launch arguments, or None where the kernel does not apply exactly (the rules of
    :func:`snn_backend_fused.kernels.check`) or not at all (device, dtype)."""
    on_cpu = x.device.type == "cpu"
    if x.dtype not in DTYPES or (x.device.type != "cuda" and not (on_cpu and INTERPRETED)):
        return None
    if spec.name not in FAMILIES:  # a spec without a Triton kernel: the eager loop
        return None
    checked = kernels.check(spec, x, state, p, dt)
    if checked is None:
        return None
    params, per_neuron, surrogate = checked
    compute, compute_tl = _COMPUTE.get(x.dtype, _FLOAT32)
    forward, backward, rows = FAMILIES[spec.name]
    shape = tuple(x.shape[1:])
    numel = math.prod(shape)
    block = min(INTERPRETER_BLOCK, triton.next_power_of_2(numel)) if on_cpu else GPU_BLOCK
    return _Call(
        spec=spec,
        forward=forward,
        backward=backward,
        scratch_rows=rows,
        params=params.to(compute),  # exact: the values are in x's dtype, a subset of compute's
        per_neuron=per_neuron,
        surrogate=surrogate,
        shape=shape,
        dtype=x.dtype,
        compute=compute,
        compute_tl=compute_tl,
        block=block,
        warps=GPU_WARPS,
    )


def _grid(call: _Call, numel: int) -> tuple[int]:
    return (triton.cdiv(numel, call.block),)


def _forward(
    call: _Call, x: torch.Tensor, fields: list[torch.Tensor], keep_saved: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Runs the forward kernel: ``(out, final state (S, M) in the compute dtype, saved)``."""
    steps, numel = x.shape[0], math.prod(call.shape)
    x = x.detach().contiguous()
    state = torch.stack([f.detach().reshape(numel).to(call.compute) for f in fields])
    out = torch.empty_like(x)
    saved = None
    if keep_saved and call.spec.saves == "checkpoints":
        count = -(-steps // CHECKPOINT_EVERY)
        saved = torch.empty((count, len(fields), numel), dtype=call.compute, device=x.device)
    elif keep_saved and call.spec.saves == "distance":
        saved = torch.empty((steps, numel), dtype=call.compute, device=x.device)
    call.forward[_grid(call, numel)](
        x,
        out,
        state,
        out if saved is None else saved,  # never written without SAVE
        call.params,
        steps,
        numel,
        CHECKPOINT_EVERY,
        PER_NEURON=call.per_neuron,
        SAVE=saved is not None,
        CDT=call.compute_tl,
        BLOCK=call.block,
        num_warps=call.warps,
        enable_fp_fusion=False,  # no fused multiply-add: the step's roundings, one by one
    )
    return out, state, saved


def _backward(
    call: _Call,
    x: torch.Tensor | None,
    saved: torch.Tensor | None,
    grad_out: torch.Tensor | None,
    grad_fields: tuple[torch.Tensor | None, ...],
    steps: int,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Runs the backward kernel: the input's gradient and the initial state's."""
    numel = math.prod(call.shape)
    device = call.params.device
    grad_state = kernels.state_gradients(grad_fields, numel, call.compute, device)
    grad_x = torch.empty((steps, *call.shape), dtype=call.dtype, device=device)
    g, g_st, g_sn = grad_x, 0, 0  # a placeholder pointer when no gradient reaches the output
    if grad_out is not None:
        g = kernels.upstream_rows(grad_out, steps, numel, call.dtype)
        g_st, g_sn = g.stride(0), g.stride(1)
    scratch = grad_x
    if call.scratch_rows:
        rows = (min(CHECKPOINT_EVERY, steps), call.scratch_rows, numel)
        scratch = torch.empty(rows, dtype=call.compute, device=device)
    call.backward[_grid(call, numel)](
        grad_x if x is None else x,
        grad_x if saved is None else saved,
        scratch,
        call.params,
        g,
        g_st,
        g_sn,
        grad_state,
        grad_x,
        steps,
        numel,
        CHECKPOINT_EVERY,
        HAS_G=grad_out is not None,
        PER_NEURON=call.per_neuron,
        SURROGATE=call.surrogate,
        CDT=call.compute_tl,
        BLOCK=call.block,
        num_warps=call.warps,
        enable_fp_fusion=False,
    )
    grads = [row.view(call.shape).to(call.dtype) for row in grad_state.unbind(0)]
    return grad_x, grads


def _final_state(call: _Call, state: torch.Tensor) -> list[torch.Tensor]:
    """The final state rows as separate tensors of the input's shape and dtype."""
    rows = [row.view(call.shape) for row in state.unbind(0)]
    if call.compute == call.dtype:
        return [row.clone() for row in rows]  # separate storages, as the eager step's
    return [row.to(call.dtype) for row in rows]


class _TritonSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, call: _Call, x: torch.Tensor, *fields: torch.Tensor) -> Any:  # type: ignore[override]
        ctx.set_materialize_grads(False)
        out, state, saved = _forward(call, x, list(fields), keep_saved=True)
        if call.spec.saves == "checkpoints":
            ctx.save_for_backward(x)  # a reference: the kernel recomputes from it
        ctx.call, ctx.saved, ctx.steps = call, saved, x.shape[0]
        return (out, *_final_state(call, state))

    @staticmethod
    @once_differentiable  # the kernel's backward is not itself differentiable
    def backward(ctx: Any, grad_out: torch.Tensor | None, *grad_fields: Any) -> Any:  # type: ignore[override]
        x = kernels.saved_input(ctx)
        grad_x, grads = _backward(ctx.call, x, ctx.saved, grad_out, grad_fields, ctx.steps)
        return (None, grad_x, *grads)


def run(
    spec: KernelSpec, x: torch.Tensor, state: Any, p: Any, dt: float
) -> tuple[torch.Tensor, Any] | None:
    """All T steps through the Triton kernel, or None where it does not apply exactly."""
    call = prepare(spec, x, state, p, dt)
    if call is None:
        return None
    fields = kernels.flatten_state(spec, state)
    if kernels.needs_grad(x, *fields):
        out, *final = _TritonSequence.apply(call, x, *fields)
    else:
        out, packed, _ = _forward(call, x, fields, keep_saved=False)
        final = _final_state(call, packed)
    return out, kernels.rebuild_state(state, spec, final)
