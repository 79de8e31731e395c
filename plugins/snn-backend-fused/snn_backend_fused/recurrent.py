"""Recurrent layers of LIF and LSNN through one kernel call (``csrc/recurrent.cpp``).

The eager backend runs a recurrent layer as ``W_in·x`` for all steps (one matrix product), then
per step ``current = W_in·x_t + W_rec·z_{t−1}`` and the model's ``recurrent_step``, with an
autograd graph of a dozen small tensors per step.  Here the input projection is the same
``torch.nn.functional.linear`` over all steps (so autograd gives ``∂x`` and ``∂W_in`` from the
current's gradient as the eager backend does), and the whole time loop -- the recurrent current,
accumulated from the rows of ``W_recᵀ`` of the neurons that spiked (spikes are 0/1, so this is
exact), and the neuron update -- is one C++ call, parallel over the batch.

Backward (:class:`_RecurrentSequence`) is the hand-written chain rule through time: the steps
detach the spike in the reset (and LSNN's threshold jump), so the only per-step value it needs
is the spike's argument ``s`` (``v1 − v_th``, ``v1 − b1``): one value per element, saved by the
forward pass, plus references to the output spikes, ``W_rec`` and the initial ``z``.  The kernel
returns ``∂L/∂current`` of every step (autograd's linear backward turns it into ``∂x`` and
``∂W_in``), the initial state's gradient and ``∂W_rec = Σ_t ∂current_tᵀ·z_{t−1}``, accumulated
from the spikes as the forward pass accumulates the current.

:func:`run` returns ``None`` where the kernel would not be exact or does not apply (the caller
then runs the eager loop): a parameter that needs a gradient, a third-party surrogate, a state
of another shape or dtype than ``(batch, hidden)`` of the input's dtype, weights of another
dtype, a model that weighs its synaptic input itself or owns extra tensors, a non-CPU device, a
dtype other than float32/float64, or CPU autocast (``--precision bf16-mixed``) being on.

Rounding: the forward pass adds the terms of ``W_rec·z`` in ascending neuron order, PyTorch's
matrix product in its own order, so the recurrent current may differ in the last bit (float32:
about 1e-7 relative); everything else is computed as the step does.  The backward pass's sums
(``W_recᵀ·∂current``, ``∂W_rec`` over steps and batch) are likewise ordered differently from
autograd's; ``∂W_rec`` sums 32 steps at a time before adding them to its total.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs
import torch
from torch.autograd.function import once_differentiable

from snn_backend_fused import buffers, build, kernels
from snncore.protocols import state_z

#: The recurrent kernels: state fields in the kernel's row order (``z`` first), parameters built
#: as the feed-forward kernel of the same model builds them (the recurrent step's own
#: expressions), and the spike's argument saved for the backward pass.
RECURRENT_KERNELS: tuple[kernels.KernelSpec, ...] = (
    kernels.KernelSpec(
        name="lif_recurrent",
        step="snn_lif.lif.lif_recurrent_step",
        state_fields=("z", "v", "i"),
        parameters=kernels._lif_parameters,
        surrogate=kernels._own_surrogate,
        saves="distance",
    ),
    kernels.KernelSpec(
        name="lsnn_recurrent",
        step="snn_lsnn.lsnn.lsnn_recurrent_step",
        state_fields=("z", "v", "i", "b"),
        parameters=kernels._lsnn_parameters,
        surrogate=kernels._own_surrogate,
        saves="distance",
    ),
)
_BY_STEP = {spec.step: spec for spec in RECURRENT_KERNELS}


def kernel_for(model: Any, variant: str) -> kernels.KernelSpec | None:
    """The hand-written kernel of ``variant`` of ``model`` (``"recurrent"`` only), if any."""
    if variant != "recurrent" or model.recurrent_step is None:
        return None
    return _BY_STEP.get(kernels.step_name(model.recurrent_step))


@attrs.frozen
class _Call:
    """Everything a recurrent kernel call needs besides the tensors autograd sees."""

    spec: kernels.KernelSpec
    forward: Any
    backward: Any
    params: torch.Tensor
    per_neuron: bool
    surrogate: int
    batch: int
    hidden: int


_functions: dict[tuple[int, str], tuple[Any, Any]] = {}


def _entry_points(library: Any, name: str) -> tuple[Any, Any]:
    """``snnf_NAME_forward`` and ``snnf_NAME_backward``, declared for ctypes (once)."""
    found = _functions.get((id(library), name))
    if found is not None:
        return found
    c_int, c_i64, c_void = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    forward = getattr(library, f"snnf_{name}_forward")
    forward.restype = c_int
    forward.argtypes = [c_int, c_int, c_i64, c_i64, c_i64, c_void, c_void, c_void, c_void, c_void]
    forward.argtypes += [c_void, c_int]
    backward = getattr(library, f"snnf_{name}_backward")
    backward.restype = c_int
    backward.argtypes = [c_int, c_int, c_int, c_i64, c_i64, c_i64, c_void, c_void, c_void, c_void]
    backward.argtypes += [c_void, c_void, c_i64, c_i64, c_void, c_void, c_void, c_int]
    _functions[(id(library), name)] = (forward, backward)
    return forward, backward


def _is_weight(w: Any, shape: tuple[int, int], dtype: torch.dtype) -> bool:
    return (
        torch.is_tensor(w)
        and w.device.type == "cpu"
        and w.dtype == dtype
        and tuple(w.shape) == shape
    )


class Request(NamedTuple):
    """A recurrent layer's call, as the backend's ``run_recurrent`` receives it."""

    model: Any
    x: torch.Tensor
    state: Any
    p: Any
    dt: float
    input_weights: torch.Tensor
    recurrent_weights: torch.Tensor
    module_tensors: Mapping[str, torch.Tensor]


def prepare(spec: kernels.KernelSpec, request: Request) -> _Call | None:
    """Check that the kernel applies exactly to this call and build its arguments, else None."""
    model, x, state, p, dt, input_weights, recurrent_weights, module_tensors = request
    if x.device.type != "cpu" or x.dtype not in kernels._BITS or x.dim() != 3 or x.numel() == 0:
        return None
    if torch.is_autocast_enabled("cpu"):  # eager's products run in the autocast dtype: match it
        return None
    if model.synaptic_input is not None or module_tensors or model.last_spikes is not state_z:
        return None
    hidden = recurrent_weights.shape[0] if torch.is_tensor(recurrent_weights) else 0
    if hidden == 0 or not _is_weight(recurrent_weights, (hidden, hidden), x.dtype):
        return None
    if not _is_weight(input_weights, (hidden, x.shape[2]), x.dtype):
        return None
    # the state and parameter checks of the feed-forward kernels, on a stand-in for the
    # projected input (T, B, H): one step's worth, nothing allocated beyond one element
    currents_like = x.new_empty(1).expand(1, x.shape[1], hidden)
    checked = kernels.check(spec, currents_like, state, p, dt)
    if checked is None:
        return None
    params, per_neuron, surrogate = checked
    forward, backward = _entry_points(build.load(), spec.name)
    return _Call(spec, forward, backward, params, per_neuron, surrogate, x.shape[1], hidden)


def _forward(
    call: _Call,
    currents: torch.Tensor,
    recurrent_weights: torch.Tensor,
    fields: list[torch.Tensor],
    keep_saved: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """All steps from the projected input ``currents`` (T, B, H): spikes, final state rows
    (S, B·H) and, when ``keep_saved``, the spike's argument of every step."""
    steps, numel = currents.shape[0], call.batch * call.hidden
    currents = currents.detach().contiguous()
    transposed = recurrent_weights.detach().t().contiguous()
    state = torch.stack([f.detach().reshape(numel) for f in fields])
    out = buffers.empty(tuple(currents.shape), currents.dtype)
    saved = buffers.empty(tuple(currents.shape), currents.dtype) if keep_saved else None
    status = call.forward(
        kernels._BITS[currents.dtype],
        int(call.per_neuron),
        steps,
        call.batch,
        call.hidden,
        currents.data_ptr(),
        transposed.data_ptr(),
        out.data_ptr(),
        state.data_ptr(),
        buffers.data_pointer(saved),
        call.params.data_ptr(),
        torch.get_num_threads(),
    )
    kernels._check(status, f"{call.spec.name} forward")
    return out, state, saved


