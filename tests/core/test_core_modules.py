"""The generic module variants (snncore.modules) and backend selection (snncore.backends)."""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import snncore


@pytest.fixture(autouse=True)
def _fresh(fresh_manager: Any) -> None:
    """Each test sees the installed plugins and nothing registered by another test."""


def _register_backend(backend: Any, plugin_name: str) -> None:
    @snncore.hookimpl
    def register_backends(register: Callable[..., None]) -> None:
        register(backend)

    snncore.register_plugin(SimpleNamespace(register_backends=register_backends), name=plugin_name)


def _drive(
    steps: int = 30, batch: int = 2, neurons: int = 3, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return 2.0 + torch.rand(steps, batch, neurons, generator=generator, dtype=dtype)


# -- variants and names ---------------------------------------------------------------------------


def test_unknown_variant_lists_the_variants() -> None:
    with pytest.raises(ValueError, match="nope") as info:
        snncore.create("lif", variant="nope")
    for variant in snncore.VARIANTS:
        assert variant in str(info.value)


def test_variant_the_model_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"model 'li' has no 'recurrent' variant.*'cell', 'layer'"):
        snncore.create("li", variant="recurrent")
    with pytest.raises(ValueError, match="no 'layer' variant"):
        snncore.create("lif_mc", variant="layer")


def test_unknown_backend_is_an_unknown_name() -> None:
    with pytest.raises(snncore.UnknownNameError, match="unknown backend 'nope'"):
        snncore.create("lif", backend="nope")


def test_one_step_variants_take_no_backend() -> None:
    with pytest.raises(ValueError, match="takes no backend"):
        snncore.create("lif", variant="cell", backend="torch")


def test_unknown_parameter_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="v_thresh"):
        snncore.create("lif", v_thresh=0.5)


def test_create_builds_every_variant_with_the_right_shapes() -> None:
    x = _drive()
    out, state = snncore.create("lif")(x)
    assert out.shape == x.shape and state.v.shape == x.shape[1:]
    cell_out, _ = snncore.create("lif", variant="cell")(x[0])
    torch.testing.assert_close(cell_out, out[0])
    recurrent = snncore.create("lif", variant="recurrent", input_size=3, hidden_size=5)
    r_out, r_state = recurrent(x)
    assert r_out.shape == (30, 2, 5) and r_state.z.shape == (2, 5)
    rc_out, _ = snncore.create("lif", variant="recurrent_cell", input_size=3, hidden_size=5)(x[0])
    assert rc_out.shape == (2, 5)


# -- backends -------------------------------------------------------------------------------------


