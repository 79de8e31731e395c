"""snn-refrac against the reference library, ``norse==1.1.0`` (skipped where it is not installed).

MODELS.md's acceptance test: same parameters, inputs and initial state give equal spikes and
states within 1e-5 relative (float32) over at least 1,000 steps.  Each comparison prints the
largest absolute and relative deviation of each state variable (``pytest -s``).  The reference
has no feed-forward refractory *layer*: ours is compared with its cell stepped over time.

Deliberate difference: our ``super`` surrogate uses ``alpha`` (norse 1.1.0's ignores it); the
gradient tests register the reference's variant as ``norse_super``.
"""

from __future__ import annotations

from types import SimpleNamespace

import attrs
import pytest
import snn_lif
import snn_refrac
import torch
from torch.testing import assert_close

import snncore

norse = pytest.importorskip("norse.torch")
norse_refrac = pytest.importorskip("norse.torch.functional.lif_refrac")
norse_mc_refrac = pytest.importorskip("norse.torch.functional.lif_mc_refrac")

T = 1000
TOL = {"rtol": 1e-5, "atol": 1e-6}
F64 = torch.float64

PARAMETER_SETS = [
    pytest.param({}, 5.0, id="defaults"),
    pytest.param(
        {
            "tau_syn_inv": 150.0,
            "tau_mem_inv": 80.0,
            "v_leak": 0.1,
            "v_th": 0.6,
            "v_reset": -0.2,
            "alpha": 50.0,
        },
        3.0,
        id="custom",
    ),
]


def _parameters(kwargs, rho_reset, method="super", norse_method="super", dtype=torch.float32):
    lif = snn_lif.LIFParameters(method=method, **kwargs)
    fields = {
        f.name: torch.as_tensor(getattr(lif, f.name), dtype=dtype)
        for f in attrs.fields(type(lif))
        if f.name != "method"
    }
    theirs = norse.LIFRefracParameters(
        norse.LIFParameters(method=norse_method, **fields), torch.as_tensor(rho_reset, dtype=dtype)
    )
    return snn_refrac.LIFRefracParameters(lif=lif, rho_reset=rho_reset), theirs


def _currents(shape, seed, mean=0.8, std=2.0, dtype=torch.float32) -> torch.Tensor:
    """Strong and variable enough that neurons often reach threshold while still refractory."""
    gen = torch.Generator().manual_seed(seed)
    return (mean + std * torch.randn(shape, generator=gen)).to(dtype)


def _spikes(shape, seed, rate=0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < rate).float()


