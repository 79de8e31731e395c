"""Multi-compartment LIF (snn-lif): hand-worked values in the reference's order.

One step (as the released reference): an ordinary recurrent LIF step giving ``(z, v_lif, i')``,
then ``v' = v_lif + dt·(g_coupling · v_lif)``.  Defaults and dt = 0.001 as in the LIF tests:
``v1 = v + 0.1·((v_leak − v) + i1)``, ``i' = 0.8·i1``.
"""

from __future__ import annotations

import torch
from snn_lif import LIFMCRecurrent, LIFMCRecurrentCell, LIFParameters, LIFState
from torch.testing import assert_close

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# W_in = [[1, 0], [0, 12]], W_rec = [[0, 3], [−1, 0]], g_coupling = [[−100, 100], [100, −100]]
# so dt·g_coupling = [[−0.1, 0.1], [0.1, −0.1]]:  v' = v_lif + 0.1·(other − self).
# x = [1, 1], then [0, 0], [0, 0].
#   step 1: current = [1, 12]
#       LIF: n0: v_lif = 0.1, i' = 0.8, z = 0;  n1: v1 = 1.2 -> z = 1, v_lif = 0, i' = 9.6
#       couple: v0' = 0.1 + 0.1·(0 − 0.1) = 0.09;  v1' = 0 + 0.1·(0.1 − 0) = 0.01
#   step 2: current = W_rec·[0, 1] = [3, 0]
#       n0: i1 = 3.8; v1 = 0.09 + 0.1·(−0.09 + 3.8) = 0.461; i' = 3.04; z = 0
#       n1: i1 = 9.6; v1 = 0.01 + 0.1·(−0.01 + 9.6) = 0.969; i' = 7.68; z = 0
#       couple: v0' = 0.461 + 0.1·(0.969 − 0.461) = 0.5118;  v1' = 0.969 − 0.0508 = 0.9182
#   step 3: current = [0, 0]
#       n0: i1 = 3.04; v1 = 0.5118 + 0.1·(−0.5118 + 3.04) = 0.76462; i' = 2.432; z = 0
#       n1: i1 = 7.68; v1 = 0.9182 + 0.1·(−0.9182 + 7.68) = 1.59438 -> z = 1, v_lif = 0
#           i' = 6.144
#       couple: v0' = 0.76462 + 0.1·(0 − 0.76462) = 0.688158;  v1' = 0 + 0.1·0.76462 = 0.076462
W_IN = [[1.0, 0.0], [0.0, 12.0]]
W_REC = [[0.0, 3.0], [-1.0, 0.0]]
G = [[-100.0, 100.0], [100.0, -100.0]]
X = [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
Z = [[0.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
V = [[0.09, 0.01], [0.5118, 0.9182], [0.688158, 0.076462]]
I = [[0.8, 9.6], [3.04, 7.68], [2.432, 6.144]]  # noqa: E741


def _set_g(module: torch.nn.Module) -> None:
    assert isinstance(module.g_coupling, torch.nn.Parameter)
    with torch.no_grad():
        module.g_coupling.copy_(t(G))


def test_lif_mc_recurrent_cell_hand_worked():
    cell = LIFMCRecurrentCell(2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC)).double()
    _set_g(cell)
    state = None
    for step in range(3):
        z, state = cell(t([X[step]]), state)
        assert isinstance(state, LIFState)
        assert_close(z, t([Z[step]]), msg=f"step {step + 1}")
        assert_close(state.z, t([Z[step]]))
        assert_close(state.v, t([V[step]]), msg=f"step {step + 1}")
        assert_close(state.i, t([I[step]]), msg=f"step {step + 1}")


def test_lif_mc_recurrent_layer_hand_worked():
    layer = LIFMCRecurrent(
        2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC), record_states=True
    ).double()
    _set_g(layer)
    z, states = layer(t(X).unsqueeze(1))
    assert_close(z, t(Z).unsqueeze(1))
    assert_close(states.v, t(V).unsqueeze(1))
    assert_close(states.i, t(I).unsqueeze(1))


def test_lif_mc_zero_coupling_is_plain_recurrent_lif():
    # g_coupling = 0: the first step of the LIF recurrent example, v = [0.1, 0], i = [0.8, 9.6]
    cell = LIFMCRecurrentCell(2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC)).double()
    with torch.no_grad():
        cell.g_coupling.zero_()
    z, s = cell(t([[1.0, 1.0]]))
    assert_close(z, t([[0.0, 1.0]]))
    assert_close(s.v, t([[0.1, 0.0]]))
    assert_close(s.i, t([[0.8, 9.6]]))


def test_lif_mc_nondefault_parameters_one_step():
    # v_leak = 0.2, v_th = 0.25; one neuron, W_in = [[1]], g = [[−100]] (dt·g = −0.1)
    # Start v = 0.2, i = 0, x = 1:  i1 = 1; v1 = 0.2 + 0.1·((0.2 − 0.2) + 1) = 0.3 > 0.25
    #   -> z = 1, v_lif = v_reset = 0; v' = 0 − 0.1·0 = 0;  i' = 0.8
    # next x = 0: i1 = 0.8; v1 = 0 + 0.1·(0.2 + 0.8) = 0.1 -> z = 0; v' = 0.1 − 0.1·0.1 = 0.09
    cell = LIFMCRecurrentCell(
        1,
        1,
        LIFParameters(v_leak=0.2, v_th=0.25),
        input_weights=t([[1.0]]),
        recurrent_weights=t([[0.0]]),
    ).double()
    with torch.no_grad():
        cell.g_coupling.fill_(-100.0)
    z, s = cell(t([[1.0]]))
    assert_close(z, t([[1.0]]))
    assert_close(s.v, t([[0.0]]))
    z, s = cell(t([[0.0]]), s)
    assert_close(z, t([[0.0]]))
    assert_close(s.v, t([[0.09]]))
    assert_close(s.i, t([[0.64]]))


def test_lif_mc_g_coupling_is_learnable():
    torch.manual_seed(0)
    layer = LIFMCRecurrent(3, 4)
    assert layer.g_coupling.shape == (4, 4)
    assert "g_coupling" in dict(layer.named_parameters())
    _, state = layer(torch.ones(10, 2, 3))
    state.v.sum().backward()
    assert layer.g_coupling.grad is not None
    assert layer.g_coupling.grad.abs().sum() > 0
