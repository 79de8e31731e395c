"""The hand-written kernels: which model step each implements, and what they share.

Hand-written kernels remain for what the step compiler (:mod:`snn_backend_fused.compiler`) does
not generate: the Triton (CUDA) layer kernels (:mod:`snn_backend_fused.triton`).  CPU layers,
feed-forward and recurrent, run generated kernels.

A :class:`KernelSpec` ties a kernel to the Python step function whose numerics it reproduces,
named by module and qualified name (``snn_lif.lif.lif_feed_forward_step``) so that matching a
model needs no import of its plugin.  It lists the state fields in the kernel's row order and
builds the kernel's parameter values from the model's parameter record with the same PyTorch
operations the step uses (``dt * p.tau_mem_inv`` ...), so that the forward pass rounds exactly
as the step does.

:func:`check` returns ``None`` (the caller then takes another path) where a kernel would not be
exact or does not apply: a parameter that needs a gradient, a surrogate registered by a third
party, a state of another shape, dtype or device than the input, a per-neuron parameter of a
wider dtype than the input (the step would widen the state).  The helpers below it
(:func:`needs_grad`, :func:`saved_input`, :func:`state_gradients`, :func:`upstream_rows`,
:func:`flatten_state`, :func:`rebuild_state`) are what the Triton kernels' autograd function
needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

#: The built-in surrogates, in the Triton kernels' numbering (triton/common.py).
SURROGATES = ("super", "heaviside", "triangle", "tanh", "circ", "heavi_erfc", "logistic", "atan")
#: The Triton kernels' backward pass recomputes segments of this many steps from a checkpoint of
#: the state.
CHECKPOINT_EVERY = 32


@attrs.frozen
class KernelSpec:
    """A hand-written kernel and the step function it implements."""

    #: The kernel's name (its family in :data:`snn_backend_fused.triton.launch.FAMILIES`).
    name: str
    #: ``"module.qualname"`` of the model's step function this kernel reproduces.
    step: str
    #: State fields in the kernel's row order; dotted for nested states (``"lif.v"``).
    state_fields: tuple[str, ...]
    #: ``(p, dt, dtype) -> [tensors]``: the kernel's parameters, built as the step builds them.
    parameters: Callable[[Any, float, torch.dtype], list[torch.Tensor]]
    #: ``p -> method``: the surrogate's name, or ``None`` for a model that does not spike (a
    #: spiking kernel's last parameter is the surrogate's sharpness ``alpha``).
    surrogate: Callable[[Any], str] | None = None
    #: What the forward pass keeps for the backward pass: ``"checkpoints"`` (a reference to the
    #: input and the state every :data:`CHECKPOINT_EVERY` steps; backward recomputes),
    #: ``"distance"`` (one value per element, e.g. LIF's v1 − v_th) or ``"nothing"`` (a linear
    #: model).
    saves: str = "checkpoints"


def _lif_parameters(p: Any, dt: float, dtype: torch.dtype) -> list[torch.Tensor]:
    return [dt * p.tau_mem_inv, dt * p.tau_syn_inv, p.v_leak, p.v_th, p.v_reset, p.alpha]


def _li_parameters(p: Any, dt: float, dtype: torch.dtype) -> list[torch.Tensor]:
    return [dt * p.tau_mem_inv, dt * p.tau_syn_inv, p.v_leak]


def _lsnn_parameters(p: Any, dt: float, dtype: torch.dtype) -> list[torch.Tensor]:
    return [
        dt * p.tau_mem_inv,
        dt * p.tau_syn_inv,
        dt * p.tau_adapt_inv,
        p.v_leak,
        p.v_th,
        p.v_reset,
        p.beta,
        p.alpha,
    ]


def _exp_ceiling(dtype: torch.dtype) -> torch.Tensor:
    """snn_adex.exponential.exp_ceiling: the exponent's clamp, ln(max float)/2 of the dtype."""
    return torch.tensor(0.5 * math.log(torch.finfo(dtype).max), dtype=torch.float64)


def _lif_ex_parameters(p: Any, dt: float, dtype: torch.dtype) -> list[torch.Tensor]:
    return [
        dt * p.tau_mem_inv,
        dt * p.tau_syn_inv,
        p.v_leak,
        p.v_th,
        p.v_reset,
        p.delta_T,
        _exp_ceiling(dtype),
        p.alpha,
    ]


