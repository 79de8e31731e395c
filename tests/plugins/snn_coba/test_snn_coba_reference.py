"""snn-coba against the reference library, ``norse==1.1.0`` (skipped where it is not installed).

Feed-forward CobaLIF must agree over 1,000 steps (spikes equal, states within 1e-5 relative).
The reference's recurrent step has a bug we fix (it overwrites the input conductance with the
recurrent one), so the recurrent variants are compared where the bug does not matter — zero
input — and, with input, against the reference step given the input conductance it drops
(added to the state before its step), which is exactly the fixed step.

The reference's ``CobaLIFCell`` starts at ``v = 0``; ours at ``v_rest``.  Initial states are
passed explicitly.  Its release has no feed-forward module, so the feed-forward modules are
compared with its ``coba_lif_feed_forward_step``.
"""

from __future__ import annotations

import attrs
import pytest
import snn_coba
import torch
from torch.testing import assert_close

import snncore

norse = pytest.importorskip("norse.torch")
from norse.torch.functional.coba_lif import (  # noqa: E402
    coba_lif_feed_forward_step as ref_feed_forward_step,
)
from norse.torch.functional.coba_lif import coba_lif_step as ref_step  # noqa: E402

T = 1000
TOL = {"rtol": 1e-5, "atol": 1e-6}
FIELDS = ("v", "g_e", "g_i")
# Fast synapses and a smaller capacitance: conductances decay within tens of steps and the Euler
# step stays stable (dt·c_m_inv·g < 1), so rounding differences cannot grow.
FAST = {
    "tau_syn_exc_inv": 100.0,
    "tau_syn_inh_inv": 50.0,
    "c_m_inv": 2.0,
    "g_l": 0.5,
    "e_rev_I": -80.0,
    "e_rev_E": 40.0,
    "v_rest": -30.0,
    "v_reset": -60.0,
    "v_thresh": -15.0,
    "alpha": 50.0,
}
CASES = [pytest.param({}, id="defaults"), pytest.param(FAST, id="fast")]


def _parameters(kwargs: dict, method: str = "super", dtype=torch.float32):
    ours = snn_coba.CobaLIFParameters(method=method, **kwargs)
    fields = {
        f.name: torch.as_tensor(getattr(ours, f.name), dtype=dtype)
        for f in attrs.fields(type(ours))
        if f.name not in ("method", "alpha")
    }
    return ours, norse.CobaLIFParameters(method="super", alpha=float(ours.alpha), **fields)


def _assert_spiking(z: torch.Tensor) -> None:
    rate = z.float().mean().item()
    assert 0.005 < rate < 0.5, f"spike rate {rate}"


def _feed_forward_input(kwargs: dict, shape, seed: int, dtype=torch.float32) -> torch.Tensor:
    """Signed input: default parameters integrate for seconds, so they need a small, mostly
    excitatory input; the fast synapses need a larger one."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape, generator=gen)
    x = 0.002 + 0.01 * noise if not kwargs else 2.0 + 3.0 * noise
    return x.to(dtype)


@pytest.mark.parametrize("kwargs", CASES)
def test_feed_forward_layer_and_cell_match_reference(kwargs):
    p_ours, p_norse = _parameters(kwargs)
    x = _feed_forward_input(kwargs, (T, 4, 2, 3), seed=1)
    start = torch.full((4, 2, 3), float(p_ours.v_rest)), torch.zeros(4, 2, 3)
    with torch.no_grad():
        z, s = snn_coba.CobaLIF(p_ours, record_states=True)(x)  # our default initial state
        cell = snn_coba.CobaLIFFeedForwardCell(p_ours)
        s_ref = norse.CobaLIFFeedForwardState(v=start[0], g_e=start[1], g_i=start[1])
        s_cell = None
        spikes_ref = []
        for step, x_t in enumerate(x):
            z_ref, s_ref = ref_feed_forward_step(x_t, s_ref, p_norse)
            z_cell, s_cell = cell(x_t, s_cell)
            spikes_ref.append(z_ref)
            assert torch.equal(z_cell, z_ref)
            for name in FIELDS:
                assert_close(getattr(s_cell, name), getattr(s_ref, name), **TOL, msg=name)
                assert_close(getattr(s, name)[step], getattr(s_ref, name), **TOL, msg=name)
    _assert_spiking(torch.stack(spikes_ref))
    assert torch.equal(z, torch.stack(spikes_ref))
    _report(f"CobaLIF layer {'custom' if kwargs else 'defaults'}", s, s_ref, step=-1)


def _report(label: str, s, s_ref, step=None) -> None:
    """Print the largest deviation per state variable (``pytest -s``); ``step=-1`` compares our
    recorded states' last step with a reference state of one step."""
    parts = []
    for name in FIELDS:
        mine = getattr(s, name) if step is None else getattr(s, name)[step]
        parts.append(f"{name}: max|Δ|={float((mine - getattr(s_ref, name)).abs().max()):.3g}")
    print(f"[{label}] " + "  ".join(parts))


