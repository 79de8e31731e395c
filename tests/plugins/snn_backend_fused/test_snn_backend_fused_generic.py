"""The generic path: ``backend="fused"`` runs every registered model and variant, third-party
ones included, and agrees with the eager ``torch`` backend.

Every model runs in the generic path's eager mode (``SNN_FUSED_GENERIC=eager``: the step over
``x.unbind(0)``, as the torch backend runs it -- fast to test); two models (a layer and a
recurrent layer) run compiled, which costs a few seconds of ``torch.compile`` each.  The default
``auto`` mode compiles a model once it has spent a second in the eager loop.  On the CPU, layers
whose step can be traced take their generated kernels in every mode; the generic path's layer
tests use a third-party model whose step cannot be traced (it normalises its input by the
largest value of the row: a reduction), so that it takes the generic path.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, NamedTuple

import attrs
import pytest
import torch
import torch.utils._pytree as pytree

import snncore
from snncore import tensor_field

# Input scale per model so that the comparison covers spikes (Izhikevich needs a strong drive).
SCALE = {"izhikevich": 30.0, "coba_lif": 3.0, "normalised-fused-test": 60.0}


@pytest.fixture
def generic_mode() -> Iterator[Callable[[str], None]]:
    from snn_backend_fused import generic

    yield generic.set_generic_mode
    generic.set_generic_mode(None)


@pytest.fixture
def untraceable(fresh_manager: Any) -> str:
    """A third-party model whose steps cannot be traced (registered for the test): its name.
    Its layer and its recurrent layer take the generic path on the CPU."""
    model = snncore.NeuronModel(
        name="normalised-fused-test",
        family="test",
        summary="a third party's neuron that normalises its input per row",
        parameters=_LeakyParameters,
        feed_forward_step=_normalised_step,
        feed_forward_state=_LeakyState,
        initial_feed_forward_state=_leaky_initial,
        recurrent_step=_normalised_recurrent_step,
        state=_RecurrentState,
    )

    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(model)

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-norm")
    fused = snncore.get_backend("fused")
    assert fused.route(model, "layer", "cpu", torch.float64).name == "generic"
    return model.name


def _pair(name: str, variant: str) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {}
    if variant == "recurrent":
        kwargs = {"input_size": 3, "hidden_size": 5}
    torch.manual_seed(0)
    fused = snncore.create(name, variant=variant, backend="fused", **kwargs).double()
    torch.manual_seed(0)
    eager = snncore.create(name, variant=variant, backend="torch", **kwargs).double()
    return fused, eager


def _run(layer: Any, x: torch.Tensor, weights: torch.Tensor) -> tuple[Any, ...]:
    layer.zero_grad()
    x = x.detach().requires_grad_(True)
    out, state = layer(x)
    leaves = [leaf for leaf in pytree.tree_leaves(state) if torch.is_tensor(leaf)]
    loss = (out * weights).sum() + sum(leaf.sum() for leaf in leaves if leaf.is_floating_point())
    loss.backward()
    grads = [x.grad] + [p.grad for p in layer.parameters() if p.grad is not None]
    return out.detach(), [leaf.detach() for leaf in leaves], grads


def _compare(fused: Any, eager: Any, x: torch.Tensor, tolerance: float) -> None:
    weights = torch.randn((*x.shape[:-1], fused(x)[0].shape[-1]), dtype=x.dtype)
    got, expected = _run(fused, x, weights), _run(eager, x, weights)
    for a, b in zip(
        [got[0], *got[1], *got[2]], [expected[0], *expected[1], *expected[2]], strict=True
    ):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)


def _cases() -> list[tuple[str, str]]:
    cases = []
    for model in snncore.list_models():
        cases += [(model.name, v) for v in ("layer", "recurrent") if v in model.variants]
    return cases


def test_every_registered_model_is_listed() -> None:
    names = {name for name, _ in _cases()}
    assert {"lif", "li", "lsnn", "izhikevich", "coba_lif", "lif_mc", "lif_correlation"} <= names


@pytest.mark.parametrize(("name", "variant"), _cases())
def test_generic_path_agrees_with_torch(
    library: Any, generic_mode: Callable[[str], None], name: str, variant: str
) -> None:
    generic_mode("eager")
    fused, eager = _pair(name, variant)
    assert snncore.get_backend("fused").supports(fused.model, variant, "cpu", torch.float64) is None
    generator = torch.Generator().manual_seed(1)
    width = 3 if variant == "recurrent" else 4
    x = SCALE.get(name, 2.0) * torch.rand(40, 2, width, generator=generator, dtype=torch.float64)
    _compare(fused, eager, x, 1e-12)


@pytest.mark.parametrize(
    ("name", "variant"),
    [("normalised-fused-test", "layer"), ("normalised-fused-test", "recurrent")],
)
def test_compiled_generic_path_agrees_with_torch(
    library: Any, generic_mode: Callable[[str], None], untraceable: str, name: str, variant: str
) -> None:
    from snn_backend_fused import generic

    generic_mode("compile")
    fused, eager = _pair(name, variant)
    generator = torch.Generator().manual_seed(2)
    width = 3 if variant == "recurrent" else 4
    x = SCALE.get(name, 2.0) * torch.rand(30, 2, width, generator=generator, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", generic.GenericPathWarning)
        _compare(fused, eager, x, 1e-10)
    failed = [w for w in caught if issubclass(w.category, generic.GenericPathWarning)]
    if failed:  # e.g. after in-process pip use, setuptools' distutils shim breaks inductor
        pytest.skip(f"torch.compile cannot run in this process: {failed[0].message}")
    assert (id(fused.model), variant) in generic._compiled  # it did take the compiled path


def test_record_states_through_the_generic_path(
    library: Any, generic_mode: Callable[[str], None]
) -> None:
    generic_mode("eager")
    x = 30.0 * torch.rand(25, 2, 3, dtype=torch.float64)
    outs = [
        snncore.create("izhikevich", backend=b, record_states=True).double()(x)
        for b in ("fused", "torch")
    ]
    (out, states), (out_ref, states_ref) = outs
    assert states.v.shape == (25, 2, 3)
    assert torch.equal(out, out_ref) and torch.equal(states.v, states_ref.v)


def test_failing_compilation_falls_back_to_eager_with_one_warning(
    library: Any,
    generic_mode: Callable[[str], None],
    untraceable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from snn_backend_fused import generic

    def broken_compile(fn: Any, **kwargs: Any) -> Any:
        def run(*args: Any) -> Any:
            raise RuntimeError("simulated inductor failure\nwith a second line")

        return run

    monkeypatch.setattr(generic, "_compiled", {})
    monkeypatch.setattr(generic, "_failed", {})
    monkeypatch.setattr(torch, "compile", broken_compile)
    generic_mode("compile")
    fused, eager = _pair(untraceable, "layer")
    x = 60.0 * torch.rand(20, 2, 3, dtype=torch.float64)
    with pytest.warns(generic.GenericPathWarning, match="simulated inductor failure") as caught:
        out, _ = fused(x)
        fused(x)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert torch.equal(out, eager(x)[0])
    assert generic.compile_failures() == [("layer", "RuntimeError: simulated inductor failure")]


def test_auto_mode_compiles_once_the_eager_loop_has_cost_enough(
    library: Any,
    generic_mode: Callable[[str], None],
    untraceable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from snn_backend_fused import generic

    compiled: list[Any] = []

    def counting_compile(fn: Any, **kwargs: Any) -> Any:  # stands in for torch.compile
        compiled.append(fn)
        return fn

    monkeypatch.setattr(generic, "_compiled", {})
    monkeypatch.setattr(generic, "_failed", {})
    monkeypatch.setattr(generic, "_eager_seconds", {})
    monkeypatch.setattr(torch, "compile", counting_compile)
    generic_mode("auto")
    layer = snncore.create(untraceable, backend="fused")
    x = 60.0 * torch.rand(10, 2, 3)
    layer(x)
    layer(x)
    assert compiled == []  # milliseconds of eager work: not worth compiling
    key = (id(layer.model), "layer")
    assert 0 < generic._eager_seconds[key] < generic.COMPILE_AFTER_SECONDS
    generic._eager_seconds[key] = generic.COMPILE_AFTER_SECONDS  # as if it had run a while
    layer(x)
    assert compiled == [layer.model.feed_forward_step] and key in generic._compiled
    layer(x)
    assert len(compiled) == 1  # compiled once, then reused


# -- a third-party model, registered at run time ----------------------------------------------


@attrs.frozen
class _LeakyParameters:
    tau_inv: torch.Tensor = tensor_field(50.0, "1/s")
    v_th: torch.Tensor = tensor_field(1.0, "V")
    method: str = "super"
    alpha: torch.Tensor = tensor_field(100.0)


class _LeakyState(NamedTuple):
    v: torch.Tensor


def _leaky_step(x: torch.Tensor, state: _LeakyState, p: Any, dt: float) -> Any:
    v = state.v + dt * p.tau_inv * (x - state.v)
    z = snncore.spike(v - p.v_th, p.method, p.alpha)
    return z, _LeakyState(v * (1 - z))


def _leaky_initial(p: Any, shape: Any, device: Any = None, dtype: Any = None) -> _LeakyState:
    return _LeakyState(torch.zeros(shape, device=device, dtype=dtype))


def _normalised_step(x: torch.Tensor, state: _LeakyState, p: Any, dt: float) -> Any:
    """The leaky neuron on its input scaled by the row's largest magnitude (plus one)."""
    return _leaky_step(4.0 * x / (1.0 + x.abs().amax(-1, keepdim=True)), state, p, dt)


