"""Surrogate gradients: Heaviside forward, the MODELS.md pseudo-derivatives in backward, and
third-party surrogates registered by plugins."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import snncore


def _sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u))


# The backward factor of each surrogate, from the table in MODELS.md, in plain Python floats.
FORMULAS: dict[str, Callable[[float, float], float]] = {
    "super": lambda x, a: 1.0 / (a * abs(x) + 1.0) ** 2,
    "fast_sigmoid": lambda x, a: 1.0 / (a * abs(x) + 1.0) ** 2,
    "super_unscaled": lambda x, a: 1.0 / (abs(x) + 1.0) ** 2,  # the reference 1.1.0's super
    "heaviside": lambda x, a: 0.0,
    "triangle": lambda x, a: a * max(0.0, 1.0 - abs(x)),
    "tanh": lambda x, a: 1.0 - math.tanh(a * x) ** 2,
    "circ": lambda x, a: a**3 / (a**2 + x**2) ** 1.5,
    "heavi_erfc": lambda x, a: 2.0 / math.sqrt(math.pi) * math.exp(-((a * x) ** 2)),
    "logistic": lambda x, a: a * _sigmoid(a * x) * (1.0 - _sigmoid(a * x)),
    "atan": lambda x, a: a / (2.0 * (1.0 + (math.pi / 2.0 * a * x) ** 2)),
}
BUILTIN_NAMES = sorted(set(FORMULAS) - {"fast_sigmoid"})
XS = [-2.0, -0.7, -0.05, -1e-3, 0.0, 2e-3, 0.04, 0.3, 0.99, 1.0, 1.6]
ALPHAS = [0.5, 7.0]


def _x() -> torch.Tensor:
    return torch.tensor(XS, dtype=torch.float64, requires_grad=True)


def _upstream() -> torch.Tensor:
    return torch.linspace(-1.5, 2.5, len(XS), dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_is_heaviside(name: str, dtype: torch.dtype) -> None:
    x = torch.tensor([-3.0, -1e-6, -0.0, 0.0, 1e-6, 0.5, 4.0], dtype=dtype)
    out = snncore.get_surrogate(name)(x, 3.0)
    assert out.dtype == dtype
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("alpha_kind", ["float", "tensor"])
def test_backward_is_upstream_times_the_table_formula(
    name: str, alpha: float, alpha_kind: str
) -> None:
    x, g = _x(), _upstream()
    a: Any = alpha if alpha_kind == "float" else torch.tensor(alpha, dtype=torch.float64)
    snncore.get_surrogate(name)(x, a).backward(g)
    expected = g * torch.tensor([FORMULAS[name](v, alpha) for v in XS], dtype=torch.float64)
    assert x.grad is not None
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_backward_with_per_element_alpha(name: str) -> None:
    x, g = _x(), _upstream()
    alphas = [0.5 + 0.75 * k for k in range(len(XS))]
    a = torch.tensor(alphas, dtype=torch.float64, requires_grad=True)
    snncore.get_surrogate(name)(x, a).backward(g)
    expected = g * torch.tensor(
        [FORMULAS[name](v, al) for v, al in zip(XS, alphas, strict=True)], dtype=torch.float64
    )
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=1e-15)
    assert a.grad is None  # alpha is a hyper-parameter: no gradient


def _finite_difference(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = 1e-6
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_logistic_is_the_derivative_of_the_logistic_function(alpha: float) -> None:
    x = _x()
    snncore.get_surrogate("logistic")(x, alpha).sum().backward()
    numeric = _finite_difference(lambda u: torch.sigmoid(alpha * u), x.detach())
    torch.testing.assert_close(x.grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_tanh_is_the_derivative_of_scaled_tanh(alpha: float) -> None:
    """The table's factor 1 − tanh²(alpha·x) (the reference's) is d/dx of tanh(alpha·x)/alpha."""
    x = _x()
    snncore.get_surrogate("tanh")(x, alpha).sum().backward()
    numeric = _finite_difference(lambda u: torch.tanh(alpha * u) / alpha, x.detach())
    torch.testing.assert_close(x.grad, numeric, rtol=1e-6, atol=1e-8)


def test_default_alpha_is_used_when_omitted() -> None:
    x = torch.tensor([0.01], dtype=torch.float64, requires_grad=True)
    snncore.get_surrogate("super")(x).backward()
    assert x.grad is not None
    assert x.grad.item() == pytest.approx(1.0 / (100.0 * 0.01 + 1.0) ** 2, rel=1e-12)


def test_spike_uses_the_named_surrogate() -> None:
    x1, x2 = _x(), _x()
    snncore.spike(x1, "atan", 2.0).sum().backward()
    snncore.get_surrogate("atan")(x2, 2.0).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=0)
    assert not torch.equal(x1.grad, torch.zeros_like(x1))


def test_list_surrogates_has_every_builtin(fresh_manager: Any) -> None:
    names = {s.name for s in snncore.list_surrogates()}
    assert set(BUILTIN_NAMES) <= names
    assert "fast_sigmoid" not in names  # an alias, listed under its surrogate


def test_fast_sigmoid_is_an_alias_of_super(fresh_manager: Any) -> None:
    assert snncore.get_surrogate("fast_sigmoid") is snncore.get_surrogate("super")
    assert snncore.get_surrogate("snncore.surrogates:fast_sigmoid") is snncore.get_surrogate(
        "super"
    )


def test_unknown_surrogate_suggests_close_names(fresh_manager: Any) -> None:
    with pytest.raises(snncore.UnknownNameError, match="'super'"):
        snncore.get_surrogate("supper")


# -- third-party surrogates -----------------------------------------------------------------------


def _mine(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return 2.0 + x  # any function of x will do: the test checks where it is evaluated


@pytest.fixture
def mine(fresh_manager: Any) -> snncore.Surrogate:
    surrogate = snncore.Surrogate("mine", _mine, "2+x", "a test surrogate")

    @snncore.hookimpl
    def register_surrogates(register: Callable[..., None]) -> None:
        register(surrogate, aliases=("mine_too",))

    snncore.register_plugin(
        SimpleNamespace(register_surrogates=register_surrogates), name="snn-mine"
    )
    return surrogate


def test_third_party_surrogate_is_listed_and_resolves(mine: snncore.Surrogate) -> None:
    assert snncore.get_surrogate("mine") is mine
    assert snncore.get_surrogate("mine_too") is mine
    assert "mine" in {s.name for s in snncore.list_surrogates()}


def test_third_party_surrogate_drives_a_lif_cell_backward(mine: snncore.Surrogate) -> None:
    from snn_lif import LIFParameters

    def input_gradient(method: str) -> float:
        cell = snncore.create("lif", variant="cell", p=LIFParameters(method=method)).double()
        x = torch.tensor([[3.0]], dtype=torch.float64, requires_grad=True)
        z, _ = cell(x)
        z.sum().backward()
        assert x.grad is not None
        return x.grad.item()

    # one step from rest: v1 = dt·tau_mem_inv·x = 0.1·x, so dz/dx = 0.1·derivative(v1 − v_th)
    v1_minus_th = 0.1 * 3.0 - 1.0
    assert input_gradient("mine") == pytest.approx(0.1 * (2.0 + v1_minus_th), rel=1e-12)
    assert input_gradient("mine_too") == pytest.approx(0.1 * (2.0 + v1_minus_th), rel=1e-12)
    # and the built-in default gives something else
    assert input_gradient("super") == pytest.approx(
        0.1 / (100.0 * abs(v1_minus_th) + 1.0) ** 2, rel=1e-12
    )


def test_third_party_surrogate_drives_a_lif_layer_like_the_cell_loop(
    mine: snncore.Surrogate,
) -> None:
    """A layer (whatever path its backend takes) back-propagates through the same registered
    derivative as the one-step cell looped by hand."""
    generator = torch.Generator().manual_seed(0)
    x = 6.0 * torch.rand(25, 2, 3, generator=generator, dtype=torch.float64)

    def gradients(method: str) -> tuple[torch.Tensor, torch.Tensor]:
        layer_x = x.clone().requires_grad_(True)
        out, _ = snncore.create("lif", method=method).double()(layer_x)
        out.sum().backward()
        cell = snncore.create("lif", variant="cell", method=method).double()
        cell_x = x.clone().requires_grad_(True)
        state, total = None, torch.zeros((), dtype=torch.float64)
        for x_t in cell_x.unbind(0):
            z, state = cell(x_t, state)
            total = total + z.sum()
        total.backward()
        assert layer_x.grad is not None and cell_x.grad is not None
        return layer_x.grad, cell_x.grad

    layer_grad, cell_grad = gradients("mine")
    torch.testing.assert_close(layer_grad, cell_grad, rtol=1e-10, atol=1e-12)
    super_grad, _ = gradients("super")
    assert not torch.allclose(layer_grad, super_grad)


def test_unknown_method_fails_when_the_module_is_built(fresh_manager: Any) -> None:
    from snn_lif import LIFParameters

    with pytest.raises(snncore.UnknownNameError, match="mine"):
        snncore.create("lif", variant="cell", p=LIFParameters(method="mine"))


def test_third_party_surrogate_reusing_a_builtin_name_conflicts(fresh_manager: Any) -> None:
    @snncore.hookimpl
    def register_surrogates(register: Callable[..., None]) -> None:
        register(snncore.Surrogate("super", _mine))

    snncore.register_plugin(
        SimpleNamespace(register_surrogates=register_surrogates), name="snn-rival"
    )
    with pytest.raises(snncore.NameConflictError, match="snn-rival"):
        snncore.get_surrogate("super")
    assert snncore.get_surrogate("snn-rival:super").derivative is _mine
    assert snncore.get_surrogate("snncore.surrogates:super").derivative is not _mine
