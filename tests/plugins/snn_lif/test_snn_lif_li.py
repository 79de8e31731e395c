"""LI, the leaky-integrator readout (snn-lif): hand-worked values and gradients.

Step (MODELS.md, defaults, dt = 0.001 so dt·tau_mem_inv = 0.1 and dt·tau_syn_inv = 0.2):

    i1 = i + x;  v' = v + 0.1·((v_leak − v) + i1);  i' = 0.8·i1;  output v'
"""

from __future__ import annotations

import pytest
import torch
from snn_lif import LI, LICell, LILinearCell, LIParameters, LIState
from torch.testing import assert_close

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# Neuron 0: x = 1, 1, 0 from rest (v_leak = 0)
#   step 1: i1 = 1;    v = 0 + 0.1·(0 + 1)           = 0.1;   i' = 0.8
#   step 2: i1 = 1.8;  v = 0.1 + 0.1·(−0.1 + 1.8)    = 0.27;  i' = 1.44
#   step 3: i1 = 1.44; v = 0.27 + 0.1·(−0.27 + 1.44) = 0.387; i' = 1.152
# Neuron 1: x = 0, 0, 0 from the explicit state v = 1.5, i = 0.  (v_leak = 0)
#   step 1: v = 1.5 + 0.1·(0 − 1.5)  = 1.35
#   step 2: v = 1.35 + 0.1·(−1.35)   = 1.215
#   step 3: v = 1.215 + 0.1·(−1.215) = 1.0935;  i stays 0
LI_X = [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
LI_V = [[0.1, 1.35], [0.27, 1.215], [0.387, 1.0935]]
LI_I = [[0.8, 0.0], [1.44, 0.0], [1.152, 0.0]]


def test_li_cell_hand_worked():
    cell = LICell().double()
    state = LIState(v=t([[0.0, 1.5]]), i=t([[0.0, 0.0]]))
    for step in range(3):
        v, state = cell(t([LI_X[step]]), state)
        assert isinstance(state, LIState)
        assert_close(v, t([LI_V[step]]))
        assert_close(state.v, t([LI_V[step]]))
        assert_close(state.i, t([LI_I[step]]))


def test_li_layer_hand_worked():
    layer = LI(record_states=True).double()
    x = t(LI_X).unsqueeze(1)  # (T=3, B=1, 2)
    v, states = layer(x, LIState(v=t([[0.0, 1.5]]), i=t([[0.0, 0.0]])))
    assert_close(v, t(LI_V).unsqueeze(1))
    assert_close(states.v, t(LI_V).unsqueeze(1))
    assert_close(states.i, t(LI_I).unsqueeze(1))


def test_li_cell_hand_worked_with_leak():
    # v_leak = 0.5, tau_mem_inv = 50 (dt·tau_mem_inv = 0.05), from rest v = 0.5, i = 0; x = 2, 0
    #   step 1: i1 = 2;   v = 0.5 + 0.05·((0.5 − 0.5) + 2) = 0.6;    i' = 1.6
    #   step 2: i1 = 1.6; v = 0.6 + 0.05·((0.5 − 0.6) + 1.6) = 0.675; i' = 1.28
    cell = LICell(LIParameters(v_leak=0.5, tau_mem_inv=50.0)).double()
    v, s = cell(t([2.0]))
    assert_close(v, t([0.6]))
    assert_close(s.i, t([1.6]))
    v, s = cell(t([0.0]), s)
    assert_close(v, t([0.675]))
    assert_close(s.i, t([1.28]))


def test_li_linear_cell_hand_worked():
    # W = [[1, 2], [−1, 0.5]]; x = [1, 1] then [0, 0].  W·[1, 1] = [3, −0.5]
    #   step 1: n0: i1 = 3;    v = 0.3;   i' = 2.4
    #           n1: i1 = −0.5; v = −0.05; i' = −0.4
    #   step 2: n0: i1 = 2.4;  v = 0.3 + 0.1·(−0.3 + 2.4)    = 0.51;   i' = 1.92
    #           n1: i1 = −0.4; v = −0.05 + 0.1·(0.05 − 0.4) = −0.085; i' = −0.32
    cell = LILinearCell(2, 2).double()
    with torch.no_grad():
        cell.input_weights.copy_(t([[1.0, 2.0], [-1.0, 0.5]]))
    v, s = cell(t([[1.0, 1.0]]))
    assert_close(v, t([[0.3, -0.05]]))
    assert_close(s.i, t([[2.4, -0.4]]))
    v, s = cell(t([[0.0, 0.0]]), s)
    assert_close(v, t([[0.51, -0.085]]))
    assert_close(s.v, t([[0.51, -0.085]]))
    assert_close(s.i, t([[1.92, -0.32]]))


def test_li_linear_cell_shapes_and_weight_gradient():
    torch.manual_seed(0)
    cell = LILinearCell(3, 5)
    assert cell.input_weights.shape == (5, 3)
    x = torch.rand(4, 3)
    v, s = cell(x)
    assert v.shape == s.v.shape == s.i.shape == (4, 5)
    v.sum().backward()
    assert cell.input_weights.grad is not None
    assert cell.input_weights.grad.abs().sum() > 0


def test_li_linear_cell_wrong_input_size():
    with pytest.raises(ValueError, match="input_size"):
        LILinearCell(3, 5)(torch.rand(4, 2))


def test_li_linear_cell_integer_input():
    with pytest.raises(TypeError, match="dtype"):
        LILinearCell(3, 5)(torch.ones(4, 3, dtype=torch.int64))


def test_li_layer_gradient_matches_finite_differences():
    layer = LI(LIParameters(v_leak=0.2)).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(15, 2, 3, generator=gen, dtype=F64).requires_grad_()
    w = torch.randn(15, 2, 3, generator=gen, dtype=F64)

    def loss(inp: torch.Tensor) -> torch.Tensor:
        v, final = layer(inp)
        return (w * v).sum() + final.i.square().sum()

    assert torch.autograd.gradcheck(loss, (x,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_li_layer_gradient_exact_one_step():
    # out_1 = 0.1·x_1 from rest, so d out_1/dx_1 = 0.1; a step later
    # out_2 = out_1 + 0.1·(−out_1 + 0.8·x_1 + x_2)
    #   -> d out_2/dx_1 = 0.1·0.9 + 0.1·0.8 = 0.17,  d out_2/dx_2 = 0.1
    layer = LI().double()
    x = torch.zeros(2, 1, 1, dtype=F64, requires_grad=True)
    v, _ = layer(x)
    (g1,) = torch.autograd.grad(v[0].sum(), x, retain_graph=True)
    assert_close(g1.flatten(), t([0.1, 0.0]))
    (g2,) = torch.autograd.grad(v[1].sum(), x)
    assert_close(g2.flatten(), t([0.17, 0.1]))