def _weights(input_size: int, hidden_size: int, scale: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    w_in = scale * torch.randn(hidden_size, input_size, generator=gen)
    w_rec = scale * torch.randn(hidden_size, hidden_size, generator=gen)
    return w_in, w_rec.fill_diagonal_(0.0)


def _reference_run(x, state, w_in, w_rec, p_norse, add_dropped_input: bool):
    """The reference's recurrent step over time; with ``add_dropped_input`` the input conductance
    it overwrites is added to the state first, which makes it the fixed step."""
    spikes, states = [], []
    for x_t in x:
        if add_dropped_input:
            state = state._replace(
                g_e=state.g_e + torch.nn.functional.linear(x_t, torch.relu(w_in)),
                g_i=state.g_i + torch.nn.functional.linear(x_t, torch.relu(-w_in)),
            )
        z, state = ref_step(x_t, state, w_in, w_rec, p_norse)
        spikes.append(z)
        states.append(state)
    return torch.stack(spikes), states


# (parameters, weight scale, input spike rate): regimes in which neurons spike now and then
RECURRENT_CASES = [
    pytest.param({}, 0.02, 0.2, id="defaults"),
    pytest.param(FAST, 6.0, 0.2, id="fast"),
]


@pytest.mark.parametrize(("kwargs", "scale", "rate"), RECURRENT_CASES)
def test_recurrent_with_input_matches_reference_plus_the_input_it_drops(kwargs, scale, rate):
    p_ours, p_norse = _parameters(kwargs)
    w_in, w_rec = _weights(6, 10, scale, seed=2)
    x = (torch.rand(T, 4, 6, generator=torch.Generator().manual_seed(3)) < rate).float()
    v0 = torch.full((4, 10), float(p_ours.v_rest))
    zeros = torch.zeros(4, 10)
    layer = snn_coba.CobaLIFRecurrent(
        6, 10, p_ours, input_weights=w_in, recurrent_weights=w_rec, record_states=True
    )
    with torch.no_grad():
        z, s = layer(x)
        z_ref, s_ref = _reference_run(
            x, norse.CobaLIFState(zeros, v0, zeros, zeros), w_in, w_rec, p_norse, True
        )
    _assert_spiking(z_ref)
    assert torch.equal(z, z_ref)
    for step, state in enumerate(s_ref):
        for name in FIELDS:
            assert_close(getattr(s, name)[step], getattr(state, name), **TOL, msg=name)
    stacked = type(s_ref[0])(*(torch.stack(fields) for fields in zip(*s_ref, strict=True)))
    _report(f"CobaLIFRecurrent {'custom' if kwargs else 'defaults'}", s, stacked)


@pytest.mark.parametrize(
    ("kwargs", "scale"), [pytest.param({}, 0.1, id="defaults"), pytest.param(FAST, 10.0, id="fast")]
)
def test_recurrent_cell_without_input_matches_reference(kwargs, scale):
    # Zero input: the bug does not matter, the reference's own step must agree.  Activity comes
    # from a random initial state (conductances, voltages, spikes) kept up by recurrent weights
    # with a positive (excitatory) bias.
    p_ours, p_norse = _parameters(kwargs)
    gen = torch.Generator().manual_seed(4)
    w_rec = (scale * (torch.randn(10, 10, generator=gen) + 0.3)).fill_diagonal_(0.0)
    w_in = torch.randn(10, 6)
    gen = torch.Generator().manual_seed(5)
    v_rest, v_thresh = float(p_ours.v_rest), float(p_ours.v_thresh)
    start = dict(
        z=(torch.rand(4, 10, generator=gen) < 0.5).float(),
        v=v_rest + (v_thresh - v_rest) * torch.rand(4, 10, generator=gen),
        g_e=0.05 * torch.rand(4, 10, generator=gen),
        g_i=0.05 * torch.rand(4, 10, generator=gen),
    )
    x = torch.zeros(T, 4, 6)
    cell = snn_coba.CobaLIFCell(6, 10, p_ours, input_weights=w_in, recurrent_weights=w_rec)
    with torch.no_grad():
        _, s_ref_all = _reference_run(x, norse.CobaLIFState(**start), w_in, w_rec, p_norse, False)
        state, spikes = snn_coba.CobaLIFState(**start), []
        for x_t, s_ref in zip(x, s_ref_all, strict=True):
            z, state = cell(x_t, state)
            assert torch.equal(z, s_ref.z)
            for name in FIELDS:
                assert_close(getattr(state, name), getattr(s_ref, name), **TOL, msg=name)
            spikes.append(z)
    _assert_spiking(torch.stack(spikes))


def test_reference_drops_the_input_conductance():
    # Documents the bug we fix: one neuron with an autapse, W_in = 3, W_rec = 4, g_e = 2.7,
    # z_prev = 1, x = 1.  Reference: g_e1 = 2.7 + 4 (input lost); ours: 2.7 + 3 + 4.
    p_ours, p_norse = _parameters({})
    state = dict(z=torch.ones(1, 1), v=torch.full((1, 1), -20.0), g_e=torch.full((1, 1), 2.7))
    state["g_i"] = torch.zeros(1, 1)
    w_in, w_rec = torch.full((1, 1), 3.0), torch.full((1, 1), 4.0)
    _, theirs = ref_step(torch.ones(1, 1), norse.CobaLIFState(**state), w_in, w_rec, p_norse)
    ours = snn_coba.CobaLIFCell(
        1, 1, p_ours, autapses=True, input_weights=w_in, recurrent_weights=w_rec
    )
    _, mine = ours(torch.ones(1, 1), snn_coba.CobaLIFState(**state))
    decay = 1 - 0.001 * 0.2
    assert_close(theirs.g_e, torch.full((1, 1), (2.7 + 4.0) * decay))
    assert_close(mine.g_e, torch.full((1, 1), (2.7 + 3.0 + 4.0) * decay))


# --------------------------------------------------------------------------------------------
# Gradients, float64: same spikes and gradients as the reference where its step is right
# --------------------------------------------------------------------------------------------


class _NorseSuperPlugin:
    @snncore.hookimpl
    def register_surrogates(self, register):
        register(snncore.Surrogate("norse_super", lambda x, alpha: 1.0 / (x.abs() + 1.0) ** 2))


F64 = torch.float64


def test_feed_forward_input_gradient_matches_reference(fresh_manager):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    p_ours, p_norse = _parameters(FAST, method="norse_super", dtype=F64)
    x = _feed_forward_input(FAST, (50, 3, 4), seed=6, dtype=F64)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=F64)
    start = torch.full((3, 4), float(p_ours.v_rest), dtype=F64), torch.zeros(3, 4, dtype=F64)

    x1 = x.clone().requires_grad_()
    z, s = snn_coba.CobaLIF(p_ours).double()(x1)
    ((z * w).sum() + s.v.sum()).backward()

    x2 = x.clone().requires_grad_()
    state = norse.CobaLIFFeedForwardState(v=start[0], g_e=start[1], g_i=start[1])
    spikes = []
    for x_t in x2.unbind(0):
        z_t, state = ref_feed_forward_step(x_t, state, p_norse)
        spikes.append(z_t)
    z_ref = torch.stack(spikes)
    ((z_ref * w).sum() + state.v.sum()).backward()
    _assert_spiking(z_ref)
    assert torch.equal(z.detach(), z_ref.detach())
    assert x1.grad.abs().sum() > 0
    assert_close(x1.grad, x2.grad)