def _weights(input_size, hidden_size, seed, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    w_in = scale * torch.randn(hidden_size, input_size, generator=gen) / input_size**0.5
    w_rec = torch.randn(hidden_size, hidden_size, generator=gen) * (2.0 / hidden_size) ** 0.5
    return w_in, w_rec


def _flat(z, state) -> dict:
    """Spikes and the nested state's tensors under flat names: z, v, i (and lif.z), rho."""
    out = {"out": z, "v": state.lif.v, "i": state.lif.i, "rho": state.rho}
    if hasattr(state.lif, "z"):
        out["z"] = state.lif.z
    return out


def _loop(ours, theirs, x):
    """Both modules stepped over ``x``; returns time-stacked flat records of each."""
    s, s_ref, rows, rows_ref = None, None, [], []
    with torch.no_grad():
        for x_t in x:
            z, s = ours(x_t, s)
            z_ref, s_ref = theirs(x_t, s_ref)
            rows.append(_flat(z, s))
            rows_ref.append({k: v.expand_as(z_ref) for k, v in _flat(z_ref, s_ref).items()})
    return (
        SimpleNamespace(**{k: torch.stack([r[k] for r in rows]) for k in rows[0]}),
        SimpleNamespace(**{k: torch.stack([r[k] for r in rows_ref]) for k in rows_ref[0]}),
    )


def _blocked(theirs, currents, p_lif) -> int:
    """How often the reference's run reached the LIF threshold while refractory (a spike the
    refractory mask removed), recomputed from its recorded states and the input currents."""

    def previous(x, initial):
        return torch.cat([torch.full_like(x[:1], initial), x[:-1]])

    v_prev = previous(theirs.v, float(p_lif.v_leak))
    i_prev, rho_prev = previous(theirs.i, 0.0), previous(theirs.rho, 0.0)
    z_lif, _ = snn_lif.functional.lif_feed_forward_step(
        currents, snn_lif.LIFFeedForwardState(v_prev, i_prev), p_lif
    )
    return int(((rho_prev > 0) & (z_lif > 0)).sum())


def _recurrent_currents(x, theirs, w_in, w_rec):
    z_prev = torch.cat([torch.zeros_like(theirs.z[:1]), theirs.z[:-1]])
    return torch.nn.functional.linear(x, w_in) + torch.nn.functional.linear(z_prev, w_rec)


def _check(label, ours, theirs, rho_reset, blocked=None) -> None:
    """Spikes equal; states close (``atol`` 1e-6 of each variable's largest magnitude); print
    the largest deviations; and the refractory period really mattered: neurons were often
    refractory and (``blocked``) often reached threshold while refractory."""
    assert torch.equal(ours.out, theirs.out)
    rate = theirs.out.mean().item()
    assert 0.01 < rate < 1 / (rho_reset + 1) + 1e-9, f"spike rate {rate}"
    refractory = (theirs.rho > 0).float().mean().item()
    assert refractory > 0.1
    if blocked is not None:
        assert blocked > 20, f"only {blocked} blocked spikes"
    parts = []
    for name in ("v", "i", "rho"):
        a, b = getattr(ours, name), getattr(theirs, name)
        scale = max(1.0, b.abs().max().item())
        assert_close(a, b, rtol=TOL["rtol"], atol=TOL["atol"] * scale, msg=name)
        dev = (a - b).abs()
        rel = (dev / b.abs())[b.abs() > 1e-3 * scale]
        parts.append(
            f"{name}: max|Δ|={dev.max().item():.3g} (max|ref|={scale:.3g}), "
            f"max rel={rel.max().item() if rel.numel() else 0.0:.3g}"
        )
    blocked_text = "" if blocked is None else f", {blocked} spikes blocked"
    print(f"\n[{label}] spike rate {rate:.3f}, refractory {refractory:.2f}{blocked_text}")
    print("    " + "; ".join(parts))


def _name(kwargs) -> str:
    return "custom" if kwargs else "defaults"


# --------------------------------------------------------------------------------------------
# Forward, float32, 1,000 steps
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "rho_reset"), PARAMETER_SETS)
def test_lif_refrac_cell_matches_reference(kwargs, rho_reset):
    p_ours, p_norse = _parameters(kwargs, rho_reset)
    x = _currents((T, 3, 5), seed=1)
    ours, theirs = _loop(snn_refrac.LIFRefracCell(p_ours), norse.LIFRefracCell(p_norse), x)
    blocked = _blocked(theirs, x, p_ours.lif)
    _check(f"LIFRefracCell {_name(kwargs)}", ours, theirs, rho_reset, blocked)


@pytest.mark.parametrize(("kwargs", "rho_reset"), PARAMETER_SETS)
def test_lif_refrac_layer_matches_reference_cell(kwargs, rho_reset):
    p_ours, p_norse = _parameters(kwargs, rho_reset)
    x = _currents((T, 4, 2, 3), seed=2)
    _, theirs = _loop(snn_refrac.LIFRefracCell(p_ours), norse.LIFRefracCell(p_norse), x)
    with torch.no_grad():
        z, s = snn_refrac.LIFRefrac(p_ours, record_states=True)(x)
    blocked = _blocked(theirs, x, p_ours.lif)
    ours = SimpleNamespace(**_flat(z, s))
    _check(f"LIFRefrac layer {_name(kwargs)}", ours, theirs, rho_reset, blocked)


@pytest.mark.parametrize(("kwargs", "rho_reset"), PARAMETER_SETS)
def test_lif_refrac_recurrent_layer_matches_reference(kwargs, rho_reset):
    p_ours, p_norse = _parameters(kwargs, rho_reset)
    w_in, w_rec = _weights(6, 10, seed=3, scale=4.0)
    ours = snn_refrac.LIFRefracRecurrent(
        6, 10, p_ours, input_weights=w_in, recurrent_weights=w_rec, record_states=True
    )
    theirs = norse.LIFRefracRecurrent(
        6,
        10,
        p_norse,
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
        record_states=True,
    )
    assert torch.equal(ours.recurrent_weights.detach(), theirs.recurrent_weights.detach())
    x = _spikes((T, 4, 6), seed=4)
    with torch.no_grad():
        z_ref, s_ref = theirs(x)
        z, s = ours(x)
    assert torch.equal(s.lif.z, s_ref.lif.z)
    theirs = SimpleNamespace(**_flat(z_ref, s_ref))
    blocked = _blocked(theirs, _recurrent_currents(x, theirs, w_in, w_rec), p_ours.lif)
    ours = SimpleNamespace(**_flat(z, s))
    _check(f"LIFRefracRecurrent {_name(kwargs)}", ours, theirs, rho_reset, blocked)