class _RecurrentState(NamedTuple):
    z: torch.Tensor
    v: torch.Tensor


def _normalised_recurrent_step(x: torch.Tensor, state: _RecurrentState, p: Any, dt: float) -> Any:
    z, leaky = _normalised_step(x, _LeakyState(state.v), p, dt)
    return z, _RecurrentState(z, leaky.v)


def test_a_third_party_model_runs_through_a_generated_kernel(
    library: Any, generic_mode: Callable[[str], None], fresh_manager: Any
) -> None:
    model = snncore.NeuronModel(
        name="leaky-fused-test",
        family="test",
        summary="a third party's neuron",
        parameters=_LeakyParameters,
        feed_forward_step=_leaky_step,
        feed_forward_state=_LeakyState,
        initial_feed_forward_state=_leaky_initial,
    )

    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(model)

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-third")
    fused_backend = snncore.get_backend("fused")
    assert fused_backend.route(model, "layer").name == "generated"
    assert fused_backend.route(model, "layer", "cpu", torch.float32).priority > 0  # auto: fused
    generic_mode("eager")
    fused, eager = _pair("leaky-fused-test", "layer")
    x = 60.0 * torch.rand(30, 2, 4, dtype=torch.float64)
    _compare(fused, eager, x, 1e-12)
    assert float(eager(x)[0].sum()) > 0


def test_an_untraceable_third_party_model_runs_on_the_generic_path(
    library: Any, generic_mode: Callable[[str], None], untraceable: str
) -> None:
    model = snncore.get_model(untraceable)
    fused_backend = snncore.get_backend("fused")
    assert fused_backend.route(model, "layer", "cpu", torch.float32).priority < 0  # auto: torch
    generic_mode("eager")
    fused, eager = _pair(untraceable, "layer")
    x = 60.0 * torch.rand(30, 2, 4, dtype=torch.float64)
    _compare(fused, eager, x, 1e-12)
    assert float(eager(x)[0].sum()) > 0
    auto = snncore.create(untraceable)
    auto(x.float())
    assert auto._backend_for(x.float()).name == "torch"
