"""Surrogate gradients: the built-in plugin that registers them, and the spike function.

Forward is always the Heaviside step ``Θ(x) = 1[x > 0]``; backward multiplies the incoming
gradient by a pseudo-derivative ``dΘ/dx ≈ f(x, alpha)`` of sharpness ``alpha``.  A model's
parameters name theirs with ``method`` (default ``"super"``) and ``alpha``.

Built in (``x`` is the distance to threshold, e.g. ``v - v_th``):

==============  ===================================================  =============================
name            backward factor                                      source
==============  ===================================================  =============================
super           1 / (alpha·|x| + 1)²                                 Zenke & Ganguli 2018
heaviside       0                                                    (no gradient)
triangle        alpha · max(0, 1 − |x|)                              Esser et al. 2016
tanh            1 − tanh²(alpha·x)                                   Norse
circ            alpha³ / (alpha² + x²)^(3/2)                         Norse
heavi_erfc      (2/√π) · exp(−(alpha·x)²)                            Norse
logistic        alpha · σ(alpha·x) · (1 − σ(alpha·x))                snnTorch "sigmoid"
atan            alpha / (2·(1 + (π/2·alpha·x)²))                     Fang et al. 2021
==============  ===================================================  =============================

``fast_sigmoid`` is an alias of ``super`` (the name snnTorch users know).  ``super_unscaled``,
``1 / (|x| + 1)²``, is the SuperSpike of the reference library (Norse 1.1.0), which ignores
``alpha``; it computes the gradient with the reference's own arithmetic, so that gradients match
it bit for bit.  :func:`override_surrogate` makes one name stand for another process-wide
(``snncore.compat.norse.reference_superspike(True)`` maps ``super`` to ``super_unscaled``).

Modules resolve their parameters' ``method`` name once, when they are built, and hand their step
functions the :class:`Surrogate` itself in ``p.method``; :func:`spike` then calls it directly.
A name is looked up in the registry only where a step is called outside a module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import torch

from snncore.hookspecs import hookimpl
from snncore.plugins import get_manager

Derivative = Callable[[torch.Tensor, Any], torch.Tensor]
#: ``gradient(grad_output, x, alpha) -> grad_input``: the backward itself, when a surrogate must
#: reproduce another library's arithmetic exactly (default: ``grad_output * derivative(x)``).
Gradient = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


class _HeavisideWithSurrogate(torch.autograd.Function):
    """Θ(x) forward; ``grad · derivative(x, alpha)`` backward.  ``alpha`` gets no gradient."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        alpha: Any,
        derivative: Derivative,
        gradient: Gradient | None = None,
    ) -> torch.Tensor:
        if torch.is_tensor(alpha):
            ctx.save_for_backward(x, alpha)
        else:
            ctx.save_for_backward(x)
            ctx.alpha = alpha
        ctx.derivative, ctx.gradient = derivative, gradient
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(
        ctx: Any, grad_output: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None]:
        if len(ctx.saved_tensors) == 2:
            x, alpha = ctx.saved_tensors
        else:
            (x,), alpha = ctx.saved_tensors, ctx.alpha
        if ctx.gradient is not None:
            return ctx.gradient(grad_output, x, alpha), None, None, None
        return grad_output * ctx.derivative(x, alpha), None, None, None


@attrs.frozen
class Surrogate:
    """A named surrogate gradient.  Calling it spikes: ``surrogate(x, alpha) -> Θ(x)``."""

    name: str
    derivative: Derivative = attrs.field(repr=False)
    formula: str = ""
    summary: str = ""
    #: Optional: the backward itself (see :data:`Gradient`); ``derivative`` must still give the
    #: same factor, for the backends and checks that use it.
    gradient: Gradient | None = attrs.field(default=None, repr=False, kw_only=True)

    def __call__(self, x: torch.Tensor, alpha: Any = 100.0) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            if self.gradient is not None:
                return _HeavisideWithSurrogate.apply(x, alpha, self.derivative, self.gradient)
            return _HeavisideWithSurrogate.apply(x, alpha, self.derivative)
        # No gradient can flow through x: the step alone, without an autograd node (about a
        # third of an eager inference step's overhead).
        return (x > 0).to(x.dtype)


_OVERRIDES: dict[str, str] = {}


