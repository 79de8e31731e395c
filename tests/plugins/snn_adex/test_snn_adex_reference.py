"""snn-adex against the reference library, ``norse==1.1.0`` (skipped where it is not installed).

MODELS.md's acceptance test: same parameters, inputs and initial state give equal spikes and
states within 1e-5 relative (float32) over 1,000 steps, for every variant of LIFAdEx and LIFEx.
``atol=1e-6`` covers values that cross zero.  The gradient tests use the reference 1.1.0's
SuperSpike (it ignores ``alpha``), registered at run time as ``norse_super``.

The one deliberate difference, the overflow guard of the exponential term, cannot show here:
below the guard's ceiling the formula is unchanged, and above it the reference is NaN.
"""

from __future__ import annotations

import attrs
import pytest
import snn_adex
import torch
from torch.testing import assert_close

import snncore

norse = pytest.importorskip("norse.torch")

T = 1000
TOL = {"rtol": 1e-5, "atol": 1e-6}

ADEX_CUSTOM = {
    "adaptation_current": 2.0,
    "adaptation_spike": 0.3,
    "delta_T": 0.3,
    "tau_ada_inv": 20.0,
    "tau_syn_inv": 150.0,
    "tau_mem_inv": 80.0,
    "v_leak": 0.1,
    "v_th": 0.8,
    "v_reset": -0.2,
    "alpha": 50.0,
}
EX_FIELDS = ("delta_T", "tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset", "alpha")
# (model key, our parameters class, theirs, the state fields to compare, custom parameters)
FAMILIES = {
    "adex": (snn_adex.LIFAdExParameters, "LIFAdEx", ("v", "i", "a"), ADEX_CUSTOM),
    "ex": (
        snn_adex.LIFExParameters,
        "LIFEx",
        ("v", "i"),
        {k: v for k, v in ADEX_CUSTOM.items() if k in EX_FIELDS},
    ),
}
CASES = [
    pytest.param(family, custom, id=f"{family}-{'custom' if custom else 'defaults'}")
    for family in FAMILIES
    for custom in (False, True)
]


def _parameters(family: str, custom: bool, method: str = "super", dtype=torch.float32):
    ours_cls, prefix, _, kwargs = FAMILIES[family]
    ours = ours_cls(method=method, **(kwargs if custom else {}))
    fields = {
        f.name: torch.as_tensor(getattr(ours, f.name), dtype=dtype)
        for f in attrs.fields(ours_cls)
        if f.name not in ("method", "alpha")
    }
    theirs = getattr(norse, prefix + "Parameters")(
        method="super", alpha=float(ours.alpha), **fields
    )
    return ours, theirs


def _currents(shape: tuple[int, ...], seed: int, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.3 + 2.0 * torch.randn(shape, generator=gen)).to(dtype)


def _spikes(shape: tuple[int, ...], seed: int, rate: float = 0.2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < rate).float()


