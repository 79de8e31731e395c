"""Checks of how a model runs: long runs stay finite, every backend (and every alternative path
of the eager one) agrees, ``torch.compile`` of the layer agrees, and every preset runs."""

from __future__ import annotations

import os
import shutil
from typing import Any

import torch

from snncore.testing._harness import (
    LOOPS,
    STEPS,
    CheckFailure,
    CheckSkipped,
    Subject,
    assert_close,
    assert_states_close,
    check_finite,
    run,
    tensor_leaves,
)

#: Drives of the long run, one per batch row, as multiples of the model's calibrated drive.
LONG_DRIVES = (0.0, 1.0, -1.0, 10.0, -10.0, 100.0, -100.0)


def check_long_run(subject: Subject, variant: str, options: Any) -> None:
    """No inf or NaN in the outputs or the states over a long float32 run, for drives from 0 to
    ±100 times the calibrated drive, and for noise."""
    steps = options.long_steps
    module = subject.build(variant, dtype=torch.float32, record_states=True)
    base = subject.inputs(variant, steps, batch=len(LONG_DRIVES) + 1, dtype=torch.float32)
    c = subject.drive(variant)
    gen = torch.Generator().manual_seed(11)
    rows = [base[:, k] * m for k, m in enumerate(LONG_DRIVES)]
    rows.append(10.0 * c * torch.randn(base[:, 0].shape, generator=gen))
    x = torch.stack(rows, dim=1)
    labels = [f"{m:g} x drive {c:g}" for m in LONG_DRIVES] + [f"noise of std {10 * c:g}"]
    with torch.no_grad():
        out, states = module(x)
    for name, value in [
        ("output", out),
        *((f"state field {n!r}", t) for n, t in tensor_leaves(states)),
    ]:
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            t, b = (int(i) for i in bad.nonzero()[0][:2])
            kind = "NaN" if bool(torch.isnan(value[bad]).any()) else "inf"
            raise CheckFailure(
                f"{name} is not finite ({kind}) from step {t} of {steps} on, under input "
                f"{labels[b]} (batch row {b})"
            )


# -- backends ---------------------------------------------------------------------------------
def alternative_paths(model: Any, variant: str) -> list[str]:
    """What the backends check compares with the eager loop of the step function."""
    from snncore.backends import backends_supporting

    paths = [
        f"backend {b.name!r}" for b in backends_supporting(model, variant) if b.name != "torch"
    ]
    if variant == "layer" and model.feed_forward_sequence is not None:
        paths.append("feed_forward_sequence")
    if variant in model.adjoint:
        paths.append("adjoint=True")
    return paths


def check_backends(subject: Subject, variant: str, options: Any) -> None:
    """Every other backend that claims the model agrees with the eager ``torch`` backend: the
    outputs, final state and input gradient of a run from ``state=None``, and a run continuing
    from a given state.  A model's ``feed_forward_sequence`` agrees with looping its step, and
    ``adjoint=True`` gives the same forward pass."""
    from snncore.backends import backends_supporting

    model = subject.model
    for backend in backends_supporting(model, variant):
        if backend.name == "torch":
            continue
        dtype = next(
            (
                d
                for d in (torch.float64, torch.float32)
                if backend.supports(model, variant, torch.device("cpu"), d) is None
            ),
            None,
        )
        if dtype is not None:
            _compare_backend(subject, variant, backend.name, dtype)
    x = subject.inputs(variant, STEPS)
    reference = subject.build(variant, backend="torch", record_states=True)  # the plain loop
    ref = _forward_backward(reference, x)
    if variant == "layer" and model.feed_forward_sequence is not None:
        fast = subject.build(variant, backend="torch")  # uses the sequence where it accepts
        _compare(
            "feed_forward_sequence and the step loop", _forward_backward(fast, x), ref, 1e-9, 1e-12
        )
    if variant in model.adjoint:
        adjoint = subject.build(variant, adjoint=True)
        with torch.no_grad():
            out, state = adjoint(x)
        assert_close("outputs of adjoint=True and the step loop", out, ref[0])
        _compare_final("final states of adjoint=True and the step loop", state, ref[1])