def override_surrogate(name: str, replacement: str | None) -> None:
    """From now on, in this process, the name ``name`` resolves to the surrogate registered as
    ``replacement`` (``None`` undoes it).  Modules resolve their ``method`` when they are built,
    so set it before building them.  A process-wide switch, for porting: code written for a
    library whose ``super`` differs from ours keeps its ``method="super"`` and gets that
    library's gradients (:func:`snncore.compat.norse.reference_superspike`)."""
    if replacement is None:
        _OVERRIDES.pop(name, None)
    else:
        get_manager().registry("surrogate").get(replacement)  # an unknown name fails now
        _OVERRIDES[name] = replacement


def resolve_surrogate(method: str | Surrogate) -> Surrogate:
    """The surrogate a parameter record's ``method`` stands for: a registered name (aliases and
    ``PLUGIN:NAME`` included) is looked up; a :class:`Surrogate` is itself."""
    if isinstance(method, Surrogate):
        return method
    if not isinstance(method, str):
        raise TypeError(
            f"method must be a surrogate name or a snncore.Surrogate, got {type(method).__name__}"
        )
    return get_manager().registry("surrogate").get(_OVERRIDES.get(method, method))


def spike(x: torch.Tensor, method: str | Surrogate, alpha: Any) -> torch.Tensor:
    """Θ(x) with the surrogate ``method`` (resolved, or a registered name) in the backward pass."""
    if isinstance(method, Surrogate):  # what modules pass: no lookup per step
        return method(x, alpha)
    return resolve_surrogate(method)(x, alpha)


# The derivatives run in the backward pass of every spike of every step: they work in place on
# their own temporaries to keep the number of full-size tensors (and kernel launches) low.
def _super(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return x.abs().mul_(alpha).add_(1.0).square_().reciprocal_()


def _super_unscaled(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return x.abs().add_(1.0).square_().reciprocal_()


def _super_unscaled_gradient(grad: torch.Tensor, x: torch.Tensor, alpha: Any) -> torch.Tensor:
    # The reference's arithmetic, operation for operation: grad / (|x| + 1)^2.
    return grad / (torch.abs(x) + 1.0).pow(2)


def _heaviside(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return torch.zeros_like(x)


def _triangle(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return x.abs().neg_().add_(1.0).clamp_(min=0.0).mul_(alpha)


def _tanh(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return 1.0 - torch.tanh(alpha * x).square()


def _circ(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return alpha**3 / (alpha**2 + x.square()).pow(1.5)


def _heavi_erfc(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return (2.0 / math.sqrt(math.pi)) * torch.exp(-(alpha * x).square())


def _logistic(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    s = torch.sigmoid(alpha * x)
    return alpha * s * (1.0 - s)


def _atan(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return alpha / (2.0 * (1.0 + (math.pi / 2.0 * alpha * x).square()))


BUILTIN = (
    (Surrogate("super", _super, "1/(alpha*|x|+1)^2", "SuperSpike fast sigmoid"), ("fast_sigmoid",)),
    (
        Surrogate(
            "super_unscaled",
            _super_unscaled,
            "1/(|x|+1)^2",
            "SuperSpike ignoring alpha (the reference library 1.1.0's)",
            gradient=_super_unscaled_gradient,
        ),
        (),
    ),
    (Surrogate("heaviside", _heaviside, "0", "no gradient (exact step)"), ()),
    (Surrogate("triangle", _triangle, "alpha*max(0,1-|x|)", "triangle / piecewise linear"), ()),
    (Surrogate("tanh", _tanh, "1-tanh(alpha*x)^2", "derivative of tanh"), ()),
    (Surrogate("circ", _circ, "alpha^3/(alpha^2+x^2)^(3/2)", "circular"), ()),
    (
        Surrogate("heavi_erfc", _heavi_erfc, "2/sqrt(pi)*exp(-(alpha*x)^2)", "erfc-smoothed step"),
        (),
    ),
    (Surrogate("logistic", _logistic, "alpha*s*(1-s), s=sigmoid(alpha*x)", "logistic sigmoid"), ()),
    (Surrogate("atan", _atan, "alpha/(2*(1+(pi/2*alpha*x)^2))", "arc tangent"), ()),
)


@hookimpl
def register_surrogates(register: Callable[..., None]) -> None:
    for surrogate, aliases in BUILTIN:
        register(surrogate, aliases=aliases)
