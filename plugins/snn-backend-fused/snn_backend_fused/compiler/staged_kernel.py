"""Running a staged recurrent kernel (:mod:`.staged_cpp`): the autograd function around it, the
effective recurrent matrix of a model's ``synaptic_input``, and the checks of a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch

from snn_backend_fused import buffers
from snn_backend_fused.compiler.kernel import _pointers, _ptr, refuse_double_backward
from snn_backend_fused.compiler.stages import Staging, analyse

_staging: dict[int, Staging] = {}


@attrs.frozen
class StagedCall:
    staging: Staging
    library: Any
    threads: int
    params: list[torch.Tensor]
    per_neuron: Any
    matrices: int
    #: flattened state fields with one value per synapse, (batch, hidden, hidden)
    synapse_fields: tuple[int, ...] = ()
    #: grad mode was on at the call (else nothing is saved for backward)
    grad: bool = True

    def shapes(self, batch: int, hidden: int) -> list[tuple[int, ...]]:
        return [
            (batch, hidden, hidden) if k in self.synapse_fields else (batch, hidden)
            for k in range(self.staging_fields)
        ]

    @property
    def staging_fields(self) -> int:
        return len(self.staging.outputs) - 1


def _padded(matrix: torch.Tensor, width: int) -> torch.Tensor:
    """``matrix`` with its last dimension padded with zeros to ``width`` (contiguous)."""
    out = matrix.new_zeros((*matrix.shape[:-1], width))
    out[..., : matrix.shape[-1]] = matrix
    return out


class _StagedRecurrent(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, call: StagedCall, xw: torch.Tensor, wt: torch.Tensor, *tensors: Any
    ) -> Any:  # type: ignore[override]
        mats, state = tensors[: call.matrices], tensors[call.matrices :]
        T, B, CH = xw.shape
        H = wt.shape[0]
        dtype, d = xw.dtype, "f32" if xw.dtype == torch.float32 else "f64"
        rows, products = len(call.staging.rows), len(call.staging.products)
        xw = xw.contiguous()
        out = buffers.empty((T, B, H), dtype)
        shapes = call.shapes(B, H)
        final = [
            s.detach().expand(shape).contiguous().clone()
            for s, shape in zip(state, shapes, strict=True)
        ]
        keep = call.grad and any(ctx.needs_input_grad[1:])  # not under torch.no_grad()
        nsy = len(call.synapse_fields)
        HP = int(getattr(call.library, f"snngs_row_{d}")(H))  # the kernel's padded row
        saved_syn = buffers.empty((T, B, nsy, H, HP), dtype) if keep and nsy else None
        currents = buffers.empty((T, B, CH), dtype) if keep else None
        zprev = buffers.empty((T, B, H), dtype) if keep else None
        saved_states = buffers.empty((T, B, len(final), HP), dtype) if keep else None
        saved_rows = buffers.empty((T, B, rows, HP), dtype) if keep and rows else None
        mv_args = buffers.empty((T, products, B, H), dtype) if keep and products else None
        mats_t = [_padded(m.detach().t(), HP) for m in mats]
        channels = CH // H
        wt_c = _padded(wt.detach().reshape(H, channels, H), HP)  # (kept alive for the call)
        status = getattr(call.library, f"snngs_forward_{d}")(
            T,
            B,
            H,
            xw.data_ptr(),
            wt_c.data_ptr(),
            _pointers(mats_t),
            _pointers(final),
            _pointers(call.params),
            call.per_neuron,
            out.data_ptr(),
            _ptr(currents),
            _ptr(zprev),
            _ptr(saved_states),
            _ptr(saved_rows),
            _ptr(mv_args),
            _ptr(saved_syn),
            call.threads,
        )
        if status != 0:
            raise RuntimeError(f"generated recurrent kernel failed with status {status}")
        ctx.call = call
        ctx.state_shapes = [s.shape for s in state]
        if keep:
            ctx.save_for_backward(
                currents, zprev, saved_states, saved_rows, mv_args, saved_syn, wt, *mats
            )
        return (out, *final)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor, *grad_state: torch.Tensor | None) -> Any:  # type: ignore[override]
        refuse_double_backward()
        currents, zprev, saved_states, saved_rows, mv_args, saved_syn, wt, *mats = ctx.saved_tensors
        call = ctx.call
        T, B, CH = currents.shape
        H = wt.shape[0]
        dtype, d = currents.dtype, "f32" if currents.dtype == torch.float32 else "f64"
        grad_out = torch.zeros((T, B, H), dtype=dtype) if grad_out is None else grad_out
        grad_out = grad_out.to(dtype).contiguous()
        g_state = [
            torch.zeros(shape, dtype=dtype)
            if g is None
            else g.to(dtype).expand(shape).contiguous().clone()
            for g, shape in zip(grad_state, call.shapes(B, H), strict=True)
        ]
        grad_current = buffers.empty((T, B, CH), dtype)
        products = len(call.staging.products)
        mv_grads = buffers.empty((T, products, B, H), dtype) if products else None
        HP = saved_states.shape[-1]
        w = _padded(wt.detach().t(), HP)  # W_eff (kept alive for the call)
        mats_c = [_padded(m.detach(), HP) for m in mats]
        status = getattr(call.library, f"snngs_backward_{d}")(
            T,
            B,
            H,
            currents.data_ptr(),
            w.data_ptr(),
            _pointers(mats_c),
            saved_states.data_ptr(),
            _ptr(saved_rows),
            _ptr(saved_syn),
            _pointers(call.params),
            call.per_neuron,
            grad_out.data_ptr(),
            _pointers(g_state),
            grad_current.data_ptr(),
            _ptr(mv_grads),
            call.threads,
        )
        if status != 0:
            raise RuntimeError(f"generated recurrent backward kernel failed with status {status}")
        needs = ctx.needs_input_grad
        grad_wt = zprev.reshape(-1, H).t() @ grad_current.reshape(-1, CH) if needs[2] else None
        grad_mats = [
            mv_grads[:, m].reshape(-1, H).t() @ mv_args[:, m].reshape(-1, H)
            if needs[3 + m]
            else None
            for m in range(call.matrices)
        ]
        g_state = [g.sum_to_size(shape) for g, shape in zip(g_state, ctx.state_shapes, strict=True)]
        return (None, grad_current, grad_wt, *grad_mats, *g_state)


def effective_weights(model: Any, recurrent_weights: torch.Tensor) -> torch.Tensor:
    """``W_effᵀ`` (hidden × channels·hidden): row ``j`` is the input that a spike of neuron
    ``j`` adds, ``synaptic_input(e_j, W_rec)`` (the model's synaptic input is linear in the
    spikes: :func:`check_linear`): its ``synaptic_weights(W_rec)`` transposed where it declares
    them, else ``synaptic_input`` applied to the identity (``channels·hidden³`` operations)."""
    if model.synaptic_input is None:
        return recurrent_weights.t()
    if model.synaptic_weights is not None:
        return model.synaptic_weights(recurrent_weights).t()
    hidden = recurrent_weights.shape[0]
    eye = torch.eye(hidden, dtype=recurrent_weights.dtype, device=recurrent_weights.device)
    return model.synaptic_input(eye, recurrent_weights)


def check_linear(model: Any, hidden: int) -> int | str:
    """The number of input channels of the model's ``synaptic_input`` if it is linear in the
    spikes (checked in float64 on random numbers), else why it cannot be used."""
    if model.synaptic_input is None:
        return 1
    generator = torch.Generator().manual_seed(3)
    w = torch.randn(hidden, hidden, generator=generator, dtype=torch.float64)
    a, b = (torch.rand(2, hidden, generator=generator, dtype=torch.float64) for _ in range(2))
    try:
        combined = model.synaptic_input(a + 2.0 * b, w)
        separate = model.synaptic_input(a, w) + 2.0 * model.synaptic_input(b, w)
        through_columns = (a + 2.0 * b) @ effective_weights(model, w)
    except Exception as exc:  # a third party's synaptic input may fail on these shapes
        return f"its synaptic_input fails on a probe: {type(exc).__name__}: {exc}"
    if combined.dim() != 2 or combined.shape[-1] % hidden:
        return "its synaptic_input does not give whole channels of one value per neuron"
    scale = float(combined.abs().max()) or 1.0
    for other in (separate, through_columns):
        if other.shape != combined.shape or float((combined - other).abs().max()) > 1e-12 * scale:
            return "its synaptic_input is not linear in the spikes (or not its synaptic_weights)"
    return combined.shape[-1] // hidden


def run(
    traced: Any,
    library: Any,
    model: Any,
    x: torch.Tensor,
    state: Any,
    params: list[torch.Tensor],
    per_neuron: Any,
    weights: tuple[torch.Tensor, torch.Tensor],
    module_tensors: Mapping[str, torch.Tensor],
) -> tuple[torch.Tensor, Any] | str:
    """A recurrent layer through its staged kernel, or why it declines."""
    input_weights, recurrent_weights = weights
    hidden = recurrent_weights.shape[0]
    staging = _staging.get(id(traced))
    if staging is None:  # traced steps live as long as the process (kernel._traces)
        staging = _staging[id(traced)] = analyse(traced)
    mats = []
    for product in staging.products:
        name = traced.matrices[product.matrix]
        matrix = module_tensors.get(name)
        if matrix is None or tuple(matrix.shape) != (hidden, hidden):
            return f"its module tensor {name} is not a {hidden} × {hidden} matrix"
        if matrix.dtype != x.dtype or matrix.device != x.device:
            return f"its module tensor {name} is not {x.dtype} on {x.device}"
        mats.append(matrix if product.transposed else matrix.t())
    weigh = model.synaptic_input or torch.nn.functional.linear
    xw = weigh(x, input_weights)
    if xw.shape != (*x.shape[:2], traced.channels * hidden):
        return "the synaptic input does not have one block of hidden values per channel"
    wt = effective_weights(model, recurrent_weights)
    flat, tree = torch.utils._pytree.tree_flatten(state)
    call = StagedCall(
        staging,
        library,
        max(1, torch.get_num_threads()),
        params,
        per_neuron,
        len(mats),
        traced.synapse_fields,
        torch.is_grad_enabled(),
    )
    out, *final = _StagedRecurrent.apply(call, xw, wt, *mats, *flat)
    return out, torch.utils._pytree.tree_unflatten(final, tree)