def _weights(input_size: int, hidden_size: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    w_in = 3.0 * torch.randn(hidden_size, input_size, generator=gen) / input_size**0.5
    w_rec = torch.randn(hidden_size, hidden_size, generator=gen) * (2.0 / hidden_size) ** 0.5
    return w_in, w_rec


def _assert_spiking(z: torch.Tensor) -> None:
    rate = z.float().mean().item()
    assert 0.005 < rate < 0.5, f"spike rate {rate}"


def _assert_states_close(ours, theirs, fields, label: str | None = None) -> None:
    deviations = []
    for name in fields:
        mine, ref = getattr(ours, name), getattr(theirs, name).detach()
        deviations.append(f"{name}: max|Δ|={float((mine - ref).abs().max()):.3g}")
        assert_close(mine, ref, **TOL, msg=name)
    if label:  # pytest -s shows the deviation per state variable of whole runs
        print(f"[{label}] " + "  ".join(deviations))


@pytest.mark.parametrize(("family", "custom"), CASES)
def test_layer_matches_reference(family, custom):
    _, prefix, fields, _ = FAMILIES[family]
    p_ours, p_norse = _parameters(family, custom)
    x = _currents((T, 4, 2, 3), seed=1)
    with torch.no_grad():
        z_ref, s_ref = getattr(norse, prefix)(p_norse, record_states=True)(x)
        z, s = getattr(snn_adex, prefix)(p_ours, record_states=True)(x)
    _assert_spiking(z_ref)
    assert torch.equal(z, z_ref)
    _assert_states_close(s, s_ref, fields, f"{prefix} layer custom={custom}")


@pytest.mark.parametrize(("family", "custom"), CASES)
def test_cell_matches_reference(family, custom):
    _, prefix, fields, _ = FAMILIES[family]
    p_ours, p_norse = _parameters(family, custom)
    ours, theirs = (
        getattr(snn_adex, prefix + "Cell")(p_ours),
        getattr(norse, prefix + "Cell")(p_norse),
    )
    x = _currents((T, 3, 5), seed=2)
    s, s_ref, spikes = None, None, []
    with torch.no_grad():
        for x_t in x:
            z, s = ours(x_t, s)
            z_ref, s_ref = theirs(x_t, s_ref)
            assert torch.equal(z, z_ref)
            _assert_states_close(s, s_ref, fields)
            spikes.append(z_ref)
    _assert_spiking(torch.stack(spikes))


@pytest.mark.parametrize(("family", "custom"), CASES)
def test_recurrent_layer_matches_reference(family, custom):
    _, prefix, fields, _ = FAMILIES[family]
    p_ours, p_norse = _parameters(family, custom)
    w_in, w_rec = _weights(6, 10, seed=3)
    ours = getattr(snn_adex, prefix + "Recurrent")(
        6, 10, p_ours, input_weights=w_in, recurrent_weights=w_rec, record_states=True
    )
    theirs = getattr(norse, prefix + "Recurrent")(
        6,
        10,
        p_norse,
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
        record_states=True,
    )
    x = _spikes((T, 4, 6), seed=4)
    with torch.no_grad():
        z_ref, s_ref = theirs(x)
        z, s = ours(x)
    _assert_spiking(z_ref)
    assert torch.equal(z, z_ref)
    assert torch.equal(s.z, s_ref.z)
    _assert_states_close(s, s_ref, fields, f"{prefix}Recurrent custom={custom}")


@pytest.mark.parametrize(("family", "custom"), CASES)
def test_recurrent_cell_matches_reference(family, custom):
    _, prefix, fields, _ = FAMILIES[family]
    p_ours, p_norse = _parameters(family, custom)
    w_in, w_rec = _weights(5, 8, seed=5)
    ours = getattr(snn_adex, prefix + "RecurrentCell")(
        5, 8, p_ours, input_weights=w_in, recurrent_weights=w_rec
    )
    theirs = getattr(norse, prefix + "RecurrentCell")(
        5,
        8,
        p_norse,
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
    )
    x = _spikes((T, 3, 5), seed=6)
    s, s_ref, spikes = None, None, []
    with torch.no_grad():
        for x_t in x:
            z, s = ours(x_t, s)
            z_ref, s_ref = theirs(x_t, s_ref)
            assert torch.equal(z, z_ref)
            _assert_states_close(s, s_ref, fields)
            spikes.append(z_ref)
    _assert_spiking(torch.stack(spikes))


def test_reference_is_nan_where_the_guard_keeps_us_finite():
    # The reason for the guard: v = 50 overflows exp((50 − 1)/0.5) in float32.
    from norse.torch.functional.lif_adex import lif_adex_feed_forward_step

    v0 = torch.tensor([50.0])
    state = norse.LIFAdExFeedForwardState(v=v0, i=torch.zeros(1), a=torch.zeros(1))
    _, s_ref = lif_adex_feed_forward_step(torch.zeros(1), state, norse.LIFAdExParameters())
    assert torch.isnan(s_ref.v).all()
    z, s = snn_adex.LIFAdExCell()(
        torch.zeros(1), snn_adex.LIFAdExFeedForwardState(v=v0, i=torch.zeros(1), a=torch.zeros(1))
    )
    assert torch.equal(z, torch.ones(1))
    assert torch.equal(s.v, torch.zeros(1))  # v_reset


# --------------------------------------------------------------------------------------------
# Gradients, float64 (the reference's steps keep the spike's gradient in the reset, as ours do)
# --------------------------------------------------------------------------------------------


class _NorseSuperPlugin:
    """Registers the reference 1.1.0's SuperSpike, which ignores alpha, as ``norse_super``."""

    @snncore.hookimpl
    def register_surrogates(self, register):
        register(snncore.Surrogate("norse_super", lambda x, alpha: 1.0 / (x.abs() + 1.0) ** 2))


F64 = torch.float64


@pytest.mark.parametrize("family", list(FAMILIES))
def test_layer_input_gradient_matches_reference(fresh_manager, family):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    _, prefix, fields, _ = FAMILIES[family]
    p_ours, p_norse = _parameters(family, True, method="norse_super", dtype=F64)
    x = _currents((50, 3, 4), seed=7, dtype=F64)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(8), dtype=F64)
    grads, spikes = [], []
    for module in (getattr(snn_adex, prefix)(p_ours).double(), getattr(norse, prefix)(p_norse)):
        inp = x.clone().requires_grad_()
        z, final = module(inp)
        ((z * w).sum() + sum(getattr(final, f).sum() for f in fields)).backward()
        grads.append(inp.grad)
        spikes.append(z.detach())
    _assert_spiking(spikes[1])
    assert torch.equal(spikes[0], spikes[1])
    assert grads[0].abs().sum() > 0
    assert_close(grads[0], grads[1])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_recurrent_gradients_match_reference(fresh_manager, family):
    snncore.register_plugin(_NorseSuperPlugin(), name="test-norse-super")
    prefix = FAMILIES[family][1]
    p_ours, p_norse = _parameters(family, False, method="norse_super", dtype=F64)
    w_in, w_rec = (w.double() for w in _weights(4, 6, seed=9))
    ours = getattr(snn_adex, prefix + "Recurrent")(
        4, 6, p_ours, input_weights=w_in, recurrent_weights=w_rec
    ).double()
    theirs = getattr(norse, prefix + "Recurrent")(
        4,
        6,
        p_norse,
        input_weights=torch.nn.Parameter(w_in.clone()),
        recurrent_weights=torch.nn.Parameter(w_rec.clone()),
    )
    x = _spikes((50, 3, 4), seed=10).double()
    results = []
    for module in (ours, theirs):
        inp = x.clone().requires_grad_()
        z, final = module(inp)
        (z.sum() + final.v.sum()).backward()
        results.append(
            (z.detach(), inp.grad, module.input_weights.grad, module.recurrent_weights.grad)
        )
    (z, gx, g_in, g_rec), (z_ref, gx_ref, g_in_ref, g_rec_ref) = results
    _assert_spiking(z_ref)
    assert torch.equal(z, z_ref)
    assert_close(gx, gx_ref)
    assert_close(g_in, g_in_ref)
    assert_close(g_rec, g_rec_ref)
    assert g_rec.abs().sum() > 0
