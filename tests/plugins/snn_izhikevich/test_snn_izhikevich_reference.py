"""snn-izhikevich against the reference library, ``norse==1.1.0`` (skipped where not installed).

MODELS.md's acceptance test: the same parameters, inputs and initial state give equal spikes and
states within 1e-5 relative (float32) over at least 1,000 steps.  All 20 presets run side by
side as per-neuron parameter tensors (one neuron per preset), so one comparison covers them all.
``atol=1e-4`` (mV) covers values crossing zero on the upstroke.
"""

from __future__ import annotations

import attrs
import pytest
import snn_izhikevich as ours
import torch
from torch.testing import assert_close

import snncore

norse = pytest.importorskip("norse.torch")
norse_izhikevich = pytest.importorskip("norse.torch.functional.izhikevich")

T = 1000
TOL = {"rtol": 1e-5, "atol": 1e-4}
NAMES = list(ours.BEHAVIORS)
FIELDS = ("a", "b", "c", "d", "sq", "mn", "bias", "v_th", "tau_inv")


def _per_neuron(dtype=torch.float32, method="super"):
    """Both libraries' parameters with one neuron per preset, and the presets' start values."""
    values = {
        f: torch.tensor([float(getattr(ours.BEHAVIORS[n].p, f)) for n in NAMES], dtype=dtype)
        for f in FIELDS
    }
    p_ours = ours.IzhikevichParameters(**values, method=method)
    p_norse = norse_izhikevich.IzhikevichParameters(**values, method=method)
    v0 = torch.tensor([float(ours.BEHAVIORS[n].s.v) for n in NAMES], dtype=dtype)
    u0 = torch.tensor([float(ours.BEHAVIORS[n].s.u) for n in NAMES], dtype=dtype)
    return p_ours, p_norse, v0, u0


def _behavior(p, v0, u0):
    return norse_izhikevich.IzhikevichSpikingBehavior(p, norse_izhikevich.IzhikevichState(v0, u0))


def _currents(shape, seed, dtype=torch.float32):
    """Mean 5, s.d. 10: every preset fires now and then (about 6 % of steps overall)."""
    gen = torch.Generator().manual_seed(seed)
    return (5.0 + 10.0 * torch.randn(shape, generator=gen)).to(dtype)


def _spikes(shape, seed, rate=0.2):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < rate).float()


def _report(label, s, s_ref):
    # pytest -s shows the deviation per state variable
    dv, du = (float((s.v - s_ref.v).abs().max()), float((s.u - s_ref.u).abs().max()))
    print(f"[{label}] v: max|Δ|={dv:.3g}  u: max|Δ|={du:.3g}")


def _assert_spiking(z):
    rate = z.float().mean().item()
    assert 0.005 < rate < 0.5, f"spike rate {rate}"
    per_neuron = z.reshape(-1, z.shape[-1]).sum(0)
    assert (per_neuron > 0).sum() >= 15, per_neuron  # most presets take part


def test_layer_matches_reference_for_all_presets():
    p_ours, p_norse, v0, u0 = _per_neuron()
    x = _currents((T, 4, 20), seed=1)
    start_v, start_u = v0.expand(4, 20).clone(), u0.expand(4, 20).clone()
    with torch.no_grad():
        z_ref, s_ref = norse.Izhikevich(_behavior(p_norse, v0, u0), record_states=True)(
            x, norse_izhikevich.IzhikevichState(start_v, start_u)
        )
        z, s = ours.Izhikevich(p_ours, record_states=True)(
            x, ours.IzhikevichFeedForwardState(start_v, start_u)
        )
    _assert_spiking(z_ref)
    assert torch.equal(z, z_ref)
    _report("test_layer_matches_reference_for_all_presets", s, s_ref)
    assert_close(s.v, s_ref.v, **TOL)
    assert_close(s.u, s_ref.u, **TOL)


def test_cell_matches_reference_for_all_presets():
    p_ours, p_norse, v0, u0 = _per_neuron()
    x = _currents((T, 3, 20), seed=2)
    cell, theirs = ours.IzhikevichCell(p_ours), norse.IzhikevichCell(_behavior(p_norse, v0, u0))
    s = ours.IzhikevichFeedForwardState(v0.expand(3, 20).clone(), u0.expand(3, 20).clone())
    s_ref = norse_izhikevich.IzhikevichState(s.v.clone(), s.u.clone())
    spikes = []
    with torch.no_grad():
        for x_t in x:
            z, s = cell(x_t, s)
            z_ref, s_ref = theirs(x_t, s_ref)
            assert torch.equal(z, z_ref)
            assert_close(s.v, s_ref.v, **TOL)
            assert_close(s.u, s_ref.u, **TOL)
            spikes.append(z_ref)
    _assert_spiking(torch.stack(spikes))