@pytest.mark.parametrize(("kwargs", "rho_reset"), PARAMETER_SETS)
def test_lif_refrac_recurrent_cell_matches_reference(kwargs, rho_reset):
    p_ours, p_norse = _parameters(kwargs, rho_reset)
    w_in, w_rec = _weights(5, 8, seed=5, scale=4.0)
    ours = snn_refrac.LIFRefracRecurrentCell(
        5, 8, p_ours, input_weights=w_in, recurrent_weights=w_rec
    )
    theirs = norse.LIFRefracRecurrentCell(
        5,
        8,
        p_norse,
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
    )
    x = _spikes((T, 3, 5), seed=6)
    ours, theirs = _loop(ours, theirs, x)
    assert torch.equal(ours.z, theirs.z)
    blocked = _blocked(theirs, _recurrent_currents(x, theirs, w_in, w_rec), p_ours.lif)
    _check(f"LIFRefracRecurrentCell {_name(kwargs)}", ours, theirs, rho_reset, blocked)


def _mc_coupling(hidden_size: int, seed: int) -> torch.Tensor:
    """Per-step coupling (the reference applies it without dt) strong enough to matter."""
    gen = torch.Generator().manual_seed(seed)
    return 0.05 * torch.randn(hidden_size, hidden_size, generator=gen) / hidden_size**0.5


@pytest.mark.parametrize(("kwargs", "rho_reset"), PARAMETER_SETS)
def test_lif_mc_refrac_recurrent_cell_matches_reference(kwargs, rho_reset):
    p_ours, p_norse = _parameters(kwargs, rho_reset)
    w_in, w_rec = _weights(5, 6, seed=7)
    g = _mc_coupling(6, seed=8)
    cell = snn_refrac.LIFMCRefracRecurrentCell(
        5, 6, p_ours, input_weights=w_in, recurrent_weights=w_rec
    )
    layer = snn_refrac.LIFMCRefracRecurrent(
        5, 6, p_ours, input_weights=w_in, recurrent_weights=w_rec, record_states=True
    )
    with torch.no_grad():
        cell.g_coupling.copy_(g)
        layer.g_coupling.copy_(g)
    theirs = norse.LIFMCRefracRecurrentCell(
        5,
        6,
        p_norse,
        g_coupling=torch.nn.Parameter(g.clone()),
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
    )
    x = _spikes((T, 3, 5), seed=9)
    ours, theirs = _loop(cell, theirs, x)
    assert torch.equal(ours.z, theirs.z)
    _check(f"LIFMCRefracRecurrentCell {_name(kwargs)}", ours, theirs, rho_reset)
    with torch.no_grad():
        z_layer, s_layer = layer(x)
    _check(
        f"LIFMCRefracRecurrent layer {_name(kwargs)}",
        SimpleNamespace(**_flat(z_layer, s_layer)),
        theirs,
        rho_reset,
    )


def test_functional_steps_match_reference():
    """The reference's functional signatures, including the MC feed-forward step no module uses."""
    p_ours, p_norse = _parameters({"v_th": 0.6}, 3.0)
    w_in, w_rec = _weights(4, 6, seed=10)
    g = _mc_coupling(6, seed=11)
    x = _spikes((300, 2, 4), seed=12)
    currents = _currents((300, 2, 6), seed=13)
    zeros = torch.zeros(2, 6)
    rec = snn_refrac.LIFRefracState(snn_lif.LIFState(zeros, zeros, zeros), zeros)
    ff = snn_refrac.LIFRefracFeedForwardState(snn_lif.LIFFeedForwardState(zeros, zeros), zeros)
    fun, ref_rec, ref_mc = snn_refrac.functional, norse_refrac, norse_mc_refrac
    s_rec = r_rec = s_mc = r_mc = rec
    s_ff = r_ff = ff
    for x_t, c_t in zip(x, currents, strict=True):
        z, s_rec = fun.lif_refrac_step(x_t, s_rec, w_in, w_rec, p_ours)
        z_ref, r_rec = ref_rec.lif_refrac_step(x_t, r_rec, w_in, w_rec, p_norse)
        assert torch.equal(z, z_ref)
        z, s_mc = fun.lif_mc_refrac_step(x_t, s_mc, w_in, w_rec, g, p_ours)
        z_ref, r_mc = ref_mc.lif_mc_refrac_step(x_t, r_mc, w_in, w_rec, g, p_norse)
        assert torch.equal(z, z_ref)
        z, s_ff = fun.lif_mc_refrac_feed_forward_step(c_t, s_ff, g, p_ours)
        z_ref, r_ff = ref_mc.lif_mc_refrac_feed_forward_step(c_t, r_ff, g, p_norse)
        assert torch.equal(z, z_ref)
    for ours, theirs in ((s_rec, r_rec), (s_mc, r_mc), (s_ff, r_ff)):
        assert_close(ours.lif.v, theirs.lif.v, **TOL)
        assert_close(ours.lif.i, theirs.lif.i, **TOL)
        assert_close(ours.rho, theirs.rho, **TOL)


