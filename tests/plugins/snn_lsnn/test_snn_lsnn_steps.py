"""LSNN (snn-lsnn): values worked out by hand from MODELS.md, and which spikes are detached.

Parameters below: defaults except ``tau_adapt_inv = 100`` and ``beta = 0.5``, with
``dt = 0.001``: ``dt·tau_mem_inv = 0.1``, ``dt·tau_syn_inv = 0.2``, ``dt·tau_adapt_inv = 0.1``:

    v1 = v + 0.1·((0 − v) + i);  i1 = 0.8·i;  b1 = b + 0.1·(1 − b)
    z = Θ(v1 − b1);  v' = (1 − z)·v1;  i' = i1 + x;  b' = b1 + 0.5·z

The input is added *after* the voltage update (the reference's order for LSNN), so an input at
step t first moves ``v`` at step t+1.  Modules run in float64 (``.double()``).
"""

from __future__ import annotations

import pytest
import torch
from snn_lsnn import (
    LSNN,
    LSNNCell,
    LSNNFeedForwardState,
    LSNNParameters,
    LSNNRecurrent,
    LSNNRecurrentCell,
    LSNNState,
)
from snn_lsnn.functional import lsnn_feed_forward_step, lsnn_recurrent_step
from torch.testing import assert_close

F64 = torch.float64
P = LSNNParameters(tau_adapt_inv=100.0, beta=0.5)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# Feed-forward example, two neurons; neuron 0 gets x = 12 at step 1, neuron 1 gets x = 1; then 0.
# Start: v = 0, i = 0, b = v_th = 1.
# neuron 0:
#   step 1: v1 = 0;  i1 = 0;  b1 = 1 + 0.1·0 = 1;  z = Θ(0 − 1) = 0;  v' = 0;  i' = 0 + 12 = 12; b' = 1
#   step 2: v1 = 0 + 0.1·12 = 1.2;  i1 = 9.6;  b1 = 1;  z = Θ(0.2) = 1;  v' = 0;  i' = 9.6;
#           b' = 1 + 0.5 = 1.5                                                 (threshold jumps)
#   step 3: v1 = 0 + 0.1·9.6 = 0.96;  i1 = 7.68;  b1 = 1.5 + 0.1·(1 − 1.5) = 1.45;  z = 0;
#           v' = 0.96; i' = 7.68; b' = 1.45                                    (relaxing)
#   step 4: v1 = 0.96 + 0.1·(−0.96 + 7.68) = 1.632;  i1 = 6.144;  b1 = 1.45 − 0.045 = 1.405;
#           z = Θ(1.632 − 1.405) = 1;  v' = 0;  i' = 6.144;  b' = 1.905
#   step 5: v1 = 0.6144;  i1 = 4.9152;  b1 = 1.905 − 0.0905 = 1.8145;  z = 0
#   step 6: v1 = 0.6144 + 0.1·(−0.6144 + 4.9152) = 1.04448;  i1 = 3.93216;
#           b1 = 1.8145 − 0.08145 = 1.73305;  z = Θ(1.04448 − 1.73305) = 0
#           (a LIF neuron with threshold 1 would spike here: the adaptation suppresses it)
# neuron 1 (never spikes, b stays 1):
#   step 1: v1 = 0;  i' = 1
#   step 2: v1 = 0.1;  i' = 0.8
#   step 3: v1 = 0.1 + 0.1·(−0.1 + 0.8) = 0.17;  i' = 0.64
#   step 4: v1 = 0.17 + 0.1·(−0.17 + 0.64) = 0.217;  i' = 0.512
#   step 5: v1 = 0.217 + 0.1·(−0.217 + 0.512) = 0.2465;  i' = 0.4096
#   step 6: v1 = 0.2465 + 0.1·(−0.2465 + 0.4096) = 0.26281;  i' = 0.32768
FF_X = [[12.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
FF_Z = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
FF_V = [[0.0, 0.0], [0.0, 0.1], [0.96, 0.17], [0.0, 0.217], [0.6144, 0.2465], [1.04448, 0.26281]]
FF_I = [[12.0, 1.0], [9.6, 0.8], [7.68, 0.64], [6.144, 0.512], [4.9152, 0.4096], [3.93216, 0.32768]]
FF_B = [[1.0, 1.0], [1.5, 1.0], [1.45, 1.0], [1.905, 1.0], [1.8145, 1.0], [1.73305, 1.0]]


def test_lsnn_cell_hand_worked_adapts_and_relaxes():
    cell = LSNNCell(P).double()
    state = None
    for step in range(6):
        z, state = cell(t([FF_X[step]]), state)
        assert isinstance(state, LSNNFeedForwardState)
        msg = f"step {step + 1}"
        assert_close(z, t([FF_Z[step]]), msg=msg)
        assert_close(state.v, t([FF_V[step]]), msg=msg)
        assert_close(state.i, t([FF_I[step]]), msg=msg)
        assert_close(state.b, t([FF_B[step]]), msg=msg)


def test_lsnn_layer_hand_worked():
    layer = LSNN(P, record_states=True).double()
    z, states = layer(t(FF_X).unsqueeze(1))  # (T = 6, B = 1, 2)
    assert_close(z, t(FF_Z).unsqueeze(1))
    assert_close(states.v, t(FF_V).unsqueeze(1))
    assert_close(states.i, t(FF_I).unsqueeze(1))
    assert_close(states.b, t(FF_B).unsqueeze(1))
    _, final = LSNN(P).double()(t(FF_X).unsqueeze(1))
    assert_close(final.b, t([FF_B[-1]]))


def test_lsnn_threshold_relaxes_back_to_v_th():
    # No input, v = i = 0, b = 2: b_k − 1 = 0.9^k·(2 − 1), so after k steps b = 1 + 0.9^k,
    # and never a spike (v stays 0).  After 60 steps 0.9^60 ≈ 0.0018.
    cell = LSNNCell(P).double()
    state = LSNNFeedForwardState(v=t([0.0]), i=t([0.0]), b=t([2.0]))
    for k in range(1, 61):
        z, state = cell(t([0.0]), state)
        assert z.item() == 0.0
        assert_close(state.b, t([1.0 + 0.9**k]), rtol=1e-12, atol=0.0)
    assert abs(state.b.item() - 1.0) < 2e-3


def test_lsnn_default_parameters_one_step():
    # Defaults: tau_adapt_inv = 1/800, beta = 1.8; dt·tau_adapt_inv = 1.25e-6.
    # From v = 1.2, i = 0, b = 1: v1 = 1.2 − 0.12 = 1.08; b1 = 1 + 1.25e-6·(1 − 1) = 1; z = 1;
    # v' = 0; b' = 1 + 1.8 = 2.8.  One more step: b = 2.8 + 1.25e-6·(1 − 2.8) = 2.8 − 2.25e-6.
    # (the defaults given as float64 numbers: float32 1.8 and 1/800 would be off by ~1e-8)
    p = LSNNParameters(tau_adapt_inv=t(1.0 / 800), beta=t(1.8))
    defaults = LSNNParameters()
    assert defaults.tau_adapt_inv.item() == pytest.approx(1.0 / 800, rel=1e-7)
    assert defaults.beta.item() == pytest.approx(1.8, rel=1e-7)
    cell = LSNNCell(p).double()
    z, s = cell(t([0.0]), LSNNFeedForwardState(v=t([1.2]), i=t([0.0]), b=t([1.0])))
    assert z.item() == 1.0
    assert_close(s.v, t([0.0]))
    assert_close(s.b, t([2.8]))
    _, s = cell(t([0.0]), s)
    assert_close(s.b, t([2.8 - 2.25e-6]), rtol=1e-14, atol=0.0)


def test_lsnn_initial_state_is_v_leak_and_v_th():
    # v_leak = 0.2, v_th = 0.7, no input: v1 = 0.2 + 0.1·(0.2 − 0.2) = 0.2, b1 = 0.7 + 0 = 0.7.
    p = LSNNParameters(v_leak=0.2, v_th=0.7)
    _, s = LSNNCell(p).double()(torch.zeros(3, 2, dtype=F64))
    assert_close(s.v, torch.full((3, 2), 0.2, dtype=F64))
    assert_close(s.b, torch.full((3, 2), 0.7, dtype=F64))
    _, s = LSNNRecurrentCell(2, 4, p).double()(torch.zeros(3, 2, dtype=F64))
    assert_close(s.z, torch.zeros(3, 4, dtype=F64))
    assert_close(s.v, torch.full((3, 4), 0.2, dtype=F64))
    assert_close(s.b, torch.full((3, 4), 0.7, dtype=F64))


def test_lsnn_per_neuron_beta():
    # Both neurons spike at step 2 of the example above (x = 12); beta = [0.5, 2]:
    # b' = 1 + beta = [1.5, 3].
    p = LSNNParameters(tau_adapt_inv=100.0, beta=torch.tensor([0.5, 2.0]))
    layer = LSNN(p).double()
    z, s = layer(t([[[12.0, 12.0]], [[0.0, 0.0]]]))
    assert_close(z, t([[[0.0, 0.0]], [[1.0, 1.0]]]))
    assert_close(s.b, t([[1.5, 3.0]]))


# Recurrent example: W_in = [[12, 0], [0, 1]], W_rec = [[0, 0], [5, 0]] (neuron 0 excites
# neuron 1), x = [1, 1] then [0, 0].  current_t = W_in·x_t + W_rec·z_{t−1}, added after (step 6).
#   step 1: current = [12, 1]
#       n0: v1 = 0, b1 = 1, z = 0; i' = 12;  n1: v1 = 0, z = 0; i' = 1
#   step 2: current = W_rec·[0, 0] = [0, 0]
#       n0: v1 = 1.2, z = 1, v' = 0, i' = 9.6, b' = 1.5
#       n1: v1 = 0.1, z = 0, i' = 0.8
#   step 3: current = W_rec·[1, 0] = [0, 5]
#       n0: v1 = 0.96, i1 = 7.68, b1 = 1.45, z = 0, i' = 7.68
#       n1: v1 = 0.1 + 0.1·(−0.1 + 0.8) = 0.17, i1 = 0.64, z = 0, i' = 0.64 + 5 = 5.64
#   step 4: current = [0, 0]
#       n0: v1 = 1.632, b1 = 1.405, z = 1, v' = 0, i' = 6.144, b' = 1.905
#       n1: v1 = 0.17 + 0.1·(−0.17 + 5.64) = 0.717, i' = 4.512, z = 0
#   step 5: current = W_rec·[1, 0] = [0, 5]
#       n0: v1 = 0.6144, i1 = 4.9152, b1 = 1.8145, z = 0
#       n1: v1 = 0.717 + 0.1·(−0.717 + 4.512) = 1.0965 > 1 -> z = 1, v' = 0;
#           i' = 3.6096 + 5 = 8.6096;  b' = 1 + 0.5 = 1.5
W_IN = [[12.0, 0.0], [0.0, 1.0]]
W_REC = [[0.0, 0.0], [5.0, 0.0]]
REC_X = [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
REC_Z = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
REC_V = [[0.0, 0.0], [0.0, 0.1], [0.96, 0.17], [0.0, 0.717], [0.6144, 0.0]]
REC_I = [[12.0, 1.0], [9.6, 0.8], [7.68, 5.64], [6.144, 4.512], [4.9152, 8.6096]]
REC_B = [[1.0, 1.0], [1.5, 1.0], [1.45, 1.0], [1.905, 1.0], [1.8145, 1.5]]


def test_lsnn_recurrent_cell_hand_worked():
    cell = LSNNRecurrentCell(2, 2, P, input_weights=t(W_IN), recurrent_weights=t(W_REC))
    cell = cell.double()
    state = None
    for step in range(5):
        z, state = cell(t([REC_X[step]]), state)
        assert isinstance(state, LSNNState)
        msg = f"step {step + 1}"
        assert_close(z, t([REC_Z[step]]), msg=msg)
        assert_close(state.z, t([REC_Z[step]]), msg=msg)
        assert_close(state.v, t([REC_V[step]]), msg=msg)
        assert_close(state.i, t([REC_I[step]]), msg=msg)
        assert_close(state.b, t([REC_B[step]]), msg=msg)


def test_lsnn_recurrent_layer_hand_worked():
    layer = LSNNRecurrent(
        2, 2, P, input_weights=t(W_IN), recurrent_weights=t(W_REC), record_states=True
    ).double()
    z, states = layer(t(REC_X).unsqueeze(1))
    assert_close(z, t(REC_Z).unsqueeze(1))
    for name, expected in (("z", REC_Z), ("v", REC_V), ("i", REC_I), ("b", REC_B)):
        assert_close(getattr(states, name), t(expected).unsqueeze(1), msg=name)


# --------------------------------------------------------------------------------------------
# Which spikes are differentiated: feed-forward keeps z in the reset and the threshold jump,
# the recurrent step detaches it there (as the reference).
# --------------------------------------------------------------------------------------------
# From v (leaf), i = 0, b (leaf) = 1, x = 0 (parameters P): v1 = 0.9·v, b1 = b + 0.1·(1 − b),
# so db1/db = 0.9.  v = 1.2: v1 = 1.08, b1 = 1, z = 1;  super: Θ' = 1/(100·0.08 + 1)² = 1/81.
#   dz/dv = 0.9/81 = 1/90;  dz/db = −0.9/81 = −1/90.
#   feed-forward: v' = (1 − z)·v1  ->  dv'/dv = 0.9·(1 − z) − v1·dz/dv = −1.08/90 = −0.012
#                 b' = b1 + 0.5·z  ->  db'/dv = 0.5/90 = 1/180;  db'/db = 0.9 − 0.5/90
#   recurrent:    dv'/dv = 0.9·(1 − z) = 0;  db'/dv = 0;  db'/db = 0.9


@pytest.mark.parametrize(
    ("recurrent", "dv_dv", "db_dv", "db_db"),
    [(False, -0.012, 1.0 / 180.0, 0.9 - 0.5 / 90.0), (True, 0.0, 0.0, 0.9)],
    ids=["feed-forward", "recurrent"],
)
def test_lsnn_reset_and_threshold_jump_gradients(recurrent, dv_dv, db_dv, db_db):
    v = t([1.2]).requires_grad_()
    b = t([1.0]).requires_grad_()
    zero = t([0.0])
    if recurrent:
        z, s = lsnn_recurrent_step(zero, LSNNState(z=zero, v=v, i=zero, b=b), P, 0.001)
    else:
        z, s = lsnn_feed_forward_step(zero, LSNNFeedForwardState(v=v, i=zero, b=b), P, 0.001)
    assert z.item() == 1.0
    dz = torch.autograd.grad(z.sum(), (v, b), retain_graph=True)
    assert_close(dz[0], t([1.0 / 90.0]))
    assert_close(dz[1], t([-1.0 / 90.0]))
    (grad,) = torch.autograd.grad(s.v.sum(), v, retain_graph=True)
    assert_close(grad, t([dv_dv]))
    grad_v, grad_b = torch.autograd.grad(s.b.sum(), (v, b), allow_unused=True)
    if recurrent:
        assert grad_v is None  # b' does not depend on v at all: the jump uses sg(z)
    else:
        assert_close(grad_v, t([db_dv]))
    assert_close(grad_b, t([db_db]))
