"""LIF (snn-lif): values worked out by hand from MODELS.md, surrogate gradients, autapses.

Every expected number below is derived in the comments from the step of MODELS.md with the
default parameters and ``dt = 0.001``, i.e. ``dt·tau_mem_inv = 0.1`` and ``dt·tau_syn_inv = 0.2``:

    i1 = i + x;  v1 = v + 0.1·((v_leak − v) + i1);  i' = 0.8·i1
    z = Θ(v1 − v_th);  v' = (1 − z)·v1 + z·v_reset

Modules are moved to float64 (``.double()``) so that ``dt·tau`` is 0.1 to double precision.
"""

from __future__ import annotations

import pytest
import torch
from snn_lif import (
    LIF,
    LIFCell,
    LIFFeedForwardState,
    LIFParameters,
    LIFRecurrent,
    LIFRecurrentCell,
    LIFState,
)
from torch.testing import assert_close

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# --------------------------------------------------------------------------------------------
# Hand-worked values
# --------------------------------------------------------------------------------------------


def test_lif_cell_hand_worked_three_steps_with_spikes_and_reset():
    # Two neurons (batch 1). Neuron 0 gets x = 1, 1, 1; neuron 1 gets x = 12, 0, 0.
    # Start: v = v_leak = 0, i = 0.
    # neuron 0:
    #   step 1: i1 = 1;    v1 = 0 + 0.1·(0 + 1)          = 0.1;   i' = 0.8;   z = 0
    #   step 2: i1 = 1.8;  v1 = 0.1 + 0.1·(−0.1 + 1.8)   = 0.27;  i' = 1.44;  z = 0
    #   step 3: i1 = 2.44; v1 = 0.27 + 0.1·(−0.27 + 2.44) = 0.487; i' = 1.952; z = 0
    # neuron 1:
    #   step 1: i1 = 12;   v1 = 0 + 0.1·12 = 1.2 > 1  -> z = 1, v' = v_reset = 0;  i' = 9.6
    #   step 2: i1 = 9.6;  v1 = 0 + 0.1·9.6 = 0.96    -> z = 0, v' = 0.96;         i' = 7.68
    #   step 3: i1 = 7.68; v1 = 0.96 + 0.1·(−0.96 + 7.68) = 1.632 -> z = 1, v' = 0; i' = 6.144
    cell = LIFCell().double()
    xs = [t([[1.0, 12.0]]), t([[1.0, 0.0]]), t([[1.0, 0.0]])]
    expected = [
        ([0.0, 1.0], [0.1, 0.0], [0.8, 9.6]),
        ([0.0, 0.0], [0.27, 0.96], [1.44, 7.68]),
        ([0.0, 1.0], [0.487, 0.0], [1.952, 6.144]),
    ]
    state = None
    for x, (z_exp, v_exp, i_exp) in zip(xs, expected, strict=True):
        z, state = cell(x, state)
        assert isinstance(state, LIFFeedForwardState)
        assert_close(z, t([z_exp]))
        assert_close(state.v, t([v_exp]))
        assert_close(state.i, t([i_exp]))


def test_lif_cell_hand_worked_nondefault_leak_threshold_reset():
    # v_leak = 0.5, v_th = 0.55, v_reset = −0.5; x = 1, 0, 0.  Start v = v_leak = 0.5, i = 0.
    #   step 1: i1 = 1;    v1 = 0.5 + 0.1·((0.5 − 0.5) + 1) = 0.6 > 0.55 -> z = 1, v' = −0.5
    #           i' = 0.8
    #   step 2: i1 = 0.8;  v1 = −0.5 + 0.1·((0.5 + 0.5) + 0.8) = −0.32; z = 0; i' = 0.64
    #   step 3: i1 = 0.64; v1 = −0.32 + 0.1·((0.5 + 0.32) + 0.64) = −0.174; z = 0; i' = 0.512
    cell = LIFCell(LIFParameters(v_leak=0.5, v_th=0.55, v_reset=-0.5)).double()
    expected = [(1.0, -0.5, 0.8), (0.0, -0.32, 0.64), (0.0, -0.174, 0.512)]
    state = None
    for x, (z_exp, v_exp, i_exp) in zip([1.0, 0.0, 0.0], expected, strict=True):
        z, state = cell(t([x]), state)
        assert_close(z, t([z_exp]))
        assert_close(state.v, t([v_exp]))
        assert_close(state.i, t([i_exp]))


