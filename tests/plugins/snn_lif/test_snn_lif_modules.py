"""The module contract for every snn-lif model: shapes, dtypes, initial state and state threading,
layer == cell looped over time, and the errors bad input gets."""

from __future__ import annotations

import pytest
import torch
from snn_lif import (
    LI,
    LIF,
    LICell,
    LIFCell,
    LIFFeedForwardState,
    LIFMCRecurrent,
    LIFMCRecurrentCell,
    LIFParameters,
    LIFRecurrent,
    LIFRecurrentCell,
    LIFState,
    LILinearCell,
    LIParameters,
    LIState,
)
from torch.testing import assert_close

import snncore

# (cell class, layer class, parameters class, feed-forward state class)
FEED_FORWARD = [
    pytest.param(LIFCell, LIF, LIFParameters, LIFFeedForwardState, id="lif"),
    pytest.param(LICell, LI, LIParameters, LIState, id="li"),
]
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


def _spiky_input(shape: tuple[int, ...], seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """Input currents that make LIF neurons spike now and then (mean ~0.3 per step)."""
    gen = torch.Generator().manual_seed(seed)
    return (0.3 + 0.4 * torch.randn(shape, generator=gen)).to(dtype)


def _input_spikes(shape: tuple[int, ...], seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < 0.3).to(dtype)


def _recurrent_pair(
    cell_cls, layer_cls, input_size=3, hidden_size=5, seed=0, dyadic=True, **kwargs
):
    """A recurrent cell and layer with the same (strong, seeded) weights.

    With ``dyadic`` the weights are multiples of 1/8, so that ``W_in·x`` and ``W_rec·z`` of 0/1
    spikes are exact in any summation order: the layer computes ``W_in·x`` for all steps in one
    matrix product, which is not bit-identical (±1 ulp) to the cell's per-step product for
    general weights (see ``test_recurrent_layer_close_to_looped_cell_general_weights``).
    """
    gen = torch.Generator().manual_seed(seed)
    if dyadic:
        w_in = torch.randint(-16, 17, (hidden_size, input_size), generator=gen) / 8.0
        w_rec = torch.randint(-8, 9, (hidden_size, hidden_size), generator=gen) / 8.0
    else:
        w_in = 2.0 * torch.randn(hidden_size, input_size, generator=gen)
        w_rec = torch.randn(hidden_size, hidden_size, generator=gen)
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


def _assert_states_equal(a, b) -> None:
    assert type(a) is type(b)
    for name, x, y in zip(a._fields, a, b, strict=True):
        assert x.shape == y.shape, name
        assert torch.equal(x, y), f"state field {name!r} differs"


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell_cls", "layer_cls", "p_cls", "state_cls"), FEED_FORWARD)
@pytest.mark.parametrize("shape", [(4,), (3, 7), (2, 3, 4, 5)], ids=["B", "BF", "BCHW"])
def test_feed_forward_cell_shapes(cell_cls, layer_cls, p_cls, state_cls, shape):
    out, state = cell_cls()(_spiky_input(shape))
    assert out.shape == shape
    assert isinstance(state, state_cls)
    for field in state:
        assert field.shape == shape


@pytest.mark.parametrize(("cell_cls", "layer_cls", "p_cls", "state_cls"), FEED_FORWARD)
@pytest.mark.parametrize("shape", [(6, 4), (6, 3, 7), (6, 2, 3, 4, 5)], ids=["TB", "TBF", "TBCHW"])
@pytest.mark.parametrize("record_states", [False, True])
def test_feed_forward_layer_shapes(cell_cls, layer_cls, p_cls, state_cls, shape, record_states):
    out, state = layer_cls(record_states=record_states)(_spiky_input(shape))
    assert out.shape == shape
    assert isinstance(state, state_cls)
    for field in state:
        assert field.shape == (shape if record_states else shape[1:])


@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_shapes(cell_cls, layer_cls):
    cell, layer = _recurrent_pair(cell_cls, layer_cls, input_size=3, hidden_size=5)
    z, state = cell(_input_spikes((4, 3)))
    assert z.shape == (4, 5)
    assert isinstance(state, LIFState)
    assert all(f.shape == (4, 5) for f in state)

    z, state = layer(_input_spikes((7, 4, 3)))
    assert z.shape == (7, 4, 5)
    assert isinstance(state, LIFState)
    assert all(f.shape == (4, 5) for f in state)

    layer.record_states = True
    z, states = layer(_input_spikes((7, 4, 3)))
    assert all(f.shape == (7, 4, 5) for f in states)


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("cell_cls", "layer_cls", "p_cls", "state_cls"), FEED_FORWARD)
def test_feed_forward_dtype_follows_input(cell_cls, layer_cls, p_cls, state_cls, dtype):
    out, state = cell_cls()(_spiky_input((3, 4), dtype=dtype))
    assert out.dtype == dtype
    assert all(f.dtype == dtype for f in state)
    out, state = layer_cls()(_spiky_input((5, 3, 4), dtype=dtype))
    assert out.dtype == dtype
    assert all(f.dtype == dtype for f in state)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_double_moves_parameters_and_runs_in_float64(cls):
    args = (3, 5) if _is_recurrent(cls) else ()
    module = cls(*args).double()
    p = module.parameters_now()
    for name in ("tau_syn_inv", "tau_mem_inv", "v_leak"):
        assert getattr(p, name).dtype == torch.float64, name
    for param in module.parameters():
        assert param.dtype == torch.float64
    if _is_recurrent(cls):
        shape = (6, 2, 3) if _is_layer(cls) else (2, 3)
        x = _input_spikes(shape, dtype=torch.float64)
    else:
        shape = (6, 2, 4) if _is_layer(cls) else (2, 4)
        x = _spiky_input(shape, dtype=torch.float64)
    out, state = module(x)
    assert out.dtype == torch.float64
    assert all(f.dtype == torch.float64 for f in state)
    # and back
    out, state = module.float()(x.float())
    assert out.dtype == torch.float32
    assert all(f.dtype == torch.float32 for f in state)


