"""snncore.compat.norse, issue "Norse drop-in compatibility" items 5 (the remaining step
functions: ``ada_lif_step``, ``lif_ex_current_encoder``, ``lif_adex_current_encoder``) and 7 (the
reference's Izhikevich state names).  Comparisons with the reference (norse 1.1.0) skip where it
is not installed; the rest need only snncore and its plugins.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close


def _reference():
    return pytest.importorskip("norse.torch", reason="the reference norse 1.1.0 is not installed")


def _rand(*shape, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * scale


# -- item 5: current encoders of LIFEx and LIFAdEx ----------------------------------------------
def test_current_encoders_live_in_the_adex_plugin_and_at_the_reference_paths(norse_compat):
    import snn_adex.functional as f

    ns = norse_compat.torch.functional
    assert ns.lif_ex.lif_ex_current_encoder is f.lif_ex_current_encoder
    assert ns.lif_adex.lif_adex_current_encoder is f.lif_adex_current_encoder
    assert norse_compat.torch.functional.lsnn.ada_lif_step.__module__.endswith("_functional")


def test_lif_ex_current_encoder_is_the_feed_forward_step_without_a_synapse():
    from snn_adex import LIFExFeedForwardState, LIFExParameters
    from snn_adex.functional import lif_ex_current_encoder, lif_ex_feed_forward_step

    p = LIFExParameters(v_reset=torch.tensor(-0.1))
    x, v = _rand(4, 6, scale=8.0), _rand(4, 6, scale=1.2, seed=1)
    z, v_new = lif_ex_current_encoder(x, v, p)
    z_ff, state = lif_ex_feed_forward_step(x, LIFExFeedForwardState(v, torch.zeros_like(v)), p)
    assert torch.equal(z, z_ff) and torch.equal(v_new, state.v)
    assert 0 < z.sum() < z.numel()  # both branches taken
    assert torch.all(v_new[z.bool()] == -0.1)


def test_lif_ex_current_encoder_matches_the_reference(norse_compat):
    norse = _reference()
    ours = norse_compat.torch.functional.lif_ex
    theirs = norse.functional.lif_ex
    v = _rand(4, 6, scale=1.2, seed=1)
    p_o, p_t = ours.LIFExParameters(), theirs.LIFExParameters()
    for t in range(20):
        x = _rand(4, 6, scale=120.0, seed=10 + t)
        z_o, v_o = ours.lif_ex_current_encoder(x, v, p_o)
        z_t, v_t = theirs.lif_ex_current_encoder(x, v, p_t)
        assert torch.equal(z_o, z_t)
        assert_close(v_o, v_t)
        v = v_t
    assert z_t.sum() > 0


def test_lif_adex_current_encoder_integrates_the_adaptation_current():
    from snn_adex import LIFAdExFeedForwardState, LIFAdExParameters
    from snn_adex.functional import lif_adex_current_encoder, lif_adex_feed_forward_step

    p = LIFAdExParameters(adaptation_spike=torch.tensor(0.5), tau_ada_inv=torch.tensor(20.0))
    x, v, a = _rand(4, 6, scale=8.0), _rand(4, 6, scale=1.2, seed=1), _rand(4, 6, seed=2)
    z, v_new, a_new = lif_adex_current_encoder(x, v, a, p)
    zero = torch.zeros_like(v)
    z_ff, state = lif_adex_feed_forward_step(x, LIFAdExFeedForwardState(v, zero, a), p)
    assert torch.equal(z, z_ff) and torch.equal(v_new, state.v) and torch.equal(a_new, state.a)
    dt = 0.001
    euler = a + dt * p.tau_ada_inv * (p.adaptation_current * (v - p.v_leak) - a)
    assert_close(a_new, euler + z * p.adaptation_spike)
    assert 0 < z.sum() < z.numel()


def test_lif_adex_current_encoder_spikes_and_voltage_match_the_reference(norse_compat):
    norse = _reference()
    ours = norse_compat.torch.functional.lif_adex
    theirs = norse.functional.lif_adex
    x, v, a = _rand(4, 6, scale=8.0), _rand(4, 6, scale=1.2, seed=1), _rand(4, 6, seed=2)
    z_o, v_o, a_o = ours.lif_adex_current_encoder(x, v, a, ours.LIFAdExParameters())
    z_t, v_t, a_t = theirs.lif_adex_current_encoder(x, v, a, theirs.LIFAdExParameters())
    assert torch.equal(z_o, z_t) and 0 < z_t.sum() < z_t.numel()
    assert_close(v_o, v_t)
    # The documented difference: the reference returns tau_ada_inv·(...) + z·adaptation_spike
    # (the derivative, no "a + dt·"); ours the Euler-integrated adaptation current.
    assert not torch.allclose(a_o, a_t)


# -- item 5: ada_lif_step ------------------------------------------------------------------------
def _ada_inputs(seed=0):
    n, k = 5, 4
    z = (_rand(3, n, seed=seed) > 0.5).float()
    v = _rand(3, n, scale=1.2, seed=seed + 1)
    i, b = _rand(3, n, scale=3.0, seed=seed + 2), _rand(3, n, seed=seed + 3)
    x = (_rand(3, k, seed=seed + 4) > 0.5).float()
    g = torch.Generator().manual_seed(seed + 5)
    return (z, v, i, b), x, torch.randn(n, k, generator=g), torch.randn(n, n, generator=g)


def test_ada_lif_step_follows_its_equations(norse_compat):
    from snn_lsnn import LSNNParameters, LSNNState

    (z, v, i, b), x, w_in, w_rec = _ada_inputs()
    p = LSNNParameters(tau_adapt_inv=torch.tensor(50.0), v_reset=torch.tensor(-0.2))
    step = norse_compat.torch.functional.lsnn.ada_lif_step
    z_new, s = step(x, LSNNState(z, v, i, b), w_in, w_rec, p)
    dt = 0.001
    v1 = v + dt * p.tau_mem_inv * ((p.v_leak - v) + i - b)
    assert torch.equal(z_new, (v1 > p.v_th).float()) and 0 < z_new.sum() < z_new.numel()
    assert isinstance(s, LSNNState) and torch.equal(s.z, z_new)
    assert_close(s.v, v1 - z_new * (p.v_th - p.v_reset))  # reset by subtraction
    assert_close(s.b, b - dt * p.tau_adapt_inv * b + p.beta * z_new)
    assert_close(s.i, i - dt * p.tau_syn_inv * i + x @ w_in.T + z @ w_rec.T)


def test_ada_lif_step_matches_the_reference_over_steps(norse_compat):
    norse = _reference()
    ours, theirs = norse_compat.torch.functional.lsnn, norse.functional.lsnn
    (z, v, i, b), _, w_in, w_rec = _ada_inputs(seed=7)
    s_o, s_t = ours.LSNNState(z, v, i, b), theirs.LSNNState(z, v, i, b)
    p_o = ours.LSNNParameters(tau_adapt_inv=torch.tensor(50.0))
    p_t = theirs.LSNNParameters(tau_adapt_inv=torch.tensor(50.0))
    total = 0.0
    for t in range(30):
        x = (_rand(3, 4, seed=100 + t) > 0.4).float()
        z_o, s_o = ours.ada_lif_step(x, s_o, w_in, w_rec, p_o)
        z_t, s_t = theirs.ada_lif_step(x, s_t, w_in, w_rec, p_t)
        assert torch.equal(z_o, z_t)
        for a, c in zip(s_o, s_t, strict=True):
            assert_close(a, c)
        total += float(z_t.sum())
    assert total > 0


# -- item 7: the reference's Izhikevich state names ---------------------------------------------
def test_izhikevich_state_is_v_u_and_the_recurrent_state_z_v_u(norse_compat):
    import snn_izhikevich

    ns = norse_compat.torch
    state = ns.IzhikevichState(v=torch.tensor(-70.0), u=torch.tensor(-14.0))
    assert state._fields == ("v", "u")
    assert ns.IzhikevichRecurrentState._fields == ("z", "v", "u")
    assert ns.IzhikevichState is snn_izhikevich.IzhikevichFeedForwardState
    assert ns.IzhikevichRecurrentState is snn_izhikevich.IzhikevichState
    for path in (ns.functional.izhikevich, ns.module.izhikevich):
        assert path.IzhikevichState is ns.IzhikevichState
        assert path.IzhikevichRecurrentState is ns.IzhikevichRecurrentState
    assert type(ns.tonic_spiking.s) is ns.IzhikevichState
    assert type(ns.functional.izhikevich.create_izhikevich_spiking_behavior(
        0.02, 0.2, -65, 6, -70, -70
    ).s) is ns.IzhikevichState  # fmt: skip


def test_izhikevich_layouts_match_the_reference(norse_compat):
    norse = _reference()
    ns = norse_compat.torch
    ref = norse.functional.izhikevich
    for ours_b, theirs_b in ((ns.tonic_spiking, ref.tonic_spiking), (ns.dap, ref.dap)):
        assert type(ours_b.s)._fields == type(theirs_b.s)._fields
        assert_close(ours_b.s.v, theirs_b.s.v.detach()) and assert_close(ours_b.s.u, theirs_b.s.u)
    assert ns.IzhikevichRecurrentState._fields == ref.IzhikevichRecurrentState._fields


def test_izhikevich_cells_take_and_return_the_reference_layouts(norse_compat):
    norse = _reference()
    ns = norse_compat.torch
    x = torch.full((2, 3), 10.0)
    start = ns.IzhikevichState(v=torch.full((2, 3), -60.0), u=torch.full((2, 3), -12.0))
    ref_start = norse.functional.izhikevich.IzhikevichState(*start)
    cell, ref_cell = (
        ns.IzhikevichCell(ns.tonic_spiking),
        norse.IzhikevichCell(norse.functional.izhikevich.tonic_spiking),
    )
    s, s_ref = start, ref_start
    for _ in range(40):
        z, s = cell(x, s)
        z_ref, s_ref = ref_cell(x, s_ref)
        assert type(s) is ns.IzhikevichState and torch.equal(z, z_ref)
        assert_close(s.v, s_ref.v) and assert_close(s.u, s_ref.u)
    # a state of the reference's own class is accepted too (same fields)
    z, s = cell(x, ref_start)
    assert type(s) is ns.IzhikevichState


def test_izhikevich_recurrent_cell_round_trips_the_recurrent_state(norse_compat):
    ns = norse_compat.torch
    cell = ns.IzhikevichRecurrentCell(3, 4, ns.tonic_spiking)
    state = ns.IzhikevichRecurrentState(
        z=torch.zeros(2, 4), v=torch.full((2, 4), -65.0), u=torch.full((2, 4), -13.0)
    )
    _, new = cell(torch.ones(2, 3) * 5, state)
    assert type(new) is ns.IzhikevichRecurrentState and new.v.shape == (2, 4)
    _, again = cell(torch.ones(2, 3) * 5, new)  # the returned state goes back in
    assert type(again) is ns.IzhikevichRecurrentState and not torch.equal(again.v, new.v)
