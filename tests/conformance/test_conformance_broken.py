"""Deliberately broken models make the conformance suite fail, with a message naming the model,
the variant and the check; a correct model built the same way passes every check.

Each broken model differs from ``GOOD`` (a leaky integrate-and-fire neuron without synapse) in
one place.  The cases are run directly (``Case.run``), and once through pytest in a subprocess,
enabled by the one line ``pytest_plugins = ["snncore.testing"]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import Any, NamedTuple

import attrs
import pytest
import torch

import snncore
from snncore.testing import (
    CHECKS,
    Case,
    ConformanceError,
    Options,
    SurrogateCase,
    cases,
    check_model,
    check_surrogate,
)
from snncore.testing._harness import CheckFailure

OPTIONS = Options(compile="off")


@attrs.frozen
class Params:
    tau_mem_inv: torch.Tensor = snncore.tensor_field(100.0, "1/s", "inverse membrane time constant")
    v_th: torch.Tensor = snncore.tensor_field(1.0, "V", "threshold")
    method: str = snncore.method_field()
    alpha: torch.Tensor = snncore.tensor_field(100.0, "", "surrogate sharpness")


class State(NamedTuple):
    v: torch.Tensor


class RecurrentState(NamedTuple):
    z: torch.Tensor
    v: torch.Tensor


def good_step(x: Any, s: State, p: Params, dt: float) -> tuple[Any, State]:
    v = s.v + dt * p.tau_mem_inv * (x - s.v)
    z = snncore.spike(v - p.v_th, p.method, p.alpha)
    return z, State((1 - z) * v)


def good_recurrent_step(x: Any, s: RecurrentState, p: Params, dt: float) -> Any:
    z, new = good_step(x, State(s.v), p, dt)
    return z, RecurrentState(z, new.v)


def initial(p: Params, shape: Any, device: Any = None, dtype: Any = None) -> State:
    return State(torch.zeros(shape, device=device, dtype=dtype))


def recurrent_initial(p: Params, shape: Any, device: Any = None, dtype: Any = None) -> Any:
    zeros = torch.zeros(shape, device=device, dtype=dtype)
    return RecurrentState(zeros, zeros)


def make(name: str, **changes: Any) -> snncore.NeuronModel:
    """The good model with ``changes``; its module classes exported here so that they pickle."""
    fields: dict[str, Any] = {
        "parameters": Params,
        "feed_forward_step": good_step,
        "feed_forward_state": State,
        "initial_feed_forward_state": initial,
        "recurrent_step": good_recurrent_step,
        "state": RecurrentState,
        "initial_state": recurrent_initial,
    }
    fields.update(changes)
    model = snncore.NeuronModel(name=name, family="broken", summary=name, **fields)
    for variant in model.variants:
        globals()[f"{name}_{variant}"] = snncore.module_class(
            model, variant, f"{name}_{variant}", __name__
        )
    return model


GOOD = make("good")


# -- the three of the acceptance criteria -----------------------------------------------------
def wrong_shape_step(x: Any, s: State, p: Params, dt: float) -> Any:
    z, new = good_step(x, s, p, dt)
    return z, State(new.v.mean(-1, keepdim=True))  # one voltage per batch row


WRONG_SHAPE = make("wrong_shape", feed_forward_step=wrong_shape_step)


def unstable_step(x: Any, s: State, p: Params, dt: float) -> Any:
    """v grows by 1.1 per step (the leak has the wrong sign) and is never reset: finite for
    hundreds of steps, inf in float32 after ~900, then NaN."""
    v = s.v + dt * p.tau_mem_inv * (x + s.v)
    return snncore.spike(v - p.v_th, p.method, p.alpha), State(v)


UNSTABLE = make("unstable", feed_forward_step=unstable_step)


def doubled_super(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return 2.0 / (alpha * x.abs() + 1.0) ** 2  # twice the derivative of x / (1 + alpha|x|)


def negative_super(x: torch.Tensor, alpha: Any) -> torch.Tensor:
    return -1.0 / (alpha * x.abs() + 1.0) ** 2


DOUBLED = snncore.Surrogate("doubled_super", doubled_super)
NEGATIVE = snncore.Surrogate("negative_super", negative_super)
#: The smoothed step ``doubled_super`` claims to differentiate (that of SuperSpike).
SMOOTHED = {"doubled_super": lambda x, alpha: x / (1 + alpha * x.abs())}


@attrs.frozen
class DoubledParams(Params):
    method: str = snncore.method_field("doubled_super")


@attrs.frozen
class NegativeParams(Params):
    method: str = snncore.method_field("negative_super")


BAD_SURROGATE = make("bad_surrogate", parameters=DoubledParams)
NEGATIVE_SURROGATE = make("negative_surrogate", parameters=NegativeParams)


class BrokenSurrogates:
    @staticmethod
    @snncore.hookimpl
    def register_surrogates(register: Any) -> None:
        register(DOUBLED)
        register(NEGATIVE)


@pytest.fixture(autouse=True)
def only_the_torch_backend(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Other installed backends (which claim every model) disabled: these tests are about the
    checks, and stay fast and independent of what else is installed."""
    from snncore.plugins import reset_manager

    backends = reset_manager().registry("backend").entries()
    others = {e.provider.plugin for e in backends if e.name != "torch"}
    monkeypatch.setenv("SNNCORE_DISABLE_PLUGINS", ",".join(sorted(others)))
    reset_manager()
    yield
    monkeypatch.undo()
    reset_manager()


