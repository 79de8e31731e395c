"""Izhikevich steps: values worked by hand from MODELS.md, every variant, and the overflow guard.

With the defaults (a = 0.02, b = 0.2, c = −65, d = 6, sq = 0.04, mn = 5, bias = 140, v_th = 30,
tau_inv = 250) and dt = 0.001, h = tau_inv·dt = 0.25 and h·a = 0.005:

    v1 = v + 0.25·(0.04·v² + 5·v + 140 − u + x);   u1 = u + 0.005·(0.2·v − u)
    z = Θ(v1 − 30);   v' = (1 − z)·v1 − 65·z;   u' = u1 + 6·z

The default start is v = −70, u = b·v = −14, a fixed point:
0.04·4900 − 350 + 140 + 14 = 0 and 0.2·(−70) + 14 = 0.
Modules are moved to float64 so that the arithmetic below is exact to double precision.
"""

from __future__ import annotations

import pytest
import torch
from snn_izhikevich import (
    U_BOUND,
    V_BOUND,
    Izhikevich,
    IzhikevichCell,
    IzhikevichFeedForwardState,
    IzhikevichParameters,
    IzhikevichRecurrent,
    IzhikevichRecurrentCell,
    IzhikevichState,
)
from snn_izhikevich.functional import (
    izhikevich_feed_forward_step,
    izhikevich_recurrent_current_step,
    izhikevich_recurrent_step,
)
from torch.testing import assert_close

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# Neuron driven by x = 10 from the default start:
#   step 1: v = −70 + 0.25·(196 − 350 + 140 + 14 + 10) = −70 + 2.5 = −67.5
#           u = −14 + 0.005·(−14 + 14) = −14
#   step 2: 0.04·(−67.5)² = 182.25;  182.25 − 337.5 + 140 + 14 + 10 = 8.75
#           v = −67.5 + 0.25·8.75 = −65.3125;  u = −14 + 0.005·(−13.5 + 14) = −13.9975
#   step 3: 0.04·(−65.3125)² = 170.62890625;
#           170.62890625 − 326.5625 + 140 + 13.9975 + 10 = 8.06390625
#           v = −65.3125 + 0.25·8.06390625 = −63.2965234375
#           u = −13.9975 + 0.005·(0.2·(−65.3125) + 13.9975) = −13.9975 + 0.005·0.935 = −13.992825
DRIVEN = [(-67.5, -14.0), (-65.3125, -13.9975), (-63.2965234375, -13.992825)]


def test_cell_hand_worked_from_the_default_start():
    # neuron 0: x = 10 (DRIVEN above); neuron 1: x = 0 stays at the fixed point (−70, −14)
    cell = IzhikevichCell().double()
    state = None
    for v_exp, u_exp in DRIVEN:
        z, state = cell(t([[10.0, 0.0]]), state)
        assert isinstance(state, IzhikevichFeedForwardState)
        assert_close(z, t([[0.0, 0.0]]))
        assert_close(state.v, t([[v_exp, -70.0]]))
        assert_close(state.u, t([[u_exp, -14.0]]))


def test_cell_hand_worked_spike_and_reset():
    # neuron 0: v = 20, u = 0, x = 0:
    #   v1 = 20 + 0.25·(0.04·400 + 100 + 140 − 0) = 20 + 0.25·256 = 84 > 30 -> z = 1, v' = −65
    #   u1 = 0 + 0.005·(0.2·20 − 0) = 0.02;  u' = 0.02 + 6 = 6.02
    # neuron 1: v = 0, u = 200, x = 0 (just below a spike):
    #   v1 = 0 + 0.25·(0 + 0 + 140 − 200) = −15 -> z = 0;  u' = 200 + 0.005·(0 − 200) = 199
    state = IzhikevichFeedForwardState(v=t([20.0, 0.0]), u=t([0.0, 200.0]))
    z, state = IzhikevichCell().double()(t([0.0, 0.0]), state)
    assert_close(z, t([1.0, 0.0]))
    assert_close(state.v, t([-65.0, -15.0]))
    assert_close(state.u, t([6.02, 199.0]))