def _compare_backend(subject: Subject, variant: str, name: str, dtype: torch.dtype) -> None:
    rtol, atol = (1e-9, 1e-12) if dtype == torch.float64 else (1e-5, 1e-6)
    what = f"backend {name!r} ({dtype}) and backend 'torch'"
    x = subject.inputs(variant, STEPS, dtype=dtype)
    reference = subject.build(variant, dtype=dtype, backend="torch", record_states=True)
    other = subject.build(variant, dtype=dtype, backend=name)
    _compare(what, _forward_backward(other, x), _forward_backward(reference, x), rtol, atol)
    with torch.no_grad():
        _, states = reference(x[:3])
        middle = _map(states, lambda t: t[-1])
        expected_out, expected_states = reference(x[3:], middle)
        out, state = other(x[3:], middle)
    assert_close(f"outputs of {what}, continuing from a given state", out, expected_out, rtol, atol)
    _compare_final(
        f"final states of {what}, continuing from a given state",
        state,
        _map(expected_states, lambda t: t[-1]),
        rtol,
        atol,
    )


def _forward_backward(module: Any, x: torch.Tensor) -> tuple[Any, Any, Any]:
    x = x.detach().clone().requires_grad_()
    out, state = module(x)
    final = _final(state, module)
    gen = torch.Generator().manual_seed(5)
    (out * torch.rand(out.shape, generator=gen, dtype=out.dtype)).sum().backward()
    return out.detach(), final, x.grad


def _final(state: Any, module: Any) -> Any:
    """The final state (the last recorded one when the module records states)."""
    if not getattr(module, "record_states", False):
        return state
    return _map(state, lambda t: t[-1])


def _map(state: Any, fn: Any) -> Any:
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_map(v, fn) for v in state))
    return fn(state) if isinstance(state, torch.Tensor) else state


def _compare(what: str, got: Any, expected: Any, rtol: float, atol: float) -> None:
    assert_close(f"outputs of {what}", got[0], expected[0], rtol, atol)
    _compare_final(f"final states of {what}", got[1], expected[1], rtol, atol)
    assert_close(
        f"input gradients of {what}", got[2], expected[2], max(rtol, 1e-7), max(atol, 1e-9)
    )


def _compare_final(
    what: str, got: Any, expected: Any, rtol: float = 1e-9, atol: float = 1e-12
) -> None:
    assert_states_close(
        what, _map(got, torch.Tensor.detach), _map(expected, torch.Tensor.detach), rtol, atol
    )


# -- torch.compile ----------------------------------------------------------------------------
def compile_unavailable(backend: str) -> str | None:
    """Why ``torch.compile(backend=...)`` cannot run here, or None."""
    try:
        import torch._dynamo
    except Exception as exc:  # pragma: no cover - depends on the platform
        return f"torch._dynamo cannot be imported ({exc})"
    if hasattr(torch._dynamo, "is_dynamo_supported") and not torch._dynamo.is_dynamo_supported():
        return "torch.compile is not supported on this platform / Python version"
    if backend == "inductor":
        compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
        if not any(c and shutil.which(c) for c in compilers):
            return (
                "the inductor backend needs a C++ compiler on CPU (g++, c++ or clang++); none found"
            )
    return None


def check_compile(subject: Subject, variant: str, options: Any) -> None:
    """``torch.compile`` of the layer runs, forward and backward, and agrees with eager."""
    backend = options.compile_backend
    reason = compile_unavailable(backend)
    if reason:
        raise CheckSkipped(reason)
    import torch._dynamo

    module = subject.build(variant)
    x = subject.inputs(variant, 3)  # short: dynamo unrolls the time loop
    expected = _forward_backward(module, x)
    torch._dynamo.reset()  # a fresh cache: the layers of all models share one forward()
    try:
        compiled = torch.compile(module, backend=backend)
        try:
            got = _forward_backward(compiled, x)
        except Exception as exc:
            raise CheckFailure(
                f"torch.compile(layer, backend={backend!r}) failed: {type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            ) from exc
    finally:
        torch._dynamo.reset()
    exact = backend in ("eager", "aot_eager")
    rtol, atol = (1e-12, 1e-14) if exact else (1e-6, 1e-9)
    _compare(f"torch.compile(backend={backend!r}) and eager", got, expected, rtol, atol)


# -- presets ----------------------------------------------------------------------------------
def check_presets(subject: Subject, variant: str, options: Any) -> None:
    """Every preset builds and runs, silent and driven, with finite outputs and states."""
    model = subject.model
    variant = next(
        v for v in ("layer", "recurrent", "cell", "recurrent_cell") if v in model.variants
    )
    for name in model.presets:
        module = subject.build(variant, preset=name, dtype=torch.float32)
        for scale in (0.0, subject.drive(variant)):
            x = subject.inputs(
                variant, 20 if variant in LOOPS else None, scale=scale, dtype=torch.float32
            )
            out, state = run(module, x)
            check_finite(f"preset {name!r}, input scale {scale:g}: output", out)
            check_finite(f"preset {name!r}, input scale {scale:g}", state)
        if not tensor_leaves(state):
            raise CheckFailure(f"preset {name!r}: the state holds no tensors")