@pytest.fixture
def broken_surrogates(fresh_manager: Any) -> None:
    snncore.register_plugin(BrokenSurrogates, name="broken-surrogates")


def run(model: snncore.NeuronModel, variant: str | None, check: str, **options: Any) -> None:
    Case(model, variant, CHECKS[check], attrs.evolve(OPTIONS, **options)).run()


def test_a_wrong_state_shape_fails_the_shapes_check() -> None:
    with pytest.raises(ConformanceError) as info:
        run(WRONG_SHAPE, "layer", "shapes")
    # (T=3, B=1, 4 neurons): the step returned v of shape (1, 1) instead of (1, 4)
    assert str(info.value).startswith("[wrong_shape/layer] shapes: input of shape (3, 1, 4): ")
    assert "state field 'v' of shape (1, 1); the initial state has (1, 4)" in str(info.value)
    with pytest.raises(ConformanceError, match=r"^\[wrong_shape/cell\] shapes: "):
        run(WRONG_SHAPE, "cell", "shapes")
    run(WRONG_SHAPE, "recurrent", "shapes")  # its recurrent step is the good one


def test_nan_under_long_input_fails_the_long_run_check() -> None:
    with pytest.raises(ConformanceError) as info:
        run(UNSTABLE, "layer", "long_run")
    message = str(info.value)
    assert message.startswith("[unstable/layer] long run finite: state field 'v' is not finite")
    step = int(message.split("from step ")[1].split()[0])
    # v_t ≈ 1.1^t·(0.1·x/0.1) grows until float32 overflows (3.4e38): the calibrated drive of
    # this model is 5, so the largest input is 100·5·(0.5 … 1.5) ≤ 750 and the overflow comes
    # after about ln(3.4e38 / 7500)/ln(1.1) ≈ 840 steps — a short run would not see it.
    assert 700 < step < 1000, message
    # and nothing else notices: the short checks pass
    assert check_model(UNSTABLE, options=OPTIONS, checks=["shapes", "state_threading"]) == []


def test_a_surrogate_with_a_wrong_gradient_fails_the_surrogate_check(broken_surrogates) -> None:
    with pytest.raises(ConformanceError) as info:
        run(BAD_SURROGATE, None, "surrogate", smoothed_steps=SMOOTHED)
    message = str(info.value)
    assert message.startswith("[bad_surrogate] surrogate gradient: surrogate 'doubled_super' ")
    # at x = -2.9877 (alpha=100): 2/(100·2.9877 + 1)² = 2.2256e-05, the smoothed step's slope
    # 1/(100·2.9877 + 1)² = 1.1128e-05
    assert "differs from finite differences of the smoothed step at x=-2.9877" in message
    assert "derivative 2.22563e-05, finite difference 1.11282e-05" in message
    with pytest.raises(ConformanceError, match=r"^\[surrogate doubled_super\] derivative: "):
        SurrogateCase(DOUBLED, attrs.evolve(OPTIONS, smoothed_steps=SMOOTHED)).run()
    # without a smoothed step, a negative derivative is still wrong
    with pytest.raises(ConformanceError) as info:
        run(NEGATIVE_SURROGATE, None, "surrogate")
    assert str(info.value).startswith(
        "[negative_surrogate] surrogate gradient: surrogate 'negative_super' (p.method): "
        "derivative(x, alpha=100) is negative at x=-2.988"
    )


# -- the other checks, one broken model each ---------------------------------------------------
def in_place_step(x: Any, s: State, p: Params, dt: float) -> Any:
    s.v.mul_(1 - dt * p.tau_mem_inv).add_(dt * p.tau_mem_inv * x)  # modifies the caller's state
    z = snncore.spike(s.v - p.v_th, p.method, p.alpha)
    return z, State((1 - z) * s.v)


def first_threshold_step(x: Any, s: State, p: Params, dt: float) -> Any:
    v = s.v + dt * p.tau_mem_inv * (x - s.v)
    z = snncore.spike(v - p.v_th.reshape(-1)[0], p.method, p.alpha)  # ignores per-neuron values
    return z, State((1 - z) * v)


