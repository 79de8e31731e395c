"""Generic checks of a module's calling conventions, shared by every model: input layouts
(unbatched, several batch axes), bool and integer input, gradients reaching the initial state and
tensors of ``p`` that require grad.  Each ``check_*(subject, variant, options)`` raises
:class:`CheckFailure` saying what is wrong.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from snncore.parameters import replace_tensors, tensor_items
from snncore.testing._harness import (
    LOOPS,
    RECURRENT,
    CheckFailure,
    Subject,
    assert_close,
    tensor_leaves,
)


def _flat(subject: Subject, module: Any, variant: str, x: torch.Tensor) -> torch.Tensor:
    """The output for ``x`` run as one batch axis (the layout every module accepts)."""
    time = 1 if variant in LOOPS else 0
    if variant in RECURRENT:
        flat = x.reshape(*x.shape[:time], math.prod(x.shape[time:-1]), x.shape[-1])
        out, _ = module(flat)
        return out.reshape(*x.shape[:-1], -1)
    out, _ = module(x.reshape(*x.shape[:time], 1, -1))
    return out.reshape(x.shape)


def check_input_layouts(subject: Subject, variant: str, options: Any) -> None:
    """Unbatched input (no batch axis) and several batch axes give the outputs of the same
    neurons laid out along one batch axis, with states of the matching shape."""
    module = subject.build(variant)
    steps = 4 if variant in LOOPS else None
    base = subject.inputs(variant, steps, batch=6)
    per_step = base.shape[1:] if variant in LOOPS else base.shape
    features = per_step[1:]
    layouts = {"unbatched": (*base.shape[: len(base.shape) - len(per_step)], *features)}
    layouts["two batch axes"] = (*base.shape[: len(base.shape) - len(per_step)], 2, 3, *features)
    for name, shape in layouts.items():
        x = base.flatten()[: math.prod(shape)].reshape(shape)
        try:
            out, state = module(x)
        except (ValueError, RuntimeError) as exc:
            raise CheckFailure(
                f"{name} input of shape {tuple(x.shape)} is refused: {exc}"
            ) from None
        want = _flat(subject, module, variant, x)
        assert_close(f"{name} input of shape {tuple(x.shape)}: output", out, want, 0, 0)
        neurons = tuple(out.shape[1:] if variant in LOOPS else out.shape)
        for field, value in tensor_leaves(state):
            if tuple(value.shape[: len(neurons)]) != neurons:
                raise CheckFailure(
                    f"{name} input of shape {tuple(x.shape)}: state field {field!r} has shape "
                    f"{tuple(value.shape)}, expected to start with {neurons}"
                )


def check_input_dtypes(subject: Subject, variant: str, options: Any) -> None:
    """Bool and integer input (spike tensors, spike counts) are cast to the module's dtype and
    give the output of the same values as floats."""
    module = subject.build(variant)
    counts = (subject.inputs(variant, 4 if variant in LOOPS else None) > 0).to(torch.int64)
    counts = counts * 3
    want, _ = module(counts.to(torch.float64))
    for given in (counts, counts > 0):
        out, _ = module(given)
        if out.dtype != torch.float64:
            raise CheckFailure(f"{given.dtype} input gave a {out.dtype} output, expected float64")
        expected = want if given.dtype != torch.bool else module(given.to(torch.float64))[0]
        assert_close(f"{given.dtype} input", out, expected, 0, 0)


def check_initial_state_grad(subject: Subject, variant: str, options: Any) -> None:
    """``initial_state_grad=True``: a backward whose only leaf is the initial state works and
    reaches it.  Off (the default), a feed-forward module fed an input without gradient records
    nothing for autograd (no memory spent)."""
    x = subject.inputs(variant, 4 if variant in LOOPS else None)
    module = subject.build(variant, initial_state_grad=True)
    out, state = module(x)
    total = out.sum() + sum(v.sum() for _, v in tensor_leaves(state) if v.is_floating_point())
    if not total.requires_grad:
        raise CheckFailure("initial_state_grad=True: the outputs do not require grad")
    total.backward()
    with torch.no_grad():
        out_no_grad, _ = module(x)
    assert_close("initial_state_grad=True under torch.no_grad()", out_no_grad, out.detach(), 0, 0)
    if variant not in RECURRENT:  # recurrent modules own weights: their outputs need a gradient
        plain, plain_state = subject.build(variant)(x)
        if plain.requires_grad or any(v.requires_grad for _, v in tensor_leaves(plain_state)):
            raise CheckFailure(
                "initial_state_grad=False with an input that needs no gradient still records "
                "the computation for autograd"
            )


def check_attached_parameters(subject: Subject, variant: str, options: Any) -> None:
    """A tensor of ``p`` that is a ``torch.nn.Parameter`` stays attached: the module lists it
    among its parameters and the backward pass gives it a gradient."""
    probe = subject.build(variant)
    fields = [name for name, value in tensor_items(probe.p) if value.is_floating_point()]
    if not fields:
        return
    field = fields[0]
    value = dict(tensor_items(probe.p))[field]
    parameter = torch.nn.Parameter(value.detach().clone().to(torch.float64))
    p = replace_tensors(probe.p, {field: parameter}, validate=False)
    module = subject.build(variant, p=p)
    if not any(q is parameter for q in module.parameters()):
        raise CheckFailure(f"p.{field} given as a torch.nn.Parameter is not a module parameter")
    x = subject.inputs(variant, 4 if variant in LOOPS else None)
    out, state = module(x)
    total = out.sum() + sum(v.sum() for _, v in tensor_leaves(state) if v.is_floating_point())
    if not total.requires_grad:
        raise CheckFailure(f"p.{field} given as a torch.nn.Parameter gets no gradient")
    total.backward()
    if parameter.grad is None:
        raise CheckFailure(f"p.{field} given as a torch.nn.Parameter gets no gradient")
