"""Surrogate-gradient checks: a surrogate on its own, and a model's spikes going through it.

A surrogate's ``derivative(x, alpha)`` is meant to be the derivative of a smoothed step ``S``.
Where ``S`` is known — the built-in surrogates below, a surrogate object with a
``smoothed_step(x, alpha)`` attribute, or one given to the suite by name — the derivative must
match central finite differences of ``S``.  Every surrogate must also spike with the exact
Heaviside step forward, pass ``derivative`` to the backward pass, return finite non-negative
values of the input's shape and dtype, and leave its input unmodified.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from snncore import surrogates as builtin
from snncore.testing._harness import (
    LOOPS,
    STEPS,
    CheckFailure,
    Subject,
    evolve_path,
    get_path,
    method_paths,
    run,
)

SmoothedStep = Callable[[torch.Tensor, Any], torch.Tensor]


def _triangle_step(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    c = x.clamp(-1.0, 1.0)
    return alpha * (c - c * c.abs() / 2)


#: The smoothed step of each built-in derivative (keyed by the function, so that another
#: plugin's surrogate of the same name is not judged by ours).
BUILTIN_SMOOTHED_STEPS: dict[Callable[..., Any], SmoothedStep] = {
    builtin._super: lambda x, a: x / (1 + a * x.abs()),
    builtin._super_unscaled: lambda x, a: x / (1 + x.abs()),
    builtin._heaviside: lambda x, a: torch.zeros_like(x),
    builtin._triangle: _triangle_step,
    builtin._tanh: lambda x, a: torch.tanh(a * x) / a,
    builtin._circ: lambda x, a: a * x / torch.sqrt(a**2 + x**2),
    builtin._heavi_erfc: lambda x, a: torch.erf(a * x) / a,
    builtin._logistic: lambda x, a: torch.sigmoid(a * x),
    builtin._atan: lambda x, a: torch.atan(math.pi / 2 * a * x) / math.pi,
}


def smoothed_step_of(surrogate: Any, given: Mapping[str, SmoothedStep] | None = None) -> Any:
    """The smoothed step whose derivative ``surrogate`` claims to be, or None if unknown."""
    if given and surrogate.name in given:
        return given[surrogate.name]
    step = getattr(surrogate, "smoothed_step", None)
    if step is not None:
        return step
    return BUILTIN_SMOOTHED_STEPS.get(getattr(surrogate, "derivative", None))


def _grid(alpha: float) -> torch.Tensor:
    """Points around 0 on the scale 1 and the scale 1/alpha, off the kinks at 0 and ±1."""
    base = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64) + 0.0123
    return torch.cat([base, base / max(abs(alpha), 1e-12)])


def check_surrogate(
    surrogate: Any, alpha: float = 100.0, smoothed_steps: Mapping[str, SmoothedStep] | None = None
) -> None:
    """Check one surrogate at sharpness ``alpha`` (see the module docstring)."""
    x = _grid(alpha)
    a = torch.tensor(alpha, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    spikes = surrogate(xr, a)
    if spikes.shape != x.shape or not torch.equal(spikes.detach(), (x > 0).to(x.dtype)):
        raise CheckFailure("the forward pass is not the Heaviside step 1[x > 0]")
    spikes.backward(torch.ones_like(x))
    probe = x.clone()
    derivative = surrogate.derivative(probe, a)
    if not torch.equal(probe, x):
        raise CheckFailure("derivative(x, alpha) modifies x in place")
    if not isinstance(derivative, torch.Tensor) or derivative.shape != x.shape:
        raise CheckFailure("derivative(x, alpha) must return a tensor of x's shape")
    if derivative.dtype != x.dtype:
        raise CheckFailure(f"derivative of a float64 input is {derivative.dtype}")
    if not bool(torch.isfinite(derivative).all()):
        raise CheckFailure(f"derivative(x, alpha={alpha:g}) is not finite everywhere")
    if bool((derivative < 0).any()):
        k = int((derivative < 0).nonzero()[0])
        raise CheckFailure(
            f"derivative(x, alpha={alpha:g}) is negative at x={x[k].item():.4g} "
            f"({derivative[k].item():.4g}); a smoothed step never decreases"
        )
    if xr.grad is None or not torch.allclose(xr.grad, derivative, rtol=1e-12, atol=0):
        raise CheckFailure(
            "the backward pass does not multiply the gradient by derivative(x, alpha)"
        )
    smoothed = smoothed_step_of(surrogate, smoothed_steps)
    if smoothed is None:
        return
    h = 1e-6 * torch.clamp(
        torch.minimum(x.abs(), torch.tensor(1.0 / max(abs(alpha), 1e-12))), min=1e-3
    )
    finite = (smoothed(x + h, a) - smoothed(x - h, a)) / (2 * h)
    tolerance = 1e-5 * float(finite.abs().max()) + 1e-9
    wrong = (derivative - finite).abs() > 1e-4 * finite.abs() + tolerance
    if bool(wrong.any()):
        k = int(wrong.nonzero()[0])
        raise CheckFailure(
            f"derivative(x, alpha={alpha:g}) differs from finite differences of the smoothed step "
            f"at x={x[k].item():.6g}: derivative {derivative[k].item():.6g}, finite difference "
            f"{finite[k].item():.6g}"
        )


def _alpha_near(p: Any, path: str) -> float:
    head = path.rpartition(".")[0]
    try:
        value = get_path(p, f"{head}.alpha" if head else "alpha")
    except AttributeError:
        return 100.0
    return float(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) else float(value)


def check_model_surrogate(subject: Subject, variant: str, options: Any) -> None:
    """The model's surrogate passes :func:`check_surrogate`, and its spikes go through it: the
    output carries input gradient with the model's ``method`` and none with ``"heaviside"``."""
    from snncore.api import get_surrogate

    model = subject.model
    p = model.parameters()
    paths = method_paths(p)
    for path in paths:
        name = get_path(p, path)
        try:
            check_surrogate(get_surrogate(name), _alpha_near(p, path), options.smoothed_steps)
        except CheckFailure as exc:
            raise CheckFailure(f"surrogate {name!r} (p.{path}): {exc}") from exc
    variant = next(
        v for v in ("layer", "recurrent", "cell", "recurrent_cell") if v in model.variants
    )
    heaviside = p
    for path in paths:
        heaviside = evolve_path(heaviside, path, "snncore.surrogates:heaviside")
    grads = {}
    for label, params in (("default", p), ("heaviside", heaviside)):
        module = subject.build(variant, p=params)
        x = subject.inputs(variant, STEPS if variant in LOOPS else None).requires_grad_()
        out, _ = run(module, x)
        if not out.requires_grad:
            raise CheckFailure(
                "the output carries no gradient at all: spike with "
                "snncore.spike(v - v_th, p.method, p.alpha), not a comparison"
            )
        out.sum().backward()
        grads[label] = x.grad
    methods = ", ".join(f"p.{q}={get_path(p, q)!r}" for q in paths)
    if grads["heaviside"] is not None and bool(grads["heaviside"].abs().sum() > 0):
        raise CheckFailure(
            "with method='heaviside' (no surrogate gradient) the output still carries gradient "
            "to the input: spike with snncore.spike(v - v_th, p.method, p.alpha)"
        )
    if grads["default"] is None or not bool(grads["default"].abs().sum() > 0):
        raise CheckFailure(f"with {methods} the spikes carry no gradient to the input")