def _lif_adex_parameters(p: Any, dt: float, dtype: torch.dtype) -> list[torch.Tensor]:
    return [
        dt * p.tau_mem_inv,
        dt * p.tau_syn_inv,
        dt * p.tau_ada_inv,
        p.v_leak,
        p.v_th,
        p.v_reset,
        p.delta_T,
        p.adaptation_current,
        p.adaptation_spike,
        _exp_ceiling(dtype),
        p.alpha,
    ]


def _lif_refrac_parameters(p: Any, dt: float, dtype: torch.dtype) -> list[torch.Tensor]:
    return [*_lif_parameters(p.lif, dt, dtype)[:5], p.rho_reset, p.lif.alpha]


def _own_surrogate(p: Any) -> str:
    return p.method


def _lif_surrogate(p: Any) -> str:
    return p.lif.method


#: The feed-forward layer kernels (Triton, on CUDA; on the CPU layers run generated kernels).
KERNELS: tuple[KernelSpec, ...] = (
    KernelSpec(
        name="lif",
        step="snn_lif.lif.lif_feed_forward_step",
        state_fields=("v", "i"),
        parameters=_lif_parameters,
        surrogate=_own_surrogate,
        saves="distance",
    ),
    KernelSpec(
        name="li",
        step="snn_lif.li.li_feed_forward_step",
        state_fields=("v", "i"),
        parameters=_li_parameters,
        saves="nothing",
    ),
    KernelSpec(
        name="lsnn",
        step="snn_lsnn.lsnn.lsnn_feed_forward_step",
        state_fields=("v", "i", "b"),
        parameters=_lsnn_parameters,
        surrogate=_own_surrogate,
    ),
    KernelSpec(
        name="lif_ex",
        step="snn_adex.ex.lif_ex_feed_forward_step",
        state_fields=("v", "i"),
        parameters=_lif_ex_parameters,
        surrogate=_own_surrogate,
    ),
    KernelSpec(
        name="lif_adex",
        step="snn_adex.adex.lif_adex_feed_forward_step",
        state_fields=("v", "i", "a"),
        parameters=_lif_adex_parameters,
        surrogate=_own_surrogate,
    ),
    KernelSpec(
        name="lif_refrac",
        step="snn_refrac.refrac.lif_refrac_feed_forward_step",
        state_fields=("lif.v", "lif.i", "rho"),
        parameters=_lif_refrac_parameters,
        surrogate=_lif_surrogate,
    ),
)


def step_name(step: Any) -> str:
    return f"{getattr(step, '__module__', '')}.{getattr(step, '__qualname__', '')}"


_BY_STEP = {spec.step: spec for spec in KERNELS}


def kernel_for(model: Any, variant: str) -> KernelSpec | None:
    """The hand-written (Triton) layer kernel of ``variant`` of ``model``, if there is one."""
    if variant != "layer" or model.feed_forward_step is None:
        return None
    return _BY_STEP.get(step_name(model.feed_forward_step))


def surrogate_index(method: Any) -> int | None:
    """The kernels' number of a built-in surrogate (a name, alias or resolved
    :class:`snncore.Surrogate`), else ``None``."""
    from snncore import surrogates

    try:
        derivative = surrogates.resolve_surrogate(method).derivative
    except Exception:
        return None
    for surrogate, _aliases in surrogates.BUILTIN:
        if surrogate.derivative is derivative and surrogate.name in SURROGATES:
            return SURROGATES.index(surrogate.name)
    return None


# -- what the kernels' autograd function does (Triton) -------------------------------------------


def needs_grad(*tensors: torch.Tensor) -> bool:
    """Whether a call must go through the kernel's autograd function (else forward only)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def saved_input(ctx: Any) -> torch.Tensor | None:
    """The input kept by a forward pass that saves checkpoints (else None), after checking
    that what the spec says the forward pass saved is still there."""
    call, saved = ctx.call, ctx.saved
    x = ctx.saved_tensors[0].detach().contiguous() if ctx.saved_tensors else None
    if (call.spec.saves == "checkpoints" and x is None) or (
        call.spec.saves != "nothing" and saved is None
    ):
        raise RuntimeError("snn-backend-fused: what the forward pass saved is gone")
    return x


def state_gradients(
    grad_fields: Sequence[torch.Tensor | None],
    numel: int,
    dtype: torch.dtype,
    device: torch.device | None = None,
) -> torch.Tensor:
    """The final state's gradient as (S, numel) rows, 0 where none came: the kernels read it
    and overwrite it with the initial state's."""
    rows = torch.zeros(len(grad_fields), numel, dtype=dtype, device=device)
    for row, grad in zip(rows.unbind(0), grad_fields, strict=True):
        if grad is not None:
            row.copy_(grad.reshape(numel))
    return rows