def test_cell_hand_worked_nondefault_parameters():
    # tau_inv = 1000 (h = 1), a = 0.1, b = 0.5, c = −50, d = 2, sq = 0.02, mn = 4, bias = 100,
    # v_th = 10; v = −10, u = 5, x = 3:
    #   v1 = −10 + (0.02·100 − 40 + 100 − 5 + 3) = −10 + 60 = 50 > 10 -> z = 1, v' = −50
    #   u1 = 5 + 0.1·(0.5·(−10) − 5) = 5 − 1 = 4;  u' = 4 + 2 = 6
    p = IzhikevichParameters(
        a=0.1, b=0.5, c=-50, d=2, sq=0.02, mn=4, bias=100, v_th=10, tau_inv=1000
    )
    state = IzhikevichFeedForwardState(v=t([-10.0]), u=t([5.0]))
    z, state = IzhikevichCell(p).double()(t([3.0]), state)
    assert_close(z, t([1.0]))
    assert_close(state.v, t([-50.0]))
    assert_close(state.u, t([6.0]))
    # the functional step agrees
    _z_f, s_f = izhikevich_feed_forward_step(
        t([3.0]), IzhikevichFeedForwardState(t([-10.0]), t([5.0])), IzhikevichParameters(
            a=t(0.1), b=t(0.5), c=t(-50.0), d=t(2.0), sq=t(0.02), mn=t(4.0), bias=t(100.0),
            v_th=t(10.0), tau_inv=t(1000.0),
        ),
    )  # fmt: skip
    assert_close(s_f.v, t([-50.0]))
    assert_close(s_f.u, t([6.0]))


def test_layer_hand_worked_three_steps():
    layer = Izhikevich(record_states=True).double()
    z, states = layer(t([[[10.0]]] * 3))  # (T = 3, batch 1, 1 neuron)
    assert_close(z, torch.zeros(3, 1, 1, dtype=F64))
    assert_close(states.v[:, 0, 0], t([v for v, _ in DRIVEN]))
    assert_close(states.u[:, 0, 0], t([u for _, u in DRIVEN]))
    _, final = Izhikevich().double()(t([[[10.0]]] * 3))
    assert_close(final.v, t([[DRIVEN[-1][0]]]))


# Recurrent, 2 inputs and 2 neurons: W_in = [[10, 0], [0, 1]], W_rec = [[0, 0], [40, 0]]
# (neuron 0 excites neuron 1).  Start z = 0, v = (20, −70), u = (0, −14).
#   step 1, x = (0, 0): current 0.  neuron 0 spikes as in the spike test: v' = −65, u' = 6.02;
#           neuron 1 stays at (−70, −14).  z = (1, 0).
#   step 2, x = (1, 1): current = W_in·x + W_rec·z = (10 + 0, 1 + 40) = (10, 41)
#           neuron 0: 0.04·4225 − 325 + 140 − 6.02 + 10 = −12.02;  v = −65 + 0.25·(−12.02)
#                     = −68.005;  u = 6.02 + 0.005·(−13 − 6.02) = 6.02 − 0.0951 = 5.9249
#           neuron 1: 196 − 350 + 140 + 14 + 41 = 41;  v = −70 + 10.25 = −59.75;  u = −14
W_IN = [[10.0, 0.0], [0.0, 1.0]]
W_REC = [[0.0, 0.0], [40.0, 0.0]]
REC_EXPECTED = [
    ([1.0, 0.0], [-65.0, -70.0], [6.02, -14.0]),
    ([0.0, 0.0], [-68.005, -59.75], [5.9249, -14.0]),
]


def _start() -> IzhikevichState:
    return IzhikevichState(z=t([[0.0, 0.0]]), v=t([[20.0, -70.0]]), u=t([[0.0, -14.0]]))


def test_recurrent_cell_hand_worked():
    cell = IzhikevichRecurrentCell(2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC))
    cell = cell.double()
    state = _start()
    for x, (z_exp, v_exp, u_exp) in zip(([0.0, 0.0], [1.0, 1.0]), REC_EXPECTED, strict=True):
        z, state = cell(t([x]), state)
        assert isinstance(state, IzhikevichState)
        assert_close(z, t([z_exp]))
        assert_close(state.z, t([z_exp]))
        assert_close(state.v, t([v_exp]))
        assert_close(state.u, t([u_exp]))


def test_recurrent_layer_hand_worked():
    layer = IzhikevichRecurrent(
        2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC), record_states=True
    ).double()
    z, states = layer(t([[[0.0, 0.0]], [[1.0, 1.0]]]), _start())
    assert_close(z[:, 0], t([e[0] for e in REC_EXPECTED]))
    assert_close(states.v[:, 0], t([e[1] for e in REC_EXPECTED]))
    assert_close(states.u[:, 0], t([e[2] for e in REC_EXPECTED]))


