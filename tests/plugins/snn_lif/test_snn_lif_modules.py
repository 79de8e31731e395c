"""snn-lif modules beyond the generic conformance checks (tests/conformance: shapes, dtypes,
initial state, state threading, layer == looped cell): the initial voltage, recurrent weight
gradients of layer and looped cell, the errors bad input gets, and the classes `create` returns."""

from __future__ import annotations

import pytest
import torch
from snn_lif import (
    LI,
    LIF,
    LICell,
    LIFCell,
    LIFMCRecurrent,
    LIFMCRecurrentCell,
    LIFParameters,
    LIFRecurrent,
    LIFRecurrentCell,
    LILinearCell,
)
from torch.testing import assert_close

import snncore

# (recurrent cell class, recurrent layer class)
RECURRENT = [
    pytest.param(LIFRecurrentCell, LIFRecurrent, id="lif"),
    pytest.param(LIFMCRecurrentCell, LIFMCRecurrent, id="lif_mc"),
]
ALL_CLASSES = [
    LIFCell,
    LIF,
    LICell,
    LI,
    LIFRecurrentCell,
    LIFRecurrent,
    LIFMCRecurrentCell,
    LIFMCRecurrent,
]
RECURRENT_CLASSES = [LIFRecurrentCell, LIFRecurrent, LIFMCRecurrentCell, LIFMCRecurrent]


def _is_recurrent(cls: type) -> bool:
    return cls in RECURRENT_CLASSES


def _is_layer(cls: type) -> bool:
    return cls in (LIF, LI, LIFRecurrent, LIFMCRecurrent)


def _input_spikes(shape: tuple[int, ...], seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < 0.3).to(dtype)


def _recurrent_pair(cell_cls, layer_cls, input_size=3, hidden_size=5, seed=0, **kwargs):
    """A recurrent cell and layer with the same (strong, seeded) weights, multiples of 1/8, so
    that ``W_in·x`` and ``W_rec·z`` of 0/1 spikes are exact in any summation order (the layer
    computes ``W_in·x`` for all steps in one matrix product)."""
    gen = torch.Generator().manual_seed(seed)
    w_in = torch.randint(-16, 17, (hidden_size, input_size), generator=gen) / 8.0
    w_rec = torch.randint(-8, 9, (hidden_size, hidden_size), generator=gen) / 8.0
    cell = cell_cls(input_size, hidden_size, input_weights=w_in, recurrent_weights=w_rec, **kwargs)
    layer = layer_cls(
        input_size, hidden_size, input_weights=w_in, recurrent_weights=w_rec, **kwargs
    )
    if hasattr(cell, "g_coupling"):
        g = 20.0 * torch.randn(hidden_size, hidden_size, generator=gen)
        with torch.no_grad():
            cell.g_coupling.copy_(g)
            layer.g_coupling.copy_(g)
    return cell, layer


# --------------------------------------------------------------------------------------------
# Initial state
# --------------------------------------------------------------------------------------------


def test_lif_initial_voltage_is_v_leak():
    # v_leak = 0.3, no input: v1 = 0.3 + 0.1·(0.3 − 0.3) = 0.3 (stays at rest)
    _, s = LIFCell(LIFParameters(v_leak=0.3)).double()(torch.zeros(2, dtype=torch.float64))
    assert_close(s.v, torch.full((2,), 0.3, dtype=torch.float64))
    _, s = LIFRecurrentCell(2, 2, LIFParameters(v_leak=0.3)).double()(
        torch.zeros(1, 2, dtype=torch.float64)
    )
    assert_close(s.v, torch.full((1, 2), 0.3, dtype=torch.float64))
    assert_close(s.z, torch.zeros(1, 2, dtype=torch.float64))


# --------------------------------------------------------------------------------------------
# Recurrent layer == looped cell: weight gradients
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_layer_weight_gradients_equal_looped_cell(cell_cls, layer_cls):
    cell, layer = _recurrent_pair(cell_cls, layer_cls)
    cell, layer = cell.double(), layer.double()
    x = _input_spikes((30, 2, 3), dtype=torch.float64)
    state, outs = None, []
    for x_t in x:
        z, state = cell(x_t, state)
        outs.append(z)
    (torch.stack(outs).sum() + state.v.sum()).backward()
    z, state = layer(x)
    (z.sum() + state.v.sum()).backward()
    pairs = zip(cell.named_parameters(), layer.named_parameters(), strict=True)
    for (name, a), (_, b) in pairs:
        assert a.grad is not None, name
        assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-12, msg=name)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_wrong_input_size(cell_cls, layer_cls):
    cell, layer = _recurrent_pair(cell_cls, layer_cls, input_size=3)
    with pytest.raises(ValueError, match="input_size"):
        cell(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="input_size"):
        layer(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="input_size"):
        layer(torch.zeros(2, 4))  # unbatched: (time, input_size)
    assert layer(torch.zeros(2, 3))[0].shape == (
        2,
        layer.hidden_size,
    )  # unbatched, as the reference


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_and_bool_input_is_cast_to_the_float_dtype(cls, dtype):
    """Spike tensors are often bool or integer counts: cast, as the reference does."""
    if _is_recurrent(cls):
        module = cls(3, 4)
        shape = (5, 2, 3) if _is_layer(cls) else (2, 3)
    else:
        module = cls()
        shape = (5, 2, 3) if _is_layer(cls) else (2, 3)
    x = torch.ones(shape, dtype=dtype)
    out, _ = module(x)
    assert out.dtype == torch.get_default_dtype()
    torch.testing.assert_close(out, module(x.to(torch.get_default_dtype()))[0])
    with pytest.raises(TypeError, match="real input"):
        module(torch.ones(shape, dtype=torch.complex64))


def test_unknown_parameter_keyword_lists_valid_names():
    with pytest.raises(TypeError, match="v_thresh") as info:
        snncore.create("lif", v_thresh=1)
    message = str(info.value)
    for name in ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset", "method", "alpha"):
        assert name in message
    with pytest.raises(TypeError, match="v_th"):
        snncore.create("li", variant="cell", v_th=1)
    with pytest.raises(TypeError, match="tau_mem"):
        LIFCell(tau_mem=10)


@pytest.mark.parametrize(
    "cls", [c for c in ALL_CLASSES if c not in (LICell, LI)], ids=lambda c: c.__name__
)
def test_unknown_surrogate_method(cls):
    args = (3, 4) if _is_recurrent(cls) else ()
    with pytest.raises(snncore.UnknownNameError, match="nope"):
        cls(*args, p=LIFParameters(method="nope"))
    with pytest.raises(snncore.UnknownNameError):
        cls(*args, method="nope")


def test_create_by_name_gives_the_plugin_classes():
    assert type(snncore.create("lif", variant="cell")) is LIFCell
    assert type(snncore.create("lif")) is LIF
    assert type(snncore.create("lif", variant="recurrent", input_size=2, hidden_size=3)) is (
        LIFRecurrent
    )
    assert type(snncore.create("li")) is LI
    mc = snncore.create("lif_mc", variant="recurrent_cell", input_size=2, hidden_size=3)
    assert type(mc) is LIFMCRecurrentCell
    layer = snncore.create("lif", v_th=0.5, tau_mem_inv=50.0)
    assert layer.parameters_now().v_th.item() == 0.5
    assert layer.parameters_now().tau_mem_inv.item() == 50.0
    assert isinstance(LILinearCell(2, 3), LICell)