class _Refuser:
    name = "refuser"
    priority = 100
    summary = "runs nothing"

    def supports(
        self, model: Any, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None:
        return "it refuses everything"


class _Counting:
    """Delegates to the torch backend and counts the calls."""

    summary = "counts"

    def __init__(self, name: str, priority: int):
        self.name, self.priority, self.calls = name, priority, 0

    def supports(
        self, model: Any, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None:
        return snncore.get_backend("snn-backend-torch:torch").supports(
            model, variant, device, dtype
        )

    def run_layer(self, *args: Any) -> Any:
        self.calls += 1
        return snncore.get_backend("torch").run_layer(*args)

    def run_recurrent(self, *args: Any) -> Any:
        self.calls += 1
        return snncore.get_backend("torch").run_recurrent(*args)


def test_a_refusing_backend_names_the_backends_that_can() -> None:
    _register_backend(_Refuser(), "snn-refuser")
    with pytest.raises(snncore.BackendUnavailableError) as info:
        snncore.create("lif", backend="refuser")
    message = str(info.value)
    assert "'refuser'" in message and "it refuses everything" in message
    assert re.search(r"backends that do: .*\btorch\b", message)
    assert isinstance(info.value, RuntimeError)


def test_auto_skips_a_refusing_backend_of_higher_priority() -> None:
    _register_backend(_Refuser(), "snn-refuser")
    layer = snncore.create("lif")
    x = _drive()
    layer(x)
    assert layer._backend_for(x).name != "refuser"


def test_auto_picks_the_highest_priority_supporting_backend() -> None:
    fast, slow = _Counting("fast", 10), _Counting("slow", -5)
    _register_backend(fast, "snn-fast")
    _register_backend(slow, "snn-slow")
    x = _drive()
    layer = snncore.create("lif")
    out, state = layer(x)
    layer(x)
    assert (fast.calls, slow.calls) == (2, 0)
    assert layer._backend_for(x).name == "fast"  # a backend without route() is wrapped
    expected, expected_state = snncore.create("lif", backend="torch")(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(state.v, expected_state.v, rtol=0, atol=0)

    recurrent = snncore.create("lif", variant="recurrent", input_size=3, hidden_size=4)
    recurrent(x)
    assert fast.calls == 3
    named = snncore.create("lif", backend="slow")
    named(x)
    assert slow.calls == 1


def test_auto_with_no_backend_installed_fails_at_the_first_call(
    builtins_only: Any, toy_plugin: Any
) -> None:
    snncore.register_plugin(toy_plugin, name="snn-toy")
    layer = snncore.create("toy")
    with pytest.raises(snncore.BackendUnavailableError, match="no installed backend"):
        layer(_drive())
    # the one-step variant needs no backend
    out, _ = snncore.create("toy", variant="cell")(torch.ones(2, 3))
    torch.testing.assert_close(out, torch.full((2, 3), 2.0))


# -- parameters: learnable, buffers, dtype, per-neuron --------------------------------------------


def test_learnable_parameter_is_in_state_dict_and_gets_a_gradient() -> None:
    layer = snncore.create("lif", learnable=("tau_mem_inv",))
    parameters = dict(layer.named_parameters())
    assert list(parameters) == ["p_tau_mem_inv"]
    assert isinstance(parameters["p_tau_mem_inv"], torch.nn.Parameter)
    assert set(layer.state_dict()) == {"p_tau_mem_inv"}
    out, state = layer(_drive())
    assert out.sum() > 0
    (out.sum() + state.v.sum()).backward()
    grad = layer.p_tau_mem_inv.grad
    assert grad is not None and grad.abs().item() > 0


def test_learnt_value_is_what_the_step_uses() -> None:
    layer = snncore.create("lif", variant="cell", learnable=("v_th",))
    x = torch.full((1, 1), 9.0)  # one step from rest: v1 = 0.9
    assert layer(x)[0].item() == 0.0
    with torch.no_grad():
        layer.p_v_th.fill_(0.5)
    assert layer(x)[0].item() == 1.0


def test_learnable_must_name_tensor_parameters() -> None:
    with pytest.raises(ValueError, match="method"):
        snncore.create("lif", learnable=("method",))


def test_fixed_parameters_stay_out_of_state_dict() -> None:
    layer = snncore.create("lif")
    assert layer.state_dict() == {}
    assert list(layer.parameters()) == []
    assert "p_v_th" in dict(layer.named_buffers())


def test_recurrent_state_dict_is_just_the_weights() -> None:
    from snn_lif import LIFRecurrent

    source = LIFRecurrent(3, 4)
    assert set(source.state_dict()) == {"input_weights", "recurrent_weights"}
    assert tuple(source.input_weights.shape) == (4, 3)
    assert tuple(source.recurrent_weights.shape) == (4, 4)
    target = LIFRecurrent(3, 4)
    target.load_state_dict(source.state_dict(), strict=True)
    torch.testing.assert_close(target.recurrent_weights, source.recurrent_weights)


def test_to_float64_converts_the_parameter_tensors() -> None:
    layer = snncore.create("lif", learnable=("tau_syn_inv",)).to(torch.float64)
    p = layer.parameters_now()
    for name in ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset", "alpha"):
        assert getattr(p, name).dtype == torch.float64, name
    x = _drive(dtype=torch.float64)
    out, state = layer(x)
    assert out.dtype == state.v.dtype == state.i.dtype == torch.float64
    reference, _ = snncore.create("lif")(x.float())
    torch.testing.assert_close(out.float(), reference)


def test_per_neuron_parameters_broadcast() -> None:
    thresholds = [0.2, 1.0, 100.0]
    x = _drive(neurons=3)
    layer = snncore.create("lif", v_th=torch.tensor(thresholds))
    out, state = layer(x)
    assert out.shape == x.shape and state.v.shape == (2, 3)
    for k, v_th in enumerate(thresholds):
        single, _ = snncore.create("lif", v_th=v_th)(x[..., k : k + 1])
        torch.testing.assert_close(out[..., k : k + 1], single, rtol=0, atol=0)
    counts = out.sum(dim=(0, 1))
    assert counts[0] > counts[1] > 0 and counts[2] == 0


# -- pickling ----------------------------------------------------------------------------------


def test_pickled_layer_round_trips() -> None:
    from snn_lif import LIF

    layer = snncore.create("lif", v_th=0.7, learnable=("tau_mem_inv",))
    with torch.no_grad():
        layer.p_tau_mem_inv.fill_(150.0)
    x = _drive()
    expected, _ = layer(x)  # resolves (and caches) a backend first
    copy_ = pickle.loads(pickle.dumps(layer))
    assert type(copy_) is LIF
    assert copy_.p_tau_mem_inv.item() == 150.0
    assert copy_.parameters_now().v_th.item() == pytest.approx(0.7)
    out, _ = copy_(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def _diagonal_gradient(
    layer: torch.nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    out, _ = layer(x)
    out.sum().backward()
    grad = layer.recurrent_weights.grad
    assert grad is not None
    return grad.diagonal(), grad - torch.diag(grad.diagonal())


def _recurrent_drive() -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return (torch.rand(40, 2, 3, generator=generator) < 0.5).float()


def _weights() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(4)
    return {
        "input_weights": 2.0 + torch.rand(4, 3, generator=generator),
        "recurrent_weights": torch.rand(4, 4, generator=generator),
    }


def test_autapses_diagonal_gradient_is_zero_only_without_autapses() -> None:
    from snn_lif import LIFRecurrent

    x = _recurrent_drive()
    with_autapses = LIFRecurrent(3, 4, autapses=True, **_weights())
    diagonal, off = _diagonal_gradient(with_autapses, x)
    assert diagonal.abs().sum() > 0 and off.abs().sum() > 0

    without = LIFRecurrent(3, 4, **_weights())
    assert without.recurrent_weights.diagonal().abs().sum() == 0
    diagonal, off = _diagonal_gradient(without, x)
    assert diagonal.abs().sum() == 0 and off.abs().sum() > 0


@pytest.mark.parametrize("clone", ["pickle", "deepcopy"])
def test_pickled_recurrent_round_trips_and_keeps_the_autapse_hook(clone: str) -> None:
    from snn_lif import LIFRecurrent

    layer = LIFRecurrent(3, 4, **_weights())
    x = _recurrent_drive()
    expected, expected_state = layer(x)
    restored = pickle.loads(pickle.dumps(layer)) if clone == "pickle" else copy.deepcopy(layer)
    assert type(restored) is LIFRecurrent and restored.autapses is False
    out, state = restored(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(state.v, expected_state.v, rtol=0, atol=0)
    diagonal, off = _diagonal_gradient(restored, x)
    assert diagonal.abs().sum() == 0 and off.abs().sum() > 0


@pytest.mark.parametrize("variant", ["layer", "recurrent", "cell", "recurrent_cell"])
def test_forward_hooks_see_one_call_with_the_callers_input(variant: str) -> None:
    """Input with two batch axes is run with them as one: hooks registered on the module fire
    once per call, with the input as the caller gave it (they fired twice for recurrent layers,
    the first time with the batch axes flattened)."""
    kwargs = {"input_size": 3, "hidden_size": 5} if "recurrent" in variant else {}
    module = snncore.create("lif", variant, **kwargs)
    seen: list[tuple[int, ...]] = []
    module.register_forward_hook(lambda mod, args, out: seen.append(tuple(args[0].shape)))
    shape = (7, 2, 4, 3) if variant in ("layer", "recurrent") else (2, 4, 3)
    out, _ = module(torch.rand(shape))
    assert seen == [shape]
    assert out.shape == (*shape[:-1], 5 if kwargs else 3)