def test_reference_style_recurrent_step_weighs_its_inputs():
    p = IzhikevichParameters(
        **{k: t(v) for k, v in dict(a=0.02, b=0.2, c=-65, d=6, sq=0.04, mn=5, bias=140,
                                     v_th=30, tau_inv=250).items()}
    )  # fmt: skip
    state = _start()
    for x, (_z_exp, v_exp, u_exp) in zip(([0.0, 0.0], [1.0, 1.0]), REC_EXPECTED, strict=True):
        _z, state = izhikevich_recurrent_step(t([x]), state, t(W_IN), t(W_REC), p)
        assert_close(state.v, t([v_exp]))
        assert_close(state.u, t([u_exp]))
    # and equals the core's step given the summed current
    _, direct = izhikevich_recurrent_current_step(t([[0.0, 0.0]]), _start(), p)
    assert_close(direct.v, t([REC_EXPECTED[0][1]]))


def test_recurrent_default_start_and_no_autapses():
    cell = IzhikevichRecurrentCell(3, 4).double()
    assert torch.equal(cell.recurrent_weights.diagonal(), torch.zeros(4, dtype=F64))
    z, state = cell(torch.zeros(2, 3, dtype=F64))
    assert_close(state.v, torch.full((2, 4), -70.0, dtype=F64))  # the fixed point: unchanged
    assert_close(state.u, torch.full((2, 4), -14.0, dtype=F64))
    assert z.sum() == 0


# --------------------------------------------------------------------------------------------
# The overflow guard: v clamped to ±V_BOUND and u to ±U_BOUND before each step
# --------------------------------------------------------------------------------------------


def test_guard_bounds_are_the_documented_ones():
    assert V_BOUND == 1e4 and U_BOUND == 1e6


def test_guard_hand_worked_values():
    # neuron 0: v = −2e4 is used as −1e4:
    #   v1 = −1e4 + 0.25·(0.04·1e8 − 5e4 + 140 − 0) = −1e4 + 0.25·3950140 = 977535 -> spike, −65
    #   u1 = 0 + 0.005·(0.2·(−1e4) − 0) = −10;  u' = −10 + 6 = −4
    #   (unclamped the same step gives u' = 0.005·(−4000) + 6 = −14: the guard acts here)
    # neuron 1: u = 2e6 is used as 1e6, v = −70:
    #   v1 = −70 + 0.25·(196 − 350 + 140 − 1e6) = −70 − 250003.5 = −250073.5 (no spike)
    #   u' = 1e6 + 0.005·(−14 − 1e6) = 1e6 − 5000.07 = 994999.93
    state = IzhikevichFeedForwardState(v=t([-2e4, -70.0]), u=t([0.0, 2e6]))
    z, state = IzhikevichCell().double()(t([0.0, 0.0]), state)
    assert_close(z, t([1.0, 0.0]))
    assert_close(state.v, t([-65.0, -250073.5]))
    assert_close(state.u, t([-4.0, 994999.93]))


def test_guard_leaves_the_normal_range_untouched():
    # Inside the bounds the step is the plain formula of MODELS.md, also for large inputs.
    gen = torch.Generator().manual_seed(0)
    v = -100 + 130 * torch.rand(64, generator=gen, dtype=F64)
    u = -50 + 3000 * torch.rand(64, generator=gen, dtype=F64)
    x = 1e3 * (2 * torch.rand(64, generator=gen, dtype=F64) - 1)
    _, state = IzhikevichCell().double()(x, IzhikevichFeedForwardState(v, u))
    v1 = v + 0.25 * (0.04 * v**2 + 5 * v + 140 - u + x)
    u1 = u + 0.005 * (0.2 * v - u)
    z = (v1 > 30).double()
    assert_close(state.v, (1 - z) * v1 + z * -65.0)
    assert_close(state.u, u1 + 6 * z)


def test_guard_gradient_is_unchanged_inside_and_zero_outside():
    v = t([-70.0, -2e4]).requires_grad_()
    state = IzhikevichFeedForwardState(v, t([-14.0, 0.0]))
    _, new = izhikevich_feed_forward_step(t([0.0, 0.0]), state, _p64())
    new.u.sum().backward()
    # du'/dv = h·a·b = 0.005·0.2 = 0.001 inside; 0 where v was clamped
    assert_close(v.grad, t([0.001, 0.0]))


