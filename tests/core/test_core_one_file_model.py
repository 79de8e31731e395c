"""What a one-file neuron model gets from the core: a default initial state, module classes that
pickle by (model, variant), surrogates resolved once per module, and explained backend routes."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

import attrs
import pytest
import torch
from torch.testing import assert_close

import snncore
from snncore.backends import explain
from snncore.states import default_initial_state


@attrs.frozen
class LeakyParameters:
    tau_inv: torch.Tensor = snncore.tensor_field(50.0, "1/s", "inverse time constant")
    v_rest: torch.Tensor = snncore.tensor_field(0.25, "V", "resting potential")
    v_th: torch.Tensor = snncore.tensor_field(1.0, "V", "threshold")
    method: str = snncore.method_field()
    alpha: torch.Tensor = snncore.tensor_field(10.0, "", "surrogate sharpness")


class LeakyState(NamedTuple):
    z: torch.Tensor
    v: torch.Tensor
    w: torch.Tensor


SEEN: list[Any] = []


def leaky_step(x: torch.Tensor, state: LeakyState, p: LeakyParameters, dt: float) -> Any:
    SEEN.append(p.method)
    v = state.v + dt * p.tau_inv * (p.v_rest - state.v) + x
    z = snncore.spike(v - p.v_th, p.method, p.alpha)
    return z, LeakyState(z, v - z.detach() * v, state.w + z)


def leaky_model(**changes: Any) -> snncore.NeuronModel:
    fields: dict[str, Any] = dict(
        name="leaky1f",
        family="leaky1f",
        summary="a one-file leaky neuron",
        parameters=LeakyParameters,
        feed_forward_step=leaky_step,
        feed_forward_state=LeakyState,
        recurrent_step=leaky_step,
        state=LeakyState,
        initial_values={"v": "v_rest", "w": 0.5},
    )
    return snncore.NeuronModel(**{**fields, **changes})


LEAKY = leaky_model()


@pytest.fixture
def registered(fresh_manager: Any) -> snncore.NeuronModel:
    @snncore.hookimpl
    def register_models(register: Callable[..., None]) -> None:
        register(LEAKY)

    snncore.register_plugin(SimpleNamespace(register_models=register_models), name="snn-leaky")
    return LEAKY


# -- default initial state ------------------------------------------------------------------------


def test_the_default_initial_state_starts_at_zero_a_parameter_or_a_number() -> None:
    p = LeakyParameters(v_rest=torch.tensor([0.1, 0.2, 0.3]))
    state = default_initial_state(
        LeakyState, {"v": "v_rest", "w": 0.5}, p, (2, 3), dtype=torch.float64
    )
    assert state.z.dtype == torch.float64 and state.z.shape == (2, 3)
    assert_close(state.z, torch.zeros(2, 3, dtype=torch.float64))
    assert_close(state.v, torch.tensor([[0.1, 0.2, 0.3]] * 2, dtype=torch.float64))
    assert_close(state.w, torch.full((2, 3), 0.5, dtype=torch.float64))


def test_the_default_initial_state_does_not_carry_the_parameters_gradient() -> None:
    v_rest = torch.tensor(0.3, requires_grad=True)
    state = LEAKY.make_initial_state("layer", LeakyParameters(v_rest=v_rest), (4,))
    assert not state.v.requires_grad
    assert_close(state.v, torch.full((4,), 0.3))


def test_a_model_s_own_initial_state_function_still_wins() -> None:
    def start(p: Any, shape: Any, device: Any = None, dtype: Any = None) -> LeakyState:
        ones = torch.ones(shape, device=device, dtype=dtype)
        return LeakyState(ones, 2 * ones, 3 * ones)

    model = leaky_model(initial_state=start)
    assert_close(
        model.make_initial_state("recurrent", LeakyParameters(), (2,)).w, torch.full((2,), 3.0)
    )
    assert_close(
        model.make_initial_state("layer", LeakyParameters(), (2,)).w, torch.full((2,), 0.5)
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"initial_values": {"u": "v_rest"}}, "initial_values names 'u', which is not a field"),
        ({"initial_values": {"v": "v_leak"}}, "initial_values['v'] = 'v_leak' is not a parameter"),
        ({"initial_values": {"v": [1.0]}}, "must be a parameter name or a number"),
        ({"feed_forward_state": dict, "recurrent_step": None}, "is not a NamedTuple"),
        ({"class_names": {"cells": "X"}}, "class_names for ['cells']"),
    ],
)
def test_a_bad_model_declaration_names_the_problem(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError) as info:
        leaky_model(**changes)
    assert message in str(info.value)


# -- module classes pickle by (model, variant) ----------------------------------------------------


@pytest.mark.parametrize("variant", snncore.VARIANTS)
def test_every_variant_of_a_model_without_class_lines_pickles(
    registered: Any, variant: str
) -> None:
    recurrent = variant.startswith("recurrent")
    module = snncore.create(
        "leaky1f", variant, **({"input_size": 3, "hidden_size": 4} if recurrent else {})
    )
    x = torch.rand(5, 2, 3) if variant in ("layer", "recurrent") else torch.rand(2, 3)
    copy = pickle.loads(pickle.dumps(module))
    assert type(copy) is type(module)
    assert type(module).__name__ == "".join(w.title() for w in f"leaky1f_{variant}".split("_"))
    assert_close(copy(x)[0], module(x)[0])
    assert_close(copy(x)[1].w, module(x)[1].w)


def test_class_names_name_the_generated_classes(fresh_manager: Any) -> None:
    named = leaky_model(name="leaky1g", class_names={"cell": "LeakyCell", "layer": "Leaky"})
    cell, recurrent_cell, layer, _ = snncore.module_classes(named)
    assert (cell.__name__, layer.__name__) == ("LeakyCell", "Leaky")
    assert recurrent_cell.__name__ == "Leaky1GRecurrentCell"
    assert cell.__module__ == __name__  # where its step function lives
    assert snncore.create(named, "layer").__class__ is layer


def test_a_class_of_an_unregistered_model_pickles_by_name_only_if_importable(
    fresh_manager: Any,
) -> None:
    stray = leaky_model(name="stray")
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(snncore.create(stray, "layer"))


# -- surrogates resolved once -----------------------------------------------------------------------


def test_steps_receive_the_resolved_surrogate_and_no_lookup_happens_per_step(
    registered: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = snncore.create("leaky1f", "layer", backend="torch", method="atan")
    lookups = []
    registry = snncore.plugins.get_manager().registry("surrogate")
    original = type(registry).get
    monkeypatch.setattr(
        type(registry), "get", lambda self, name: lookups.append(name) or original(self, name)
    )
    x = torch.rand(20, 2, 3, requires_grad=True)
    layer(x)  # the first call resolves the backend by name, once per device and dtype
    SEEN.clear()
    lookups.clear()
    layer(x)[0].sum().backward()
    assert lookups == []
    assert len(SEEN) == 20 and all(m is snncore.get_surrogate("atan") for m in SEEN)
    assert layer.p.method == "atan"  # the module's record keeps the name (repr, pickling)


def test_an_unknown_surrogate_fails_when_the_module_is_built(registered: Any) -> None:
    with pytest.raises(snncore.UnknownNameError, match="unknown surrogate 'atann'"):
        snncore.create("leaky1f", "layer", method="atann")


@pytest.mark.parametrize("name", ["super", "atan", "triangle"])
def test_spiking_without_gradient_equals_the_autograd_path(name: str) -> None:
    surrogate = snncore.get_surrogate(name)
    x = torch.linspace(-1, 1, 11, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        plain = surrogate(x, 5.0)
    tracked = surrogate(x, 5.0)
    assert plain.grad_fn is None and tracked.grad_fn is not None
    assert torch.equal(plain, tracked)
    tracked.sum().backward()
    assert_close(x.grad, surrogate.derivative(x.detach(), 5.0))


# -- routes -----------------------------------------------------------------------------------------


def test_explain_marks_the_backend_auto_picks_and_gives_every_reason(registered: Any) -> None:
    choices = explain(registered, "layer", torch.device("cpu"), torch.float32)
    by_name = {c.backend: c for c in choices}
    torch_choice = by_name["torch"]
    assert torch_choice.route.name == "step-loop" and "leaky_step" in torch_choice.route.reason
    assert [c.backend for c in choices if c.chosen] == [choices[0].backend]
    assert choices[0].route.priority == max(c.route.priority for c in choices if c.route)
    if "fused" in by_name:  # a one-file model gets a kernel generated from its step
        assert by_name["fused"].route.name == "generated"
        assert by_name["fused"].route.priority > torch_choice.route.priority
        assert by_name["fused"].chosen


def test_snn_info_shows_the_route_of_a_call(registered: Any) -> None:
    from click.testing import CliRunner

    from snncore.cli import cli

    result = CliRunner().invoke(cli, ["info", "leaky1f", "--variant", "recurrent"])
    assert result.exit_code == 0, result.output
    picked = re.search(
        r"route of a recurrent call on cpu / float32: backend='auto' picks (\w+)", result.output
    )
    assert picked and picked.group(1) == ("fused" if "fused" in result.output else "torch")
    assert "W_in·x for all steps" in result.output
    bad = CliRunner().invoke(cli, ["info", "leaky1f", "--dtype", "float33"])
    assert bad.exit_code == 2 and "'float33' is not a torch dtype" in bad.output


def test_a_registered_object_that_is_not_a_backend_fails_its_plugin(fresh_manager: Any) -> None:
    @snncore.hookimpl
    def register_backends(register: Callable[..., None]) -> None:
        register(SimpleNamespace(name="half"))

    record = snncore.register_plugin(
        SimpleNamespace(register_backends=register_backends), name="snn-half"
    )
    assert "half" not in [b.name for b in snncore.list_backends()]
    assert "lacks priority, supports" in record.error