def _weights(input_size, hidden_size, seed):
    """Weights on a 1/16 grid: with 0/1 spikes every weighted sum is then exact in any summation
    order, so both libraries feed the neurons bit-identical currents.  With arbitrary float32
    weights the two matmul paths (ours projects the whole input sequence in one GEMM) differ in
    the last bit after ~25 steps, and this strongly driven network, whose a < 0 presets run away
    to |u| ~ 4e4, amplifies that into different spikes within a few hundred steps: a test of
    GEMM rounding, not of the model."""
    gen = torch.Generator().manual_seed(seed)
    w_in = 15.0 * torch.randn(hidden_size, input_size, generator=gen) / input_size**0.5
    w_rec = 10.0 * torch.randn(hidden_size, hidden_size, generator=gen) / hidden_size**0.5
    return torch.round(16 * w_in) / 16, torch.round(16 * w_rec) / 16


def _recurrent_start(v0, u0, batch):
    return (
        torch.zeros(batch, 20),
        v0.expand(batch, 20).clone(),
        u0.expand(batch, 20).clone(),
    )


def test_recurrent_layer_matches_reference_for_all_presets():
    p_ours, p_norse, v0, u0 = _per_neuron()
    w_in, w_rec = _weights(6, 20, seed=3)
    mine = ours.IzhikevichRecurrent(
        6, 20, p_ours, input_weights=w_in, recurrent_weights=w_rec, record_states=True
    )
    theirs = norse.IzhikevichRecurrent(
        6,
        20,
        _behavior(p_norse, v0, u0),
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
        record_states=True,
    )
    assert torch.equal(mine.recurrent_weights.detach(), theirs.recurrent_weights.detach())
    x = _spikes((T, 4, 6), seed=4)
    start = _recurrent_start(v0, u0, 4)
    with torch.no_grad():
        z_ref, s_ref = theirs(x, norse_izhikevich.IzhikevichRecurrentState(*start))
        z, s = mine(x, ours.IzhikevichState(*start))
    _assert_spiking(z_ref)
    assert torch.equal(z, z_ref)
    assert torch.equal(s.z, s_ref.z)
    _report("test_recurrent_layer_matches_reference_for_all_presets", s, s_ref)
    assert_close(s.v, s_ref.v, **TOL)
    assert_close(s.u, s_ref.u, **TOL)


def test_recurrent_cell_matches_reference_for_all_presets():
    p_ours, p_norse, v0, u0 = _per_neuron()
    w_in, w_rec = _weights(5, 20, seed=5)
    mine = ours.IzhikevichRecurrentCell(5, 20, p_ours, input_weights=w_in, recurrent_weights=w_rec)
    theirs = norse.IzhikevichRecurrentCell(
        5,
        20,
        _behavior(p_norse, v0, u0),
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
    )
    x = _spikes((T, 3, 5), seed=6)
    start = _recurrent_start(v0, u0, 3)
    s, s_ref = ours.IzhikevichState(*start), norse_izhikevich.IzhikevichRecurrentState(*start)
    spikes = []
    with torch.no_grad():
        for x_t in x:
            z, s = mine(x_t, s)
            z_ref, s_ref = theirs(x_t, s_ref)
            assert torch.equal(z, z_ref)
            assert_close(s.v, s_ref.v, **TOL)
            assert_close(s.u, s_ref.u, **TOL)
            spikes.append(z_ref)
    _assert_spiking(torch.stack(spikes))