@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_float64_matches_float32_closely(cell_cls, layer_cls):
    _, layer = _recurrent_pair(cell_cls, layer_cls)
    x = _input_spikes((20, 2, 3))
    z32, s32 = layer(x)
    z64, s64 = layer.double()(x.double())
    assert z64.dtype == s64.v.dtype == torch.float64
    assert_close(z64.float(), z32)
    assert_close(s64.v.float(), s32.v, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Initial state and state threading
# --------------------------------------------------------------------------------------------

V_LEAKS = [
    pytest.param(0.0, id="v_leak=0"),
    pytest.param(0.3, id="v_leak=0.3"),
    pytest.param(torch.tensor([0.1, -0.2, 0.3, 0.0]), id="v_leak=per-neuron"),
]


@pytest.mark.parametrize("v_leak", V_LEAKS)
@pytest.mark.parametrize(("cell_cls", "layer_cls", "p_cls", "state_cls"), FEED_FORWARD)
def test_feed_forward_none_state_is_explicit_initial_state(
    cell_cls, layer_cls, p_cls, state_cls, v_leak
):
    p = p_cls(v_leak=v_leak)
    x = _spiky_input((8, 3, 4))
    explicit = state_cls(v=torch.zeros(3, 4) + torch.as_tensor(v_leak), i=torch.zeros(3, 4))

    cell = cell_cls(p)
    out_none, s_none = cell(x[0])
    out_exp, s_exp = cell(x[0], explicit)
    assert torch.equal(out_none, out_exp)
    _assert_states_equal(s_none, s_exp)
    if not isinstance(v_leak, float) or v_leak != 0.0:
        # the initial state really is v_leak: one step without input moves v only by the leak
        _, s0 = cell(torch.zeros(3, 4))
        assert_close(s0.v, torch.zeros(3, 4) + torch.as_tensor(v_leak))

    layer = layer_cls(p)
    out_none, s_none = layer(x)
    out_exp, s_exp = layer(x, explicit)
    assert torch.equal(out_none, out_exp)
    _assert_states_equal(s_none, s_exp)


@pytest.mark.parametrize("v_leak", [pytest.param(0.0, id="0"), pytest.param(0.3, id="0.3")])
@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_none_state_is_explicit_initial_state(cell_cls, layer_cls, v_leak):
    cell, layer = _recurrent_pair(cell_cls, layer_cls, p=LIFParameters(v_leak=v_leak))
    explicit = LIFState(z=torch.zeros(2, 5), v=torch.full((2, 5), v_leak), i=torch.zeros(2, 5))
    x = _input_spikes((10, 2, 3))

    out_none, s_none = cell(x[0])
    out_exp, s_exp = cell(x[0], explicit)
    assert torch.equal(out_none, out_exp)
    _assert_states_equal(s_none, s_exp)

    out_none, s_none = layer(x)
    out_exp, s_exp = layer(x, explicit)
    assert torch.equal(out_none, out_exp)
    _assert_states_equal(s_none, s_exp)


def test_lif_initial_voltage_is_v_leak():
    # v_leak = 0.3, no input: v1 = 0.3 + 0.1·(0.3 − 0.3) = 0.3 (stays at rest)
    _, s = LIFCell(LIFParameters(v_leak=0.3)).double()(torch.zeros(2, dtype=torch.float64))
    assert_close(s.v, torch.full((2,), 0.3, dtype=torch.float64))
    _, s = LIFRecurrentCell(2, 2, LIFParameters(v_leak=0.3)).double()(
        torch.zeros(1, 2, dtype=torch.float64)
    )
    assert_close(s.v, torch.full((1, 2), 0.3, dtype=torch.float64))
    assert_close(s.z, torch.zeros(1, 2, dtype=torch.float64))


@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize(("cell_cls", "layer_cls", "p_cls", "state_cls"), FEED_FORWARD)
def test_feed_forward_state_threading(cell_cls, layer_cls, p_cls, state_cls, record_states):
    layer = layer_cls(p_cls(v_leak=0.1))
    x = _spiky_input((30, 3, 4))
    out_full, s_full = layer(x)
    out_a, s_a = layer(x[:5])
    out_b, s_b = layer(x[5:], s_a)
    assert torch.equal(torch.cat([out_a, out_b]), out_full)
    _assert_states_equal(s_b, s_full)
    if cell_cls is LIFCell:
        assert 0 < out_full.sum() < out_full.numel()  # spikes happened, not everywhere


@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_state_threading(cell_cls, layer_cls):
    _, layer = _recurrent_pair(cell_cls, layer_cls, p=LIFParameters(v_leak=0.1))
    x = _input_spikes((30, 2, 3))
    out_full, s_full = layer(x)
    out_a, s_a = layer(x[:5])
    out_b, s_b = layer(x[5:], s_a)
    assert torch.equal(torch.cat([out_a, out_b]), out_full)
    _assert_states_equal(s_b, s_full)
    assert 0 < out_full.sum() < out_full.numel()


# --------------------------------------------------------------------------------------------
# Layer == cell looped over time
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize(("cell_cls", "layer_cls", "p_cls", "state_cls"), FEED_FORWARD)
def test_feed_forward_layer_equals_looped_cell(
    cell_cls, layer_cls, p_cls, state_cls, record_states, dtype
):
    p = p_cls(v_leak=0.1)
    x = _spiky_input((40, 3, 2, 2), dtype=dtype)
    cell = cell_cls(p)
    state, outs, states = None, [], []
    for x_t in x:
        out, state = cell(x_t, state)
        outs.append(out)
        states.append(state)
    out_layer, s_layer = layer_cls(p, record_states=record_states)(x)
    assert torch.equal(out_layer, torch.stack(outs))
    if record_states:
        expected = state_cls(*(torch.stack(f) for f in zip(*states, strict=True)))
        _assert_states_equal(s_layer, expected)
    else:
        _assert_states_equal(s_layer, state)
    if cell_cls is LIFCell:
        assert 0 < out_layer.sum() < out_layer.numel()


@pytest.mark.parametrize(("cell_cls", "layer_cls", "p_cls", "state_cls"), FEED_FORWARD)
def test_feed_forward_layer_gradient_equals_looped_cell(cell_cls, layer_cls, p_cls, state_cls):
    """Also the gradients (the layer may run a fused sequence; it must differentiate the same)."""
    x = _spiky_input((40, 3, 4), dtype=torch.float64)
    w = torch.randn(40, 3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x_cell = x.clone().requires_grad_()
    cell = cell_cls(p_cls(v_leak=0.1))
    state, outs = None, []
    for x_t in x_cell.unbind(0):
        out, state = cell(x_t, state)
        outs.append(out)
    ((torch.stack(outs) * w).sum() + state.v.sum()).backward()

    x_layer = x.clone().requires_grad_()
    out, final = layer_cls(p_cls(v_leak=0.1))(x_layer)
    ((out * w).sum() + final.v.sum()).backward()
    assert_close(x_layer.grad, x_cell.grad, rtol=1e-10, atol=1e-12)
    assert x_layer.grad.abs().sum() > 0


@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_layer_equals_looped_recurrent_cell(cell_cls, layer_cls, record_states):
    cell, layer = _recurrent_pair(cell_cls, layer_cls, p=LIFParameters(v_leak=0.1))
    layer.record_states = record_states
    x = _input_spikes((40, 2, 3))
    state, outs, states = None, [], []
    for x_t in x:
        z, state = cell(x_t, state)
        outs.append(z)
        states.append(state)
    z_layer, s_layer = layer(x)
    assert torch.equal(z_layer, torch.stack(outs))
    if record_states:
        expected = LIFState(*(torch.stack(f) for f in zip(*states, strict=True)))
        _assert_states_equal(s_layer, expected)
    else:
        _assert_states_equal(s_layer, state)
    assert 0 < z_layer.sum() < z_layer.numel()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_recurrent_layer_close_to_looped_cell_general_weights(cell_cls, layer_cls, dtype):
    """Gaussian weights: the layer's one-shot ``W_in·x`` may round differently from the cell's
    per-step product (≤ 1 ulp), so states agree to rounding and spikes exactly."""
    cell, layer = _recurrent_pair(cell_cls, layer_cls, dyadic=False)
    cell, layer = cell.to(dtype), layer.to(dtype)
    x = _input_spikes((100, 2, 3), dtype=dtype)
    state, outs = None, []
    for x_t in x:
        z, state = cell(x_t, state)
        outs.append(z)
    z_layer, s_layer = layer(x)
    assert torch.equal(z_layer, torch.stack(outs))
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    assert_close(s_layer.v, state.v, **tol)
    assert_close(s_layer.i, state.i, **tol)
    assert 0 < z_layer.sum() < z_layer.numel()


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
        layer(torch.zeros(2, 3))  # a single step given to the layer


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_input_is_a_type_error(cls, dtype):
    if _is_recurrent(cls):
        module = cls(3, 4)
        shape = (5, 2, 3) if _is_layer(cls) else (2, 3)
    else:
        module = cls()
        shape = (5, 2, 3) if _is_layer(cls) else (2, 3)
    with pytest.raises(TypeError, match="dtype"):
        module(torch.ones(shape, dtype=dtype))


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
