"""Refractory LIF (snn-refrac): values worked out by hand from MODELS.md, and the gradients of
the refractory mask.

LIF part with the default LIF parameters and ``dt = 0.001`` (``dt·tau_mem_inv = 0.1``,
``dt·tau_syn_inv = 0.2``):  i1 = i + x;  v1 = v + 0.1·(−v + i1);  i' = 0.8·i1;
z_lif = Θ(v1 − 1);  v_lif = (1 − z_lif)·v1.  Refractory part:  m = Θ(rho);
v' = (1 − m)·v_lif + m·v;  z = (1 − m)·z_lif;  rho' = (1 − z)·relu(rho − m) + z·rho_reset.
Modules run in float64 (``.double()``).
"""

from __future__ import annotations

import pytest
import torch
from snn_lif import LIFFeedForwardState, LIFParameters, LIFState
from snn_refrac import (
    LIFMCRefracRecurrent,
    LIFMCRefracRecurrentCell,
    LIFRefrac,
    LIFRefracCell,
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracRecurrent,
    LIFRefracRecurrentCell,
    LIFRefracState,
)
from snn_refrac.functional import lif_refrac_feed_forward_step, lif_refrac_recurrent_step
from torch.testing import assert_close

F64 = torch.float64
P2 = LIFRefracParameters(rho_reset=2.0)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# Feed-forward example, rho_reset = 2, two neurons: neuron 0 gets x = 25 at step 1 (then 0),
# neuron 1 gets x = 1 at step 1 (then 0).  Start v = 0, i = 0, rho = 0.
# neuron 0:
#   step 1 (rho 0, m 0): i1 = 25;    v1 = 2.5 -> z_lif 1, v_lif 0;   i' = 20;   z = 1; v' = 0;
#                        rho' = 0·relu(0) + 1·2 = 2
#   step 2 (rho 2, m 1): i1 = 20;    v1 = 2.0 -> z_lif 1 (blocked);  i' = 16;   z = 0;
#                        v' = v = 0 (frozen);  rho' = relu(2 − 1) = 1
#   step 3 (rho 1, m 1): i1 = 16;    v1 = 1.6 -> blocked;  i' = 12.8;  z = 0; v' = 0; rho' = 0
#   step 4 (rho 0, m 0): i1 = 12.8;  v1 = 1.28 -> z = 1;   i' = 10.24; v' = 0; rho' = 2
#   step 5 (rho 2, m 1): i1 = 10.24; v1 = 1.024 -> blocked; i' = 8.192; z = 0; v' = 0; rho' = 1
#   step 6 (rho 1, m 1): i1 = 8.192; v1 = 0.8192;  i' = 6.5536;  z = 0;  v' = 0 (frozen, not
#                        0.8192);  rho' = 0
#   step 7 (rho 0, m 0): i1 = 6.5536; v1 = 0.65536; i' = 5.24288; z = 0; v' = 0.65536; rho' = 0
#   (plain LIF would spike at steps 1–5.)
# neuron 1 (never spikes, so exactly LIF):
#   v1 = 0.1, 0.17, 0.217, 0.2465, 0.26281, 0.269297, 0.2685817
#        (each v1 = v + 0.1·(−v + i1) with i1 = 1, 0.8, 0.64, 0.512, 0.4096, 0.32768, 0.262144)
#   i' = 0.8, 0.64, 0.512, 0.4096, 0.32768, 0.262144, 0.2097152
FF_X = [[25.0, 1.0]] + [[0.0, 0.0]] * 6
FF_Z = [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
FF_V = [
    [0.0, 0.1],
    [0.0, 0.17],
    [0.0, 0.217],
    [0.0, 0.2465],
    [0.0, 0.26281],
    [0.0, 0.269297],
    [0.65536, 0.2685817],
]
FF_I = [
    [20.0, 0.8],
    [16.0, 0.64],
    [12.8, 0.512],
    [10.24, 0.4096],
    [8.192, 0.32768],
    [6.5536, 0.262144],
    [5.24288, 0.2097152],
]
FF_RHO = [[2.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]


def test_lif_refrac_cell_hand_worked_blocks_spikes_and_freezes_voltage():
    cell = LIFRefracCell(P2).double()
    state = None
    for step in range(7):
        z, state = cell(t([FF_X[step]]), state)
        assert isinstance(state, LIFRefracFeedForwardState)
        assert isinstance(state.lif, LIFFeedForwardState)
        msg = f"step {step + 1}"
        assert_close(z, t([FF_Z[step]]), msg=msg)
        assert_close(state.lif.v, t([FF_V[step]]), msg=msg)
        assert_close(state.lif.i, t([FF_I[step]]), msg=msg)
        assert_close(state.rho, t([FF_RHO[step]]), msg=msg)


def test_lif_refrac_layer_hand_worked():
    layer = LIFRefrac(P2, record_states=True).double()
    z, states = layer(t(FF_X).unsqueeze(1))
    assert_close(z, t(FF_Z).unsqueeze(1))
    assert_close(states.lif.v, t(FF_V).unsqueeze(1))
    assert_close(states.lif.i, t(FF_I).unsqueeze(1))
    assert_close(states.rho, t(FF_RHO).unsqueeze(1))
    _, final = LIFRefrac(P2).double()(t(FF_X).unsqueeze(1))
    assert_close(final.rho, t([FF_RHO[-1]]))
    assert_close(final.lif.v, t([FF_V[-1]]))


def test_lif_refrac_default_period_counts_down_from_five():
    # Default rho_reset = 5; x = 12 at step 1: v1 = 1.2 -> spike, rho = 5, v = 0, i = 9.6.
    # Steps 2..6: rho = 4, 3, 2, 1, 0 (m = 1 each time, since rho > 0 before the step), v frozen
    # at 0, i = 12·0.8^k.  Step 7: rho = 0 -> m = 0: i1 = 12·0.8^6 = 3.145728,
    # v1 = 0.1·3.145728 = 0.3145728, i' = 2.5165824.
    cell = LIFRefracCell().double()
    z, s = cell(t([12.0]))
    assert z.item() == 1.0 and s.rho.item() == 5.0
    for k, rho in zip(range(2, 7), (4.0, 3.0, 2.0, 1.0, 0.0), strict=True):
        z, s = cell(t([0.0]), s)
        assert z.item() == 0.0
        assert s.rho.item() == rho, f"step {k}"
        assert s.lif.v.item() == 0.0, f"step {k}"
        assert_close(s.lif.i, t([12.0 * 0.8**k]))
    z, s = cell(t([0.0]), s)
    assert_close(s.lif.v, t([0.3145728]))
    assert_close(s.lif.i, t([2.5165824]))


def test_lif_refrac_frozen_voltage_is_the_old_nonreset_value():
    # v_leak = 0.5, start v = 0.7, i = 0, rho = 1 (refractory), x = 3:
    # LIF: i1 = 3; v1 = 0.7 + 0.1·(−0.2 + 3) = 0.98; i' = 2.4; no spike.  m = 1 -> v' = 0.7,
    # rho' = relu(1 − 1) = 0.  Next step (m = 0), x = 0: v1 = 0.7 + 0.1·(−0.2 + 2.4) = 0.92.
    p = LIFRefracParameters(lif=LIFParameters(v_leak=0.5))
    cell = LIFRefracCell(p).double()
    state = LIFRefracFeedForwardState(LIFFeedForwardState(v=t([0.7]), i=t([0.0])), t([1.0]))
    _, s = cell(t([3.0]), state)
    assert_close(s.lif.v, t([0.7]))
    assert_close(s.lif.i, t([2.4]))
    assert s.rho.item() == 0.0
    _, s = cell(t([0.0]), s)
    assert_close(s.lif.v, t([0.92]))


# Recurrent example, rho_reset = 2: W_in = [[25, 0], [0, 1]], W_rec = [[0, 0], [2, 0]],
# x = [1, 1] then [0, 0].  current_t = W_in·x_t + W_rec·z_{t−1}, z the *masked* spikes.
#   step 1: current [25, 1]
#     n0: i1 25, v1 2.5 -> z = 1, v' 0, i' 20, rho' 2;   n1: i1 1, v1 0.1, i' 0.8
#   step 2: current W_rec·[1, 0] = [0, 2]
#     n0: i1 20, v1 2.0 blocked (m 1): z 0, v' 0, i' 16, rho' 1
#     n1: i1 0.8 + 2 = 2.8; v1 = 0.1 + 0.1·(−0.1 + 2.8) = 0.37; i' 2.24
#   step 3: current W_rec·[0, 0] = [0, 0]   (the blocked spike is not fed back)
#     n0: i1 16, v1 1.6 blocked: z 0, v' 0, i' 12.8, rho' 0
#     n1: i1 2.24; v1 = 0.37 + 0.1·(−0.37 + 2.24) = 0.557; i' 1.792
#   step 4: current [0, 0]
#     n0: i1 12.8, v1 1.28 -> z 1, v' 0, i' 10.24, rho' 2
#     n1: i1 1.792; v1 = 0.557 + 0.1·(−0.557 + 1.792) = 0.6805; i' 1.4336
#   step 5: current W_rec·[1, 0] = [0, 2]
#     n0: i1 10.24, v1 1.024 blocked: z 0, v' 0, i' 8.192, rho' 1
#     n1: i1 1.4336 + 2 = 3.4336; v1 = 0.6805 + 0.1·(−0.6805 + 3.4336) = 0.95581; i' 2.74688
#   step 6: current [0, 0]
#     n0: i1 8.192, v1 0.8192, z 0, v' 0 (frozen), i' 6.5536, rho' 0
#     n1: i1 2.74688; v1 = 0.95581 + 0.1·(−0.95581 + 2.74688) = 1.134917 -> z 1, v' 0,
#         i' 2.197504, rho' 2
W_IN = [[25.0, 0.0], [0.0, 1.0]]
W_REC = [[0.0, 0.0], [2.0, 0.0]]
REC_X = [[1.0, 1.0]] + [[0.0, 0.0]] * 5
REC_Z = [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
REC_V = [[0.0, 0.1], [0.0, 0.37], [0.0, 0.557], [0.0, 0.6805], [0.0, 0.95581], [0.0, 0.0]]
REC_I = [[20.0, 0.8], [16.0, 2.24], [12.8, 1.792], [10.24, 1.4336], [8.192, 2.74688]]
REC_I += [[6.5536, 2.197504]]
REC_RHO = [[2.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 2.0]]


def test_lif_refrac_recurrent_cell_hand_worked():
    cell = LIFRefracRecurrentCell(2, 2, P2, input_weights=t(W_IN), recurrent_weights=t(W_REC))
    cell = cell.double()
    state = None
    for step in range(6):
        z, state = cell(t([REC_X[step]]), state)
        assert isinstance(state, LIFRefracState) and isinstance(state.lif, LIFState)
        msg = f"step {step + 1}"
        assert_close(z, t([REC_Z[step]]), msg=msg)
        assert_close(state.lif.z, t([REC_Z[step]]), msg=msg)
        assert_close(state.lif.v, t([REC_V[step]]), msg=msg)
        assert_close(state.lif.i, t([REC_I[step]]), msg=msg)
        assert_close(state.rho, t([REC_RHO[step]]), msg=msg)


def test_lif_refrac_recurrent_layer_hand_worked():
    layer = LIFRefracRecurrent(
        2, 2, P2, input_weights=t(W_IN), recurrent_weights=t(W_REC), record_states=True
    ).double()
    z, states = layer(t(REC_X).unsqueeze(1))
    assert_close(z, t(REC_Z).unsqueeze(1))
    assert_close(states.lif.z, t(REC_Z).unsqueeze(1))
    assert_close(states.lif.v, t(REC_V).unsqueeze(1))
    assert_close(states.lif.i, t(REC_I).unsqueeze(1))
    assert_close(states.rho, t(REC_RHO).unsqueeze(1))


# Multi-compartment example (the reference's MC order: input added after, coupling per step on
# the old v, refractoriness switches off only leak and synaptic drive), rho_reset = 2:
# W_in = [[25, 0], [0, 2]], W_rec = 0, g_coupling = [[0, 0.5], [0, 0]] (n0 pulled by 0.5·v_n1),
# x = [1, 1] then 0.
#   step 1: v = [0, 0], i = [0, 0]: v1 = [0, 0]; z 0; i' = 0.8·0 + [25, 2] = [25, 2]; rho 0
#   step 2: n0: v1 = 0 + 0.1·25 + 0.5·0 = 2.5 -> z 1, v' 0; i' 20; rho' 2
#           n1: v1 = 0 + 0.1·2 = 0.2; i' 1.6
#   step 3: n0 (m 1): v1 = 0 + 0 + 0.5·0.2 = 0.1, z 0; i' 16; rho' 1     (coupling still acts)
#           n1: v1 = 0.2 + 0.1·(−0.2 + 1.6) = 0.34; i' 1.28
#   step 4: n0 (m 1): v1 = 0.1 + 0.5·0.34 = 0.27; i' 12.8; rho' 0
#           n1: v1 = 0.34 + 0.1·(−0.34 + 1.28) = 0.434; i' 1.024
#   step 5: n0 (m 0): v1 = 0.27 + 0.1·(−0.27 + 12.8) + 0.5·0.434 = 0.27 + 1.253 + 0.217 = 1.74
#           -> z 1, v' 0, i' 10.24, rho' 2
#           n1: v1 = 0.434 + 0.1·(−0.434 + 1.024) = 0.493; i' 0.8192
MC_W_IN = [[25.0, 0.0], [0.0, 2.0]]
MC_G = [[0.0, 0.5], [0.0, 0.0]]
MC_X = [[1.0, 1.0]] + [[0.0, 0.0]] * 4
MC_Z = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]
MC_V = [[0.0, 0.0], [0.0, 0.2], [0.1, 0.34], [0.27, 0.434], [0.0, 0.493]]
MC_I = [[25.0, 2.0], [20.0, 1.6], [16.0, 1.28], [12.8, 1.024], [10.24, 0.8192]]
MC_RHO = [[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0]]


def _mc(cls, **kwargs):
    module = cls(
        2, 2, P2, input_weights=t(MC_W_IN), recurrent_weights=torch.zeros(2, 2), **kwargs
    ).double()
    with torch.no_grad():
        module.g_coupling.copy_(t(MC_G))
    return module


def test_lif_mc_refrac_recurrent_cell_hand_worked():
    cell = _mc(LIFMCRefracRecurrentCell)
    state = None
    for step in range(5):
        z, state = cell(t([MC_X[step]]), state)
        msg = f"step {step + 1}"
        assert_close(z, t([MC_Z[step]]), msg=msg)
        assert_close(state.lif.v, t([MC_V[step]]), msg=msg)
        assert_close(state.lif.i, t([MC_I[step]]), msg=msg)
        assert_close(state.rho, t([MC_RHO[step]]), msg=msg)


def test_lif_mc_refrac_recurrent_layer_hand_worked():
    z, states = _mc(LIFMCRefracRecurrent, record_states=True)(t(MC_X).unsqueeze(1))
    assert_close(z, t(MC_Z).unsqueeze(1))
    assert_close(states.lif.v, t(MC_V).unsqueeze(1))
    assert_close(states.lif.i, t(MC_I).unsqueeze(1))
    assert_close(states.rho, t(MC_RHO).unsqueeze(1))


def test_lif_mc_refrac_spike_while_refractory_is_not_blocked():
    # The reference's MC step does not mask spikes.  One neuron, g = [[0.5]], v = 0.9, i = 3,
    # rho = 2 (m = 1), no input: v1 = 0.9 + 0·(...) + 0.5·0.9 = 1.35 -> z = 1, v' = 0;
    # i' = 0.8·3 = 2.4;  rho' = 0·relu(1) + 1·5 = 5 (default rho_reset).
    cell = LIFMCRefracRecurrentCell(1, 1, input_weights=t([[0.0]])).double()
    with torch.no_grad():
        cell.g_coupling.copy_(t([[0.5]]))
    state = LIFRefracState(LIFState(z=t([[0.0]]), v=t([[0.9]]), i=t([[3.0]])), t([[2.0]]))
    z, s = cell(t([[0.0]]), state)
    assert z.item() == 1.0
    assert_close(s.lif.v, t([[0.0]]))
    assert_close(s.lif.i, t([[2.4]]))
    assert s.rho.item() == 5.0


def test_lif_mc_refrac_zero_coupling_outside_refractory_is_old_order_lif():
    # With g = 0 and rho = 0 the MC step is LIF in the older order: from v = 0, i = 0, an input
    # of 12 moves v only at the next step: v1 = 0 then v1 = 1.2 -> spike.
    cell = LIFMCRefracRecurrentCell(1, 1, input_weights=t([[12.0]])).double()
    with torch.no_grad():
        cell.g_coupling.zero_()
    z1, s = cell(t([[1.0]]))
    z2, s = cell(t([[0.0]]), s)
    assert (z1.item(), z2.item()) == (0.0, 1.0)
    assert_close(s.lif.i, t([[9.6]]))


# --------------------------------------------------------------------------------------------
# Gradients of the refractory mask (surrogate of Θ(rho)) and of the spikes
# --------------------------------------------------------------------------------------------
# State v = 0.3, i = 0, rho = 1.5 (leaf), x = 0: LIF v1 = 0.3 − 0.03 = 0.27, z_lif = 0.
# m = Θ(1.5) = 1 with super surrogate Θ'(1.5) = 1/(100·1.5 + 1)² = 1/22801.
#   v' = (1 − m)·0.27 + m·0.3       -> dv'/drho = (0.3 − 0.27)/22801 = 0.03/22801
#   rho' = (1 − z)·relu(rho − m)    (z = (1 − m)·z_lif = 0, dz/drho = −z_lif·Θ' = 0)
#        = relu(0.5) = 0.5           -> drho'/drho = 1 − 1/22801


@pytest.mark.parametrize("recurrent", [False, True], ids=["feed-forward", "recurrent"])
def test_refractory_mask_gradient(recurrent):
    rho = t([1.5]).requires_grad_()
    zero = t([0.0])
    if recurrent:
        state = LIFRefracState(LIFState(z=zero, v=t([0.3]), i=zero), rho)
        z, s = lif_refrac_recurrent_step(zero, state, LIFRefracParameters(), 0.001)
    else:
        state = LIFRefracFeedForwardState(LIFFeedForwardState(v=t([0.3]), i=zero), rho)
        z, s = lif_refrac_feed_forward_step(zero, state, LIFRefracParameters(), 0.001)
    assert z.item() == 0.0
    assert_close(s.lif.v, t([0.3]))
    assert_close(s.rho, t([0.5]))
    (grad,) = torch.autograd.grad(s.lif.v.sum(), rho, retain_graph=True)
    assert_close(grad, t([0.03 / 22801.0]))
    (grad,) = torch.autograd.grad(s.rho.sum(), rho)
    assert_close(grad, t([1.0 - 1.0 / 22801.0]))


# Spike from v (leaf) = 1.2, i = 0, rho = 0, x = 0: v1 = 1.08, z_lif = 1, Θ'(0.08) = 1/81,
# dz_lif/dv = 0.9/81 = 1/90;  m = Θ(0) = 0 so z = z_lif and rho' = z·5 -> drho'/dv = 5/90.
#   feed-forward: v' = v_lif = (1 − z)·v1 -> dv'/dv = −1.08/90 = −0.012 (z differentiated)
#   recurrent:    LIF reset with sg(z)    -> dv'/dv = 0;  rho' still uses z: 5/90


@pytest.mark.parametrize(
    ("recurrent", "dv_dv"), [(False, -0.012), (True, 0.0)], ids=["feed-forward", "recurrent"]
)
def test_refrac_spike_gradients(recurrent, dv_dv):
    v = t([1.2]).requires_grad_()
    zero = t([0.0])
    if recurrent:
        state = LIFRefracState(LIFState(z=zero, v=v, i=zero), zero)
        z, s = lif_refrac_recurrent_step(zero, state, LIFRefracParameters(), 0.001)
    else:
        state = LIFRefracFeedForwardState(LIFFeedForwardState(v=v, i=zero), zero)
        z, s = lif_refrac_feed_forward_step(zero, state, LIFRefracParameters(), 0.001)
    assert z.item() == 1.0 and s.rho.item() == 5.0
    (grad,) = torch.autograd.grad(z.sum(), v, retain_graph=True)
    assert_close(grad, t([1.0 / 90.0]))
    (grad,) = torch.autograd.grad(s.lif.v.sum(), v, retain_graph=True)
    assert_close(grad, t([dv_dv]))
    (grad,) = torch.autograd.grad(s.rho.sum(), v)
    assert_close(grad, t([5.0 / 90.0]))