def upstream_rows(
    grad_out: torch.Tensor, steps: int, numel: int, dtype: torch.dtype
) -> torch.Tensor:
    """The output's gradient as (T, numel) rows in ``dtype``, without a copy where it already
    is one (an expanded gradient keeps its stride 0); the kernels read rows with a stride of
    0 or 1."""
    rows = grad_out.to(dtype).reshape(steps, numel)
    return rows if rows.stride(1) in (0, 1) else rows.contiguous()


# -- state records ---------------------------------------------------------------------------


def _get(state: Any, path: str) -> Any:
    for part in path.split("."):
        state = getattr(state, part)
    return state


def flatten_state(spec: KernelSpec, state: Any) -> list[Any]:
    return [_get(state, path) for path in spec.state_fields]


def rebuild_state(template: Any, spec: KernelSpec, values: Sequence[torch.Tensor]) -> Any:
    """``template`` (a NamedTuple, possibly nested) with the kernel's fields replaced."""
    updates: dict[str, Any] = {}
    nested: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for path, value in zip(spec.state_fields, values, strict=True):
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, []).append((rest, value))
        else:
            updates[head] = value
    for head, items in nested.items():
        inner = getattr(template, head)
        sub = KernelSpec(name="", step="", state_fields=tuple(r for r, _ in items), parameters=list)
        updates[head] = rebuild_state(inner, sub, [v for _, v in items])
    return template._replace(**updates)


# -- parameters ------------------------------------------------------------------------------


def _pack_parameters(
    values: list[torch.Tensor],
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, bool] | None:
    """The parameters as one (P,) tensor, or (P, M) when any is per-neuron, on ``device``
    (default CPU; each parameter on the CPU or there); None if the step would broadcast or
    promote differently from the kernel."""
    device = torch.device("cpu") if device is None else device
    per_neuron = False
    for value in values:
        if not torch.is_tensor(value) or value.is_complex():
            return None
        if value.device.type != "cpu" and value.device != device:
            return None
        if value.requires_grad:
            return None
        if value.numel() != 1 or value.dim() > 0:
            try:
                if tuple(torch.broadcast_shapes(value.shape, shape)) != shape:
                    return None
            except RuntimeError:
                return None
            if torch.promote_types(value.dtype, dtype) != dtype:
                return None  # a dimensioned wider parameter would widen the step's result
            if value.numel() != 1:
                per_neuron = True
    if not per_neuron and device.type == "cpu":  # through Python floats: exact
        return torch.tensor([v.item() for v in values], dtype=dtype), False
    if not per_neuron:  # on a GPU without a synchronising .item() per value; the same rounding
        return torch.stack([v.detach().reshape(()).to(device, dtype) for v in values]), False
    numel = math.prod(shape)
    rows = [v.detach().to(device, dtype).expand(shape).reshape(numel) for v in values]
    return torch.stack(rows), True


def check(
    spec: KernelSpec, x: torch.Tensor, state: Any, p: Any, dt: float
) -> tuple[torch.Tensor, bool, int] | None:
    """What the Triton kernels check before they run: whether
    ``spec``'s kernel reproduces this call exactly (state fields of the input's shape, dtype and
    device; a built-in surrogate; no parameter that needs a gradient; parameters that broadcast
    and promote as the step's), and if so ``(params, per_neuron, surrogate)``, the parameters
    packed in ``x``'s dtype on ``x``'s device."""
    if x.dim() < 2 or x.numel() == 0:
        return None
    shape = tuple(x.shape[1:])
    try:
        fields = flatten_state(spec, state)
    except AttributeError:
        return None
    for value in fields:
        if not torch.is_tensor(value) or tuple(value.shape) != shape or value.dtype != x.dtype:
            return None
        if value.device != x.device:
            return None
    surrogate = 0
    values = spec.parameters(p, dt, x.dtype)
    if spec.surrogate is not None:
        index = surrogate_index(spec.surrogate(p))
        if index is None:
            return None
        surrogate = index
    if any(torch.is_tensor(v) and v.requires_grad for v in attrs.astuple(p, recurse=True)):
        return None
    packed = _pack_parameters(values, shape, x.dtype, x.device)
    if packed is None:
        return None
    params, per_neuron = packed
    return params, per_neuron, surrogate