def test_recurrent_gradients_match_fixed_reference(fresh_manager):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    p_ours, p_norse = _parameters(FAST, method="norse_super", dtype=F64)
    w_in, w_rec = (w.double() for w in _weights(4, 6, 1.5, seed=8))
    x = (torch.rand(50, 3, 4, generator=torch.Generator().manual_seed(9)) < 0.2).double()
    v0 = torch.full((3, 6), float(p_ours.v_rest), dtype=F64)
    zeros = torch.zeros(3, 6, dtype=F64)

    ours = snn_coba.CobaLIFRecurrent(
        4, 6, p_ours, input_weights=w_in, recurrent_weights=w_rec
    ).double()
    x1 = x.clone().requires_grad_()
    z, final = ours(x1)
    (z.sum() + final.v.sum()).backward()

    w_in2, w_rec2 = w_in.clone().requires_grad_(), w_rec.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    z_ref, states = _reference_run(
        x2.unbind(0), norse.CobaLIFState(zeros, v0, zeros, zeros), w_in2, w_rec2, p_norse, True
    )
    (z_ref.sum() + states[-1].v.sum()).backward()
    _assert_spiking(z_ref)
    assert torch.equal(z.detach(), z_ref.detach())
    assert_close(x1.grad, x2.grad)
    assert_close(ours.input_weights.grad, w_in2.grad)
    g_rec_ref = w_rec2.grad.clone().fill_diagonal_(0.0)  # our autapse hook zeroes the diagonal
    assert_close(ours.recurrent_weights.grad, g_rec_ref)
    assert ours.recurrent_weights.grad.abs().sum() > 0