@pytest.mark.parametrize("name", NAMES)
def test_each_behavior_object_matches_the_reference_one(name):
    theirs = getattr(norse_izhikevich, "accomodation" if name == "accommodation" else name)
    mine = ours.BEHAVIORS[name]
    for field in FIELDS:
        assert float(getattr(mine.p, field)) == pytest.approx(float(getattr(theirs.p, field)))
    # start values: equal up to float32 rounding of b·v0 (the reference multiplies in float32)
    assert_close(mine.s.v, theirs.s.v.detach())
    assert_close(mine.s.u, theirs.s.u.to(torch.float32), rtol=1e-6, atol=0)
    # the modules built from either object, from the same start state, agree for 1,000 steps
    x = _currents((T, 2, 3), seed=7)
    start_v = torch.full((2, 3), float(theirs.s.v.detach()))
    start_u = torch.full((2, 3), float(theirs.s.u))
    with torch.no_grad():
        z_ref, s_ref = norse.Izhikevich(theirs, record_states=True)(
            x, norse_izhikevich.IzhikevichState(start_v, start_u)
        )
        z, s = ours.Izhikevich(mine, record_states=True)(
            x, ours.IzhikevichFeedForwardState(start_v, start_u)
        )
    assert torch.equal(z, z_ref)
    _report("test_each_behavior_object_matches_the_reference_one", s, s_ref)
    assert_close(s.v, s_ref.v, **TOL)
    assert_close(s.u, s_ref.u, **TOL)


# --------------------------------------------------------------------------------------------
# Gradients, float64 (the reference 1.1.0's SuperSpike ignores alpha: registered as norse_super)
# --------------------------------------------------------------------------------------------


class _NorseSuperPlugin:
    @snncore.hookimpl
    def register_surrogates(self, register):
        register(snncore.Surrogate("norse_super", lambda x, alpha: 1.0 / (x.abs() + 1.0) ** 2))


F64 = torch.float64


def test_layer_gradients_match_reference(fresh_manager):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    p_ours, _, v0, u0 = _per_neuron(F64, method="norse_super")
    p_norse = norse_izhikevich.IzhikevichParameters(
        **{f: getattr(p_ours, f) for f in FIELDS}, method="super"
    )
    x = _currents((60, 3, 20), seed=8, dtype=F64)

    def run(module, state_cls):
        inp = x.clone().requires_grad_()
        z, s = module(inp, state_cls(v0.expand(3, 20).clone(), u0.expand(3, 20).clone()))
        (z.sum() + 0.01 * s.v.sum() + 0.01 * s.u.sum()).backward()
        return z.detach(), inp.grad

    z, grad = run(ours.Izhikevich(p_ours).double(), ours.IzhikevichFeedForwardState)
    z_ref, grad_ref = run(
        norse.Izhikevich(_behavior(p_norse, v0, u0)), norse_izhikevich.IzhikevichState
    )
    assert z.sum() > 0 and torch.equal(z, z_ref)
    assert grad.abs().sum() > 0
    assert_close(grad, grad_ref)


def test_recurrent_gradients_match_reference(fresh_manager):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    p_ours, _, v0, u0 = _per_neuron(F64, method="norse_super")
    p_norse = attrs.asdict(p_ours, recurse=False)
    p_norse = norse_izhikevich.IzhikevichParameters(
        **{f: p_norse[f] for f in FIELDS}, method="super"
    )
    w_in, w_rec = (w.double() for w in _weights(4, 20, seed=9))
    mine = ours.IzhikevichRecurrent(4, 20, p_ours, input_weights=w_in, recurrent_weights=w_rec)
    mine = mine.double()
    theirs = norse.IzhikevichRecurrent(
        4,
        20,
        _behavior(p_norse, v0, u0),
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
    )
    x = _spikes((60, 3, 4), seed=10).double()

    def run(module, state_cls):
        start = (
            torch.zeros(3, 20, dtype=F64),
            v0.double().expand(3, 20),
            u0.double().expand(3, 20),
        )
        z, s = module(x, state_cls(*(s.clone() for s in start)))
        (z.sum() + 0.01 * s.v.sum()).backward()
        return z.detach(), module.input_weights.grad, module.recurrent_weights.grad

    z, g_in, g_rec = run(mine, ours.IzhikevichState)
    z_ref, g_in_ref, g_rec_ref = run(theirs, norse_izhikevich.IzhikevichRecurrentState)
    assert z.sum() > 0 and torch.equal(z, z_ref)
    assert_close(g_in, g_in_ref)
    # the reference keeps the autapse gradient; ours is zero on the diagonal (no autapses)
    off_diagonal = ~torch.eye(20, dtype=torch.bool)
    assert_close(g_rec[off_diagonal], g_rec_ref[off_diagonal])
    assert g_rec.abs().sum() > 0