def _p64() -> IzhikevichParameters:
    return IzhikevichParameters(
        **{f: t(float(getattr(IzhikevichParameters(), f)))
           for f in ("a", "b", "c", "d", "sq", "mn", "bias", "v_th", "tau_inv", "alpha")}
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Gradients against finite differences (no spike in the window, so the step is smooth)
# --------------------------------------------------------------------------------------------


def test_layer_input_gradient_matches_finite_differences():
    layer = Izhikevich(method="heaviside").double()  # no surrogate term: the smooth part
    gen = torch.Generator().manual_seed(1)
    x = (5 + 3 * torch.randn(20, 2, 3, generator=gen, dtype=F64)).requires_grad_()

    def loss(inp):
        _z, s = layer(inp)
        return s.v.sum() + 0.1 * s.u.sum()

    with torch.no_grad():
        assert layer(x)[0].sum() == 0  # no spike: the loss is smooth in x
    assert torch.autograd.gradcheck(loss, (x,), eps=1e-6, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_bad_parameters_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="tau_inv must be > 0"):
        IzhikevichParameters(tau_inv=0.0)
    with pytest.raises(TypeError, match="real input"):  # integer spikes are cast
        IzhikevichCell()(torch.zeros(2, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="input_size=3"):
        IzhikevichRecurrentCell(3, 4)(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="unknown argument"):
        IzhikevichCell(tau=3)


def test_u_update_from_the_new_v_follows_izhikevichs_scripts():
    # u_update="new_v": u1 = u + h·a·(b·v1 − u) with the voltage after the update.  x = 10:
    #   step 1: v = −67.5 (as above);  u = −14 + 0.005·(0.2·(−67.5) + 14) = −13.9975
    #   step 2: 182.25 − 337.5 + 140 + 13.9975 + 10 = 8.7475;  v = −67.5 + 0.25·8.7475 = −65.313125
    #           u = −13.9975 + 0.005·(0.2·(−65.313125) + 13.9975) = −13.992825625
    # (the old-v order gives u = −14 after step 1, see DRIVEN)
    cell = IzhikevichCell(u_update="new_v").double()
    state = None
    for v_exp, u_exp in [(-67.5, -13.9975), (-65.313125, -13.992825625)]:
        _, state = cell(t([[10.0]]), state)
        assert_close(state.v, t([[v_exp]]))
        assert_close(state.u, t([[u_exp]]))


def test_u_update_rejects_other_orders():
    with pytest.raises(ValueError, match="u_update must be 'old_v' or 'new_v', got 'mid_v'"):
        IzhikevichParameters(u_update="mid_v")


@pytest.mark.parametrize("u_update", ["old_v", "new_v"])
def test_ten_thousand_steps_of_plus_minus_1e3_stay_finite(u_update):
    # All 20 presets side by side (one neuron per preset, 4 batch entries), float32, inputs of
    # ±1e3 drawn at random each step: without the guard the a < 0 presets overflow to inf and
    # then NaN within 9,000 steps.  Feed-forward layer, and recurrent layer (default weights
    # applied to the same ±1e3 inputs plus the recurrent spikes).
    from snn_izhikevich import BEHAVIORS

    names = list(BEHAVIORS)
    values = {
        f: torch.tensor([float(getattr(BEHAVIORS[n].p, f)) for n in names])
        for f in ("a", "b", "c", "d", "sq", "mn", "bias", "v_th", "tau_inv")
    }
    p = IzhikevichParameters(**values, u_update=u_update)
    v0 = torch.tensor([float(BEHAVIORS[n].s.v) for n in names]).expand(4, 20).clone()
    u0 = torch.tensor([float(BEHAVIORS[n].s.u) for n in names]).expand(4, 20).clone()
    gen = torch.Generator().manual_seed(7)
    x = 1e3 * (2.0 * torch.randint(0, 2, (10_000, 4, 20), generator=gen).float() - 1.0)
    with torch.no_grad():
        z, s = Izhikevich(p=p, record_states=True)(x, IzhikevichFeedForwardState(v0, u0))
        assert torch.isfinite(s.v).all() and torch.isfinite(s.u).all()
        assert z.sum() > 0 and set(z.unique().tolist()) <= {0.0, 1.0}
        layer = IzhikevichRecurrent(20, 20, p=p, record_states=True)
        z, s = layer(x, IzhikevichState(torch.zeros(4, 20), v0, u0))
        assert torch.isfinite(s.v).all() and torch.isfinite(s.u).all()
        assert z.sum() > 0 and set(z.unique().tolist()) <= {0.0, 1.0}
