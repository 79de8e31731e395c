"""snn-adex numerics: the overflow guard of the exponential term, large inputs over long runs,
gradients against finite differences, and the registry entries."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import snn_adex
import torch
from snn_adex import (
    LIFAdExCell,
    LIFAdExFeedForwardState,
    LIFAdExParameters,
    LIFExCell,
    LIFExFeedForwardState,
)
from snn_adex.functional import exp_ceiling, exp_term
from torch.testing import assert_close

import snncore

F64 = torch.float64


def t(values, dtype=F64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


# --------------------------------------------------------------------------------------------
# The guard
# --------------------------------------------------------------------------------------------


def test_exp_ceiling_is_half_the_largest_exponent():
    # ln(max float) / 2: float32 max 3.4028e38 -> ln = 88.7228 -> 44.3614
    assert exp_ceiling(torch.float32) == pytest.approx(88.72283905206835 / 2)
    assert exp_ceiling(torch.float64) == pytest.approx(709.782712893384 / 2)
    assert exp_ceiling(torch.float16) == pytest.approx(math.log(65504.0) / 2)
    assert exp_ceiling(torch.bfloat16) == pytest.approx(
        math.log(torch.finfo(torch.bfloat16).max) / 2
    )


def test_exp_term_unchanged_below_the_ceiling():
    # (v − v_th)/delta_T = 40 < 44.36 in float32: the unguarded formula, bit for bit
    v = t([-3.0, 0.0, 1.0, 5.0, 21.0], torch.float32)
    v_th, delta_T = t(1.0, torch.float32), t(0.5, torch.float32)
    assert torch.equal(exp_term(v, v_th, delta_T), delta_T * torch.exp((v - v_th) / delta_T))


def test_exp_term_clamped_and_finite_above_the_ceiling():
    # v = 1e4: the argument 19998 would overflow; clamped it gives 0.5·exp(44.36) = 0.5·sqrt(max)
    v_th, delta_T = t(1.0, torch.float32), t(0.5, torch.float32)
    value = exp_term(t([1e4, 1e30], torch.float32), v_th, delta_T)
    expected = 0.5 * math.sqrt(torch.finfo(torch.float32).max)
    assert_close(value, t([expected, expected], torch.float32), rtol=1e-5, atol=0)


def test_large_but_finite_exponential_is_not_clamped_in_the_step():
    # v = 5, v_th = 1: argument (5 − 1)/0.5 = 8, term 0.5·exp(8) = 1490.479, kept as is.  With
    # x = −2000 the neuron does not spike, so v' is the unclamped v1:
    #   i1 = −2000;  v1 = 5 + 0.1·(−5 + 0.5·exp(8) − 2000) = −45.45205;  i' = −1600
    z, state = LIFExCell().double()(t([-2000.0]), LIFExFeedForwardState(v=t([5.0]), i=t([0.0])))
    assert_close(z, t([0.0]))
    assert_close(state.v, t([5.0 + 0.1 * (-5.0 + 0.5 * math.exp(8.0) - 2000.0)]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_membrane_far_above_threshold_spikes_and_resets_without_nan(dtype):
    # v = 50 and 1e4: unguarded, exp((v − 1)/0.5) is inf (in float32 for v > 45.4, in float16
    # for v > 6.5), and the reset (1 − 1)·inf gives NaN.  Guarded, v1 is huge but finite: the neuron
    # spikes and resets to v_reset = 0; i and a follow their own equations:
    #   i' = 0.8·(0 + 0) = 0;  a' = 0 + 0.002·(4·v − 0) + 0.02 = 0.008·v + 0.02
    v0 = t([50.0, 1e4], dtype)
    cell = LIFAdExCell().to(dtype)
    state = LIFAdExFeedForwardState(v=v0, i=torch.zeros_like(v0), a=torch.zeros_like(v0))
    z, state = cell(torch.zeros_like(v0), state)
    assert torch.equal(z, torch.ones_like(v0))
    assert torch.equal(state.v, torch.zeros_like(v0))
    assert_close(state.a, 0.008 * v0 + 0.02, rtol=2e-3 if dtype == torch.float16 else 1e-6, atol=0)
    for value in state:
        assert torch.isfinite(value).all()


def test_guarded_gradient_is_finite():
    # Far above threshold the exponential term is clamped: its gradient is 0, nothing is NaN.
    v = t([100.0, 0.3]).requires_grad_()
    cell = LIFExCell().double()
    z, state = cell(t([0.0, 0.0]), LIFExFeedForwardState(v=v, i=t([0.0, 0.0])))
    (state.v.sum() + z.sum()).backward()
    assert torch.isfinite(v.grad).all()


# --------------------------------------------------------------------------------------------
# Large inputs over long runs: every variant stays finite
# --------------------------------------------------------------------------------------------

T_LONG = 10_000


def _signed_thousands(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 1e3 * (2.0 * torch.randint(0, 2, shape, generator=gen).float() - 1.0)


def _assert_finite(state) -> None:
    for name, value in zip(state._fields, state, strict=True):
        assert torch.isfinite(value).all(), name


@pytest.mark.parametrize("model", ["lif_adex", "lif_ex"])
def test_ten_thousand_steps_of_plus_minus_1e3_stay_finite(model):
    x = _signed_thousands((T_LONG, 2, 5), seed=1)
    with torch.no_grad():
        z, states = snncore.create(model, variant="layer", record_states=True)(x)
        _assert_finite(states)
        assert 0.05 < z.mean() < 0.95  # the neurons do spike and reset
        z, states = snncore.create(
            model, variant="recurrent", input_size=5, hidden_size=4, record_states=True
        )(x)
        _assert_finite(states)
        cell = snncore.create(model, variant="cell")
        rcell = snncore.create(model, variant="recurrent_cell", input_size=5, hidden_size=4)
        s, rs = None, None
        for x_t in x:
            _, s = cell(x_t, s)
            _, rs = rcell(x_t, rs)
        _assert_finite(s)
        _assert_finite(rs)


# --------------------------------------------------------------------------------------------
# Gradients against finite differences (float64, no spikes: heaviside makes the surrogate 0,
# so autograd must equal the derivative of the smooth sub-threshold dynamics)
# --------------------------------------------------------------------------------------------


def test_lif_adex_layer_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(2)
    x = (0.5 * torch.rand(15, 2, 3, generator=gen, dtype=F64)).requires_grad_()
    names = ("delta_T", "tau_mem_inv", "adaptation_current", "tau_ada_inv", "v_th")
    layer = snn_adex.LIFAdEx(LIFAdExParameters(method="heaviside", tau_ada_inv=40.0)).double()
    values = [getattr(layer, "p_" + n).clone().requires_grad_() for n in names]
    a0 = t([[0.1, -0.2, 0.3], [0.0, 0.05, -0.1]])
    state = LIFAdExFeedForwardState(v=torch.full_like(a0, 0.3), i=torch.zeros_like(a0), a=a0)

    def run(x, *values):
        buffers = {"p_" + n: value for n, value in zip(names, values, strict=True)}
        z, final = torch.func.functional_call(layer, buffers, (x, state))
        assert z.sum() == 0  # the no-spike regime
        return final.v, final.i, final.a

    assert torch.autograd.gradcheck(run, (x, *values))


def test_lif_ex_recurrent_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(3)
    layer = snn_adex.LIFExRecurrent(3, 4, snn_adex.LIFExParameters(method="heaviside")).double()
    w_in = (0.3 * torch.randn(4, 3, generator=gen, dtype=F64)).requires_grad_()
    x = (0.5 * torch.rand(12, 2, 3, generator=gen, dtype=F64)).requires_grad_()
    delta_T = t(0.4).requires_grad_()

    def run(x, w_in, delta_T):
        tensors = {"input_weights": w_in, "p_delta_T": delta_T}
        z, final = torch.func.functional_call(layer, tensors, (x,))
        assert z.sum() == 0
        return final.v, final.i

    assert torch.autograd.gradcheck(run, (x, w_in, delta_T))


# --------------------------------------------------------------------------------------------
# Registry and command line
# --------------------------------------------------------------------------------------------


def test_models_registered_with_family_and_classes():
    for name, layer_cls in (("lif_adex", snn_adex.LIFAdEx), ("lif_ex", snn_adex.LIFEx)):
        model = snncore.get_model(name)
        assert model.family == "adex"
        assert model.variants == ("cell", "recurrent_cell", "layer", "recurrent")
        assert type(snncore.create(name, variant="layer")) is layer_cls
    assert type(snncore.create("lif_adex", variant="cell")) is snn_adex.LIFAdExCell
    assert (
        type(snncore.create("lif_ex", variant="recurrent", input_size=2, hidden_size=3))
        is snn_adex.LIFExRecurrent
    )


def test_list_models_json_shows_the_adex_family():
    snn = Path(sys.executable).with_name("snn")
    out = subprocess.run(
        [str(snn), "list-models", "--json", "--family", "adex"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {row["name"]: row for row in json.loads(out)["models"]}
    assert set(rows) == {"lif_adex", "lif_ex"}
    for row in rows.values():
        assert row["family"] == "adex"
        assert row["variants"] == ["cell", "recurrent_cell", "layer", "recurrent"]
        assert "torch" in row["backends"]
        assert row["distribution"] == "snn-adex"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model", ["lif_adex", "lif_ex"])
def test_cuda_matches_cpu(model):
    gen = torch.Generator().manual_seed(4)
    x = 0.3 + 2.0 * torch.randn(200, 3, 5, generator=gen)
    for variant, kwargs in (("layer", {}), ("recurrent", {"input_size": 5, "hidden_size": 4})):
        module = snncore.create(model, variant=variant, **kwargs)
        with torch.no_grad():
            z_cpu, s_cpu = module(x)
            z_gpu, s_gpu = module.to("cuda")(x.cuda())
        assert torch.equal(z_gpu.cpu(), z_cpu)
        assert_close(s_gpu.v.cpu(), s_cpu.v, rtol=1e-5, atol=1e-5)