class _RecurrentSequence(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        call: _Call,
        currents: torch.Tensor,
        recurrent_weights: torch.Tensor,
        *fields: torch.Tensor,
    ) -> Any:
        ctx.set_materialize_grads(False)
        out, state, saved = _forward(call, currents, recurrent_weights, list(fields), True)
        ctx.save_for_backward(recurrent_weights, fields[0], out)  # W_rec, z_0, the spikes
        ctx.call, ctx.saved = call, saved
        shape = (call.batch, call.hidden)
        return (out, *(row.view(shape).clone() for row in state.unbind(0)))

    @staticmethod
    @once_differentiable  # the kernel's backward is not itself differentiable
    def backward(ctx: Any, grad_out: torch.Tensor | None, *grad_fields: Any) -> Any:  # type: ignore[override]
        call, saved = ctx.call, ctx.saved
        recurrent_weights, z0, out = ctx.saved_tensors
        if saved is None:
            raise RuntimeError("snn-backend-fused: what the forward pass saved is gone")
        steps, hidden, dtype = out.shape[0], call.hidden, call.params.dtype
        numel = call.batch * hidden
        grad_state = kernels.state_gradients(grad_fields, numel, dtype)
        upstream = (
            None if grad_out is None else kernels.upstream_rows(grad_out, steps, numel, dtype)
        )
        weights = recurrent_weights.detach().contiguous()
        z0 = z0.detach().contiguous()
        grad_current = buffers.empty(tuple(out.shape), dtype)
        grad_weights = torch.empty(hidden, hidden, dtype=dtype) if ctx.needs_input_grad[2] else None
        status = call.backward(
            kernels._BITS[dtype],
            int(call.per_neuron),
            call.surrogate,
            steps,
            call.batch,
            hidden,
            weights.data_ptr(),
            saved.data_ptr(),
            out.data_ptr(),
            z0.data_ptr(),
            call.params.data_ptr(),
            buffers.data_pointer(upstream),
            0 if upstream is None else upstream.stride(0),
            0 if upstream is None else upstream.stride(1),
            grad_state.data_ptr(),
            grad_current.data_ptr(),
            buffers.data_pointer(grad_weights),
            torch.get_num_threads(),
        )
        kernels._check(status, f"{call.spec.name} backward")
        grads = [row.view(call.batch, hidden) for row in grad_state.unbind(0)]
        return (None, grad_current, grad_weights, *grads)


def run(spec: kernels.KernelSpec, request: Request) -> tuple[torch.Tensor, Any] | None:
    """All T steps through the kernel, or ``None`` where the kernel does not apply exactly."""
    call = prepare(spec, request)
    if call is None:
        return None
    recurrent_weights = request.recurrent_weights
    currents = torch.nn.functional.linear(request.x, request.input_weights)  # as eager weighs x
    fields = kernels.flatten_state(spec, request.state)
    if kernels.needs_grad(currents, recurrent_weights, *fields):
        out, *final = _RecurrentSequence.apply(call, currents, recurrent_weights, *fields)
    else:
        out, rows, _ = _forward(call, currents, recurrent_weights, fields, keep_saved=False)
        final = [row.view(call.batch, call.hidden) for row in rows.unbind(0)]
    return out, kernels.rebuild_state(request.state, spec, final)