# --------------------------------------------------------------------------------------------
# Gradients, float64: the same detaches and refractory mask as the reference
# --------------------------------------------------------------------------------------------


class _NorseSuperPlugin:
    @snncore.hookimpl
    def register_surrogates(self, register):
        register(snncore.Surrogate("norse_super", lambda x, alpha: 1.0 / (x.abs() + 1.0) ** 2))


CUSTOM = PARAMETER_SETS[1].values[0]


def test_lif_refrac_feed_forward_gradient_matches_reference(fresh_manager):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    p_ours, p_norse = _parameters(CUSTOM, 3.0, method="norse_super", dtype=F64)
    x = _currents((60, 3, 4), seed=14, dtype=F64)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(15), dtype=F64)

    def run(cell, state_cls, lif_cls):
        state = state_cls(
            lif_cls(v=torch.full((3, 4), 0.1, dtype=F64), i=torch.zeros(3, 4, dtype=F64)),
            torch.zeros(3, 4, dtype=F64),
        )
        inp = x.clone().requires_grad_()
        outs = []
        for x_t in inp.unbind(0):
            z, state = cell(x_t, state)
            outs.append(z)
        z = torch.stack(outs)
        ((z * w).sum() + state.lif.v.sum() + state.rho.sum()).backward()
        return z.detach(), inp.grad

    z, grad = run(
        snn_refrac.LIFRefracCell(p_ours).double(),
        snn_refrac.LIFRefracFeedForwardState,
        snn_lif.LIFFeedForwardState,
    )
    z_ref, grad_ref = run(
        norse.LIFRefracCell(p_norse), norse.LIFRefracFeedForwardState, norse.LIFFeedForwardState
    )
    assert 0.01 < z_ref.mean() < 0.25
    assert torch.equal(z, z_ref)
    assert grad.abs().sum() > 0
    assert_close(grad, grad_ref)


@pytest.mark.parametrize("mc", [False, True], ids=["lif_refrac", "lif_mc_refrac"])
def test_lif_refrac_recurrent_gradients_match_reference(fresh_manager, mc):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    p_ours, p_norse = _parameters(CUSTOM, 3.0, method="norse_super", dtype=F64)
    w_in, w_rec = _weights(4, 6, seed=16)
    w_in, w_rec = 2.0 * w_in.double(), w_rec.double()
    common = {"input_weights": w_in, "recurrent_weights": w_rec}
    ref_common = {
        "input_weights": torch.nn.Parameter(w_in.clone()),
        "recurrent_weights": torch.nn.Parameter(w_rec.clone()),
    }
    if mc:
        g = _mc_coupling(6, seed=17).double()
        ours = snn_refrac.LIFMCRefracRecurrentCell(4, 6, p_ours, **common).double()
        with torch.no_grad():
            ours.g_coupling.copy_(g)
        theirs = norse.LIFMCRefracRecurrentCell(
            4, 6, p_norse, g_coupling=torch.nn.Parameter(g.clone()), **ref_common
        )
    else:
        ours = snn_refrac.LIFRefracRecurrentCell(4, 6, p_ours, **common).double()
        theirs = norse.LIFRefracRecurrentCell(4, 6, p_norse, **ref_common)
    x = _spikes((60, 3, 4), seed=18).double()

    def run(cell, state_cls, lif_cls):
        zeros = torch.zeros(3, 6, dtype=F64)
        state = state_cls(lif_cls(z=zeros, v=zeros, i=zeros), zeros)
        inp = x.clone().requires_grad_()
        outs = []
        for x_t in inp.unbind(0):
            z, state = cell(x_t, state)
            outs.append(z)
        z = torch.stack(outs)
        (z.sum() + state.lif.v.sum() + state.rho.sum()).backward()
        grads = [inp.grad, cell.input_weights.grad, cell.recurrent_weights.grad]
        if mc:
            grads.append(cell.g_coupling.grad)
        return z.detach(), grads

    z, grads = run(ours, snn_refrac.LIFRefracState, snn_lif.LIFState)
    z_ref, grads_ref = run(theirs, norse.LIFRefracState, norse.LIFState)
    assert 0.01 < z_ref.mean() < 0.25
    assert torch.equal(z, z_ref)
    for name, a, b in zip(("x", "W_in", "W_rec", "g_coupling"), grads, grads_ref, strict=False):
        assert a.abs().sum() > 0, name
        assert_close(a, b, msg=name)