def test_lif_layer_hand_worked_per_neuron_threshold():
    # Input (T=3, B=1, 2): x = 1 at every step for both neurons; v_th per neuron = [1, 0.25].
    # neuron 0 (v_th = 1): as in the cell test, v = 0.1, 0.27, 0.487; i = 0.8, 1.44, 1.952; no spike
    # neuron 1 (v_th = 0.25):
    #   step 1: i1 = 1;    v1 = 0.1 < 0.25          -> z = 0, v' = 0.1;   i' = 0.8
    #   step 2: i1 = 1.8;  v1 = 0.27 > 0.25         -> z = 1, v' = 0;     i' = 1.44
    #   step 3: i1 = 2.44; v1 = 0 + 0.1·2.44 = 0.244 -> z = 0, v' = 0.244; i' = 1.952
    layer = LIF(LIFParameters(v_th=torch.tensor([1.0, 0.25])), record_states=True).double()
    x = torch.ones(3, 1, 2, dtype=F64)
    z, states = layer(x)
    assert_close(z, t([[[0.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]))
    assert_close(states.v, t([[[0.1, 0.1]], [[0.27, 0.0]], [[0.487, 0.244]]]))
    assert_close(states.i, t([[[0.8, 0.8]], [[1.44, 1.44]], [[1.952, 1.952]]]))

    # Without record_states the final state only.
    z2, final = LIF(LIFParameters(v_th=torch.tensor([1.0, 0.25]))).double()(x)
    assert_close(z2, z)
    assert_close(final.v, t([[0.487, 0.244]]))
    assert_close(final.i, t([[1.952, 1.952]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lif_exactly_at_threshold_does_not_spike(dtype):
    # Θ(x) = 1 only for x > 0.  With dt = 0.125, tau_mem_inv = 2, tau_syn_inv = 4 every number is
    # a binary fraction: dt·tau_mem_inv = 0.25, dt·tau_syn_inv = 0.5.  From rest:
    #   x = 2:     i1 = 2;     v1 = 0.25·2 = 0.5 = v_th         -> z = 0, v' = 0.5;  i' = 1
    #   x = 2.125: i1 = 2.125; v1 = 0.25·2.125 = 0.53125 > 0.5  -> z = 1, v' = 0;    i' = 1.0625
    p = LIFParameters(tau_syn_inv=4.0, tau_mem_inv=2.0, v_th=0.5)
    x = torch.tensor([2.0, 2.125], dtype=dtype)
    z, s = LIFCell(p, dt=0.125)(x)
    assert z.tolist() == [0.0, 1.0]
    assert s.v.tolist() == [0.5, 0.0]
    assert s.i.tolist() == [1.0, 1.0625]
    for record_states in (False, True):  # both the step loop and any whole-sequence path
        z, s = LIF(p, dt=0.125, record_states=record_states)(x.reshape(1, 1, 2))
        assert z.flatten().tolist() == [0.0, 1.0]
        assert s.v.flatten().tolist() == [0.5, 0.0]
    z, s = LIFRecurrentCell(
        2, 2, p, dt=0.125, input_weights=torch.eye(2), recurrent_weights=torch.zeros(2, 2)
    ).to(dtype)(x.reshape(1, 2))
    assert z.flatten().tolist() == [0.0, 1.0]
    assert s.v.flatten().tolist() == [0.5, 0.0]


# Recurrent example shared by the recurrent cell and the recurrent layer:
#   W_in = [[1, 0], [0, 12]],  W_rec = [[0, 3], [−1, 0]],  x = [1, 1] then [0, 0] four times.
# current_t = W_in·x_t + W_rec·z_{t−1}
#   step 1: current = [1, 12]
#       n0: i1 = 1;  v1 = 0.1;  i' = 0.8;  z = 0
#       n1: i1 = 12; v1 = 1.2 -> z = 1, v' = 0;  i' = 9.6
#   step 2: current = W_rec·[0, 1] = [3, 0]
#       n0: i1 = 0.8 + 3 = 3.8; v1 = 0.1 + 0.1·(−0.1 + 3.8) = 0.47; i' = 3.04; z = 0
#       n1: i1 = 9.6;           v1 = 0 + 0.96 = 0.96;             i' = 7.68; z = 0
#   step 3: current = [0, 0]
#       n0: i1 = 3.04; v1 = 0.47 + 0.1·(−0.47 + 3.04) = 0.727;  i' = 2.432; z = 0
#       n1: i1 = 7.68; v1 = 0.96 + 0.1·(−0.96 + 7.68) = 1.632 -> z = 1, v' = 0; i' = 6.144
#   step 4: current = W_rec·[0, 1] = [3, 0]
#       n0: i1 = 2.432 + 3 = 5.432; v1 = 0.727 + 0.1·(−0.727 + 5.432) = 1.1975 -> z = 1, v' = 0
#           i' = 4.3456
#       n1: i1 = 6.144; v1 = 0 + 0.6144 = 0.6144; i' = 4.9152; z = 0
#   step 5: current = W_rec·[1, 0] = [0, −1]
#       n0: i1 = 4.3456;           v1 = 0 + 0.43456 = 0.43456;                  i' = 3.47648
#       n1: i1 = 4.9152 − 1 = 3.9152; v1 = 0.6144 + 0.1·(−0.6144 + 3.9152) = 0.94448; i' = 3.13216
W_IN = [[1.0, 0.0], [0.0, 12.0]]
W_REC = [[0.0, 3.0], [-1.0, 0.0]]
REC_X = [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
REC_Z = [[0.0, 1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
REC_V = [[0.1, 0.0], [0.47, 0.96], [0.727, 0.0], [0.0, 0.6144], [0.43456, 0.94448]]
REC_I = [[0.8, 9.6], [3.04, 7.68], [2.432, 6.144], [4.3456, 4.9152], [3.47648, 3.13216]]


def test_lif_recurrent_cell_hand_worked():
    cell = LIFRecurrentCell(2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC)).double()
    state = None
    for step in range(5):
        z, state = cell(t([REC_X[step]]), state)
        assert isinstance(state, LIFState)
        assert_close(z, t([REC_Z[step]]), msg=f"step {step + 1}")
        assert_close(state.z, t([REC_Z[step]]))
        assert_close(state.v, t([REC_V[step]]), msg=f"step {step + 1}")
        assert_close(state.i, t([REC_I[step]]), msg=f"step {step + 1}")


def test_lif_recurrent_layer_hand_worked():
    layer = LIFRecurrent(
        2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC), record_states=True
    ).double()
    x = t(REC_X).unsqueeze(1)  # (T=5, B=1, 2)
    z, states = layer(x)
    assert z.shape == (5, 1, 2)
    assert_close(z, t(REC_Z).unsqueeze(1))
    assert_close(states.z, t(REC_Z).unsqueeze(1))
    assert_close(states.v, t(REC_V).unsqueeze(1))
    assert_close(states.i, t(REC_I).unsqueeze(1))

    layer.record_states = False
    _, final = layer(x)
    assert_close(final.z, t([REC_Z[-1]]))
    assert_close(final.v, t([REC_V[-1]]))
    assert_close(final.i, t([REC_I[-1]]))


# --------------------------------------------------------------------------------------------
# Surrogate gradient at a spike, and which reset is differentiated
# --------------------------------------------------------------------------------------------
#
# Start from v (a leaf), i = 0, x = 0, v_leak = 0: v1 = v + 0.1·(0 − v) = 0.9·v, so
# dz/dv = 0.9 · Θ'(v1 − v_th) with Θ' the surrogate.


@pytest.mark.parametrize(
    ("v0", "method", "alpha", "z_expected", "grad_expected"),
    [
        # v1 = 1.08, v1 − v_th = 0.08:  super  1/(100·0.08 + 1)² = 1/81;   0.9/81 = 1/90
        (1.2, "super", 100.0, 1.0, 1.0 / 90.0),
        # v1 = 0.9, v1 − v_th = −0.1:   super  1/(100·0.1 + 1)² = 1/121;   0.9/121
        (1.0, "super", 100.0, 0.0, 0.9 / 121.0),
        # v1 = 1.08, alpha = 10:        super  1/(10·0.08 + 1)² = 1/3.24;  0.9/3.24 = 5/18
        (1.2, "super", 10.0, 1.0, 5.0 / 18.0),
        # fast_sigmoid is super's alias
        (1.2, "fast_sigmoid", 100.0, 1.0, 1.0 / 90.0),
        # triangle, alpha = 2:          2·max(0, 1 − 0.08) = 1.84;          0.9·1.84 = 1.656
        (1.2, "triangle", 2.0, 1.0, 1.656),
        # heaviside: no gradient at all
        (1.2, "heaviside", 100.0, 1.0, 0.0),
    ],
)
def test_lif_cell_spike_uses_surrogate(v0, method, alpha, z_expected, grad_expected):
    cell = LIFCell(LIFParameters(method=method, alpha=alpha)).double()
    v = t([v0]).requires_grad_()
    z, _ = cell(t([0.0]), LIFFeedForwardState(v=v, i=t([0.0])))
    assert_close(z.detach(), t([z_expected]))
    (grad,) = torch.autograd.grad(z.sum(), v)
    assert_close(grad, t([grad_expected]))


def test_lif_cell_surrogate_gradient_wrt_input():
    # v = 0, i = 0, x = 11: v1 = 0.1·11 = 1.1 -> z = 1.  dv1/dx = 0.1;
    # super: 1/(100·|1.1 − 1| + 1)² = 1/121;  dz/dx = 0.1/121.
    cell = LIFCell().double()
    x = t([11.0]).requires_grad_()
    z, _ = cell(x)
    assert z.item() == 1.0
    (grad,) = torch.autograd.grad(z.sum(), x)
    assert_close(grad, t([0.1 / 121.0]))


@pytest.mark.parametrize(
    ("v0", "ff_grad", "rec_grad"),
    [
        # spike: v1 = 1.08, z = 1, v' = (1 − z)·v1 + z·0 = 0.
        #   feed-forward (z not detached): dv'/dv = 0.9·[(1 − z) + (v_reset − v1)·1/81]
        #                                        = 0.9·(−1.08/81) = −0.012
        #   recurrent (sg(z) in the reset): dv'/dv = 0.9·(1 − z) = 0
        (1.2, -0.012, 0.0),
        # no spike: v1 = 0.9, z = 0.
        #   feed-forward: 0.9·[1 + (0 − 0.9)/121] = 0.9 − 0.81/121
        #   recurrent:    0.9
        (1.0, 0.9 - 0.81 / 121.0, 0.9),
    ],
)
def test_lif_reset_gradient_feed_forward_vs_recurrent(v0, ff_grad, rec_grad):
    v = t([[v0]]).requires_grad_()
    _, s = LIFCell().double()(t([[0.0]]), LIFFeedForwardState(v=v, i=t([[0.0]])))
    (grad,) = torch.autograd.grad(s.v.sum(), v)
    assert_close(grad, t([[ff_grad]]))

    v = t([[v0]]).requires_grad_()
    cell = LIFRecurrentCell(1, 1, input_weights=t([[0.0]]), recurrent_weights=t([[0.0]])).double()
    _, s = cell(t([[0.0]]), LIFState(z=t([[0.0]]), v=v, i=t([[0.0]])))
    (grad,) = torch.autograd.grad(s.v.sum(), v)
    assert_close(grad, t([[rec_grad]]))


# --------------------------------------------------------------------------------------------
# Gradients against finite differences (float64, no spikes: v_th far away)
# --------------------------------------------------------------------------------------------


def test_lif_layer_input_gradient_matches_finite_differences():
    layer = LIF(LIFParameters(v_th=1e6), record_states=True).double()
    gen = torch.Generator().manual_seed(0)
    x = (0.3 * torch.randn(12, 2, 3, generator=gen, dtype=F64)).requires_grad_()

    def voltages(inp: torch.Tensor) -> torch.Tensor:
        z, states = layer(inp)
        assert not z.any()
        return states.v

    assert torch.autograd.gradcheck(voltages, (x,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_lif_recurrent_layer_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(1)
    layer = LIFRecurrent(
        3,
        4,
        LIFParameters(v_th=1e6),
        record_states=True,
        input_weights=torch.randn(4, 3, generator=gen),
    ).double()
    x = torch.rand(8, 2, 3, generator=gen, dtype=F64).requires_grad_()
    weights = layer.input_weights.detach().clone().requires_grad_()

    def voltages(inp: torch.Tensor, w_in: torch.Tensor) -> torch.Tensor:
        z, states = torch.func.functional_call(layer, {"input_weights": w_in}, (inp,))
        assert not z.any()
        return states.v

    assert torch.autograd.gradcheck(voltages, (x, weights), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_lif_gradient_with_spikes_is_finite_and_nonzero():
    layer = LIF().double()
    x = torch.full((20, 1, 2), 0.6, dtype=F64, requires_grad=True)
    z, _ = layer(x)
    assert z.sum() > 0
    z.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad.abs() > 0).any()


# --------------------------------------------------------------------------------------------
# Autapses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [LIFRecurrentCell, LIFRecurrent])
def test_no_autapses_by_default_diagonal_and_gradient_zero(cls):
    torch.manual_seed(0)
    module = cls(4, 5)
    assert module.autapses is False
    assert torch.equal(module.recurrent_weights.diagonal(), torch.zeros(5))
    off_diagonal = module.recurrent_weights - torch.diag(module.recurrent_weights.diagonal())
    assert off_diagonal.abs().sum() > 0

    # explicitly given weights with a nonzero diagonal lose it as well (as in the reference)
    given = torch.full((5, 5), 0.5)
    module_given = cls(4, 5, recurrent_weights=given)
    assert torch.equal(module_given.recurrent_weights.diagonal(), torch.zeros(5))
    assert given.diagonal().eq(0.5).all()  # the caller's tensor is untouched

    grad = _recurrent_weight_gradient(module)
    assert grad.abs().sum() > 0
    assert torch.equal(grad.diagonal(), torch.zeros(5))


@pytest.mark.parametrize("cls", [LIFRecurrentCell, LIFRecurrent])
def test_autapses_true_keeps_diagonal_and_its_gradient(cls):
    torch.manual_seed(0)
    module = cls(4, 5, autapses=True)
    assert (module.recurrent_weights.diagonal() != 0).all()
    grad = _recurrent_weight_gradient(module)
    assert (grad.diagonal() != 0).all()


def _recurrent_weight_gradient(module: torch.nn.Module) -> torch.Tensor:
    """Drive the module so that every neuron spikes and the spikes feed back; return dL/dW_rec."""
    with torch.no_grad():
        module.input_weights.fill_(1.0)
    x = torch.ones(6, 2, 4)
    if isinstance(module, LIFRecurrentCell):
        state, outs = None, []
        for x_t in x:
            z, state = module(x_t, state)
            outs.append(z)
        loss = torch.stack(outs).sum() + state.v.sum()
    else:
        z, state = module(x)
        loss = z.sum() + state.v.sum()
    loss.backward()
    return module.recurrent_weights.grad