def comparison_step(x: Any, s: State, p: Params, dt: float) -> Any:
    v = s.v + dt * p.tau_mem_inv * (x - s.v)
    z = (v > p.v_th).to(v.dtype)  # no surrogate gradient
    return z, State((1 - z) * v)


def attached_initial(p: Params, shape: Any, device: Any = None, dtype: Any = None) -> State:
    return State(torch.zeros(shape, device=device, dtype=dtype) + 0 * p.v_th.to(dtype))


def float32_initial(p: Params, shape: Any, device: Any = None, dtype: Any = None) -> State:
    return State(torch.zeros(shape, device=device))  # ignores dtype


def off_by_one_sequence(x: Any, state: State, p: Params, dt: float) -> Any:
    outs = []
    for x_t in x[:-1].unbind(0):  # drops the last step from the state
        out, state = good_step(x_t, state, p, dt)
        outs.append(out)
    out, _ = good_step(x[-1], state, p, dt)
    return torch.stack([*outs, out]), state


UNEXPORTED = snncore.NeuronModel(
    name="unexported",
    family="broken",
    summary="module classes never exported",
    parameters=Params,
    feed_forward_step=good_step,
    feed_forward_state=State,
    initial_feed_forward_state=initial,
)

BROKEN = [
    (make("in_place", feed_forward_step=in_place_step), "layer", "state_threading",
     "the layer modified the incoming state field 'v' in place"),
    (make("first_threshold", feed_forward_step=first_threshold_step), "layer", "per_neuron",
     "outputs of neuron 1 with per-neuron parameters (x1.1) and a module of its values differ"),
    (make("comparison", feed_forward_step=comparison_step), None, "surrogate",
     "the output carries no gradient at all"),
    (make("comparison2", feed_forward_step=comparison_step), "cell", "gradients",
     "no gradient reaches the learnable parameters ['v_th']"),
    (make("attached", initial_feed_forward_state=attached_initial), "cell", "initial_state",
     "initial state field 'v' requires grad with learnable parameters"),
    (make("float32_state", initial_feed_forward_state=float32_initial), "layer", "dtypes",
     "initial state field 'v' is torch.float32"),
    (make("off_by_one", feed_forward_sequence=off_by_one_sequence), "layer", "backends",
     "final states of feed_forward_sequence and the step loop: state field 'v' differ"),
    (UNEXPORTED, "layer", "serialization",
     "pickling a UnexportedLayer failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "variant", "check", "expected"),
    BROKEN,
    ids=[f"{m.name}-{c}" for m, _, c, _ in BROKEN],
)
def test_each_check_catches_its_broken_model(model, variant, check, expected) -> None:
    label = model.name if variant is None else f"{model.name}/{variant}"
    with pytest.raises(ConformanceError) as info:
        run(model, variant, check)
    assert str(info.value).startswith(f"[{label}] {CHECKS[check].title}: ")
    assert expected in str(info.value)


def test_the_good_model_passes_every_check() -> None:
    ids = [c.id for c in cases(models=[GOOD], options=OPTIONS)]
    assert "good/layer-state_threading" in ids and "good-surrogate" in ids
    assert check_model(GOOD, options=OPTIONS) == []


def test_builtin_surrogates_against_their_smoothed_steps() -> None:
    for surrogate in snncore.list_surrogates():
        for alpha in (0.5, 2.0, 100.0):
            check_surrogate(surrogate, alpha)

    class Lying:
        """Claims SuperSpike's derivative, but its backward pass uses twice that."""

        name = "lying"
        derivative = staticmethod(snncore.get_surrogate("super").derivative)

        def __call__(self, x: torch.Tensor, alpha: Any) -> torch.Tensor:
            return DOUBLED(x, alpha)

    with pytest.raises(CheckFailure, match="backward pass does not multiply the gradient by"):
        check_surrogate(Lying())


class OffByOneBackend:
    """Claims the good model's layer; returns the state from before the last step."""

    name = "off_by_one"
    priority = -1
    summary = "wrong on purpose"

    def supports(self, model: Any, variant: str, device: Any = None, dtype: Any = None) -> Any:
        return None if (model is GOOD and variant == "layer") else "only the good layer"

    def run_layer(self, model, x, state, p, dt, record_states):
        outputs, previous = [], state
        for x_t in x.unbind(0):
            out, new = model.feed_forward_step(x_t, previous, p, dt)
            outputs.append(out)
            state, previous = previous, new
        return torch.stack(outputs), state

    def run_recurrent(self, *args: Any) -> Any:  # pragma: no cover - never claimed
        raise NotImplementedError


class BrokenBackendPlugin:
    @staticmethod
    @snncore.hookimpl
    def register_backends(register: Any) -> None:
        register(OffByOneBackend())


def test_a_backend_that_disagrees_fails_the_backends_check(fresh_manager) -> None:
    snncore.register_plugin(BrokenBackendPlugin, name="broken-backend")
    assert "good/layer-backends" in [c.id for c in cases(models=[GOOD], options=OPTIONS)]
    with pytest.raises(ConformanceError) as info:
        run(GOOD, "layer", "backends")
    assert str(info.value).startswith(
        "[good/layer] backends agree: final states of backend 'off_by_one' (torch.float64) and "
        "backend 'torch': state field 'v' differ"
    )


def test_selection_errors_are_clear(fresh_manager) -> None:
    from snncore.testing import SelectionError

    with pytest.raises(SelectionError, match="no installed snncore plugin is named 'snn-nope'"):
        cases("snn-nope")
    with pytest.raises(ValueError, match="unknown checks"):
        cases(models=[GOOD], checks=["shape"])
    ids = {
        c.id for c in cases(models=[GOOD], skip={"per_neuron": "why", "good/cell-shapes": "why"})
    }
    assert "good/layer-per_neuron" not in ids and "good/cell-shapes" not in ids
    assert "good/layer-shapes" in ids


def test_a_plugin_whose_hook_raised_fails_its_suite(fresh_manager) -> None:
    """The suite used to pass such a plugin: the hook's failure is recorded only when the hook
    runs, after the plugin had been judged "loaded"; its surrogates were never checked."""
    from snncore.testing import SelectionError

    @snncore.hookimpl
    def register_surrogates(register: Any) -> None:
        raise ValueError("no surrogates today")

    @snncore.hookimpl
    def register_models(register: Any) -> None:
        register(make("sad_good"))

    plugin = SimpleNamespace(
        register_surrogates=register_surrogates, register_models=register_models
    )
    snncore.register_plugin(plugin, name="snn-sad")
    with pytest.raises(SelectionError) as info:
        cases("snn-sad", options=OPTIONS)
    assert str(info.value) == (
        "plugin 'snn-sad' failed: register_surrogates: ValueError: no surrogates today"
    )


def test_compile_modes_choose_one_model_per_family() -> None:
    lif_like = make("lif_like_b", recurrent_step=None, state=None, initial_state=None)
    family = [GOOD, lif_like]  # same family "broken": GOOD offers more variants
    found = [c.id for c in cases(models=family, checks=["compile"], options=Options())]
    assert found == ["good/layer-compile"]
    found = [c.id for c in cases(models=family, checks=["compile"], options=Options(compile="all"))]
    assert found == ["good/layer-compile", "good/recurrent-compile", "lif_like_b/layer-compile"]
    assert cases(models=family, checks=["compile"], options=Options(compile="off")) == []


def test_options_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SNNCORE_TEST_COMPILE", "all")
    monkeypatch.setenv("SNNCORE_TEST_LONG_STEPS", "50")
    options = Options.from_environment(compile_backend="eager")
    assert (options.compile, options.long_steps, options.compile_backend) == ("all", 50, "eager")
    with pytest.raises(ValueError):
        Options(compile="sometimes")


def test_the_pytest_plugin_runs_the_suite_and_names_failures(tmp_path) -> None:
    """A user's test module with the one-line suite, the plugin enabled by ``pytest_plugins``
    (entry-point autoloading off), run by pytest: the good model passes, the broken fails."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["snncore.testing"]\n')
    (tmp_path / "test_user_models.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {os.path.dirname(__file__)!r})
            from test_conformance_broken import GOOD, WRONG_SHAPE
            from snncore.testing import conformance_suite

            test_good = conformance_suite(models=[GOOD], checks=["shapes", "state_threading"])
            test_broken = conformance_suite(models=[WRONG_SHAPE], checks=["shapes"])
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNNCORE_", "PYTEST_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "2 failed, 10 passed" in output  # good: 4 variants x 2 checks; broken: 4 variants
    assert "test_broken[wrong_shape/layer-shapes]" in output
    assert (
        "[wrong_shape/cell] shapes: input of shape (1, 4): the step returned state field" in output
    )


def test_compile_skips_with_a_reason_where_the_platform_cannot(monkeypatch) -> None:
    from snncore.testing import ConformanceSkip, _runtime

    monkeypatch.setattr(_runtime.shutil, "which", lambda name: None)  # no C++ compiler anywhere
    case = Case(GOOD, "layer", CHECKS["compile"], Options(compile_backend="inductor"))
    with pytest.raises(pytest.skip.Exception, match=r"^\[good/layer\] torch.compile: the inductor"):
        case.run()
    with pytest.raises(ConformanceSkip, match="needs a C\\+\\+ compiler"):
        case.run(pytest_skip=False)
    assert check_model(GOOD, options=Options(compile_backend="inductor"), checks=["compile"]) == []
