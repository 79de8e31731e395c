"""snn-coba numerics: large inputs over long runs, gradients against finite differences, and the
registry entry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import snn_coba
import torch

import snncore

F64 = torch.float64
T_LONG = 10_000


def _signed_thousands(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 1e3 * (2.0 * torch.randint(0, 2, shape, generator=gen).float() - 1.0)


def _assert_finite(state) -> None:
    for name, value in zip(state._fields, state, strict=True):
        assert torch.isfinite(value).all(), name


def test_ten_thousand_steps_of_plus_minus_1e3_stay_finite():
    # Negative "spikes" into the recurrent variants would drive conductances negative, and the
    # Euler step with a negative total conductance multiplies v by 1 + dt·c_m_inv·|g| per step
    # (the reference overflows within a few dozen steps); conductances are clamped at 0.
    x = _signed_thousands((T_LONG, 2, 5), seed=1)
    with torch.no_grad():
        z, states = snn_coba.CobaLIF(record_states=True)(x)
        _assert_finite(states)
        assert z.mean() > 0.05
        z, states = snn_coba.CobaLIFRecurrent(5, 4, record_states=True)(x)
        _assert_finite(states)
        assert (states.g_e >= 0).all() and (states.g_i >= 0).all()
        cell, rcell = snn_coba.CobaLIFFeedForwardCell(), snn_coba.CobaLIFCell(5, 4)
        s, rs = None, None
        for x_t in x:
            _, s = cell(x_t, s)
            _, rs = rcell(x_t, rs)
        _assert_finite(s)
        _assert_finite(rs)


# Gradients against finite differences: float64, heaviside (surrogate 0) and no spikes, so
# autograd must equal the derivative of the smooth sub-threshold dynamics.


def test_coba_layer_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(2)
    layer = snn_coba.CobaLIF(snn_coba.CobaLIFParameters(method="heaviside")).double()
    # signed input away from 0 (relu's kink): magnitude in [0.05, 0.25]
    magnitude = 0.05 + 0.2 * torch.rand(20, 2, 3, generator=gen, dtype=F64)
    sign = torch.where(torch.rand(20, 2, 3, generator=gen) < 0.5, -1.0, 1.0).double()
    x = (sign * magnitude).requires_grad_()
    names = ("g_l", "c_m_inv", "e_rev_E", "e_rev_I", "tau_syn_exc_inv", "tau_syn_inh_inv")
    values = [getattr(layer, "p_" + n).clone().requires_grad_() for n in names]

    def run(x, *values):
        buffers = {"p_" + n: value for n, value in zip(names, values, strict=True)}
        z, final = torch.func.functional_call(layer, buffers, (x,))
        assert z.sum() == 0
        return final.v, final.g_e, final.g_i

    assert torch.autograd.gradcheck(run, (x, *values))


def test_coba_recurrent_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(3)
    layer = snn_coba.CobaLIFRecurrent(3, 4, snn_coba.CobaLIFParameters(method="heaviside")).double()
    w_in = 0.2 * torch.randn(4, 3, generator=gen, dtype=F64)
    w_in = (w_in + 0.05 * torch.sign(w_in)).requires_grad_()  # away from relu's kink at 0
    x = (0.5 * torch.rand(15, 2, 3, generator=gen, dtype=F64)).requires_grad_()

    def run(x, w_in):
        z, final = torch.func.functional_call(layer, {"input_weights": w_in}, (x,))
        assert z.sum() == 0
        return final.v, final.g_e, final.g_i

    assert torch.autograd.gradcheck(run, (x, w_in))


def test_model_registered_with_family_and_classes():
    model = snncore.get_model("coba_lif")
    assert model.family == "coba"
    assert model.variants == ("cell", "recurrent_cell", "layer", "recurrent")
    assert type(snncore.create("coba_lif", variant="layer")) is snn_coba.CobaLIF
    assert type(snncore.create("coba_lif", variant="cell")) is snn_coba.CobaLIFFeedForwardCell
    recurrent = snncore.create("coba_lif", variant="recurrent", input_size=2, hidden_size=3)
    assert type(recurrent) is snn_coba.CobaLIFRecurrent
    cell = snncore.create("coba_lif", variant="recurrent_cell", input_size=2, hidden_size=3)
    assert isinstance(cell, snn_coba.CobaLIFRecurrentCell)


def test_list_models_json_shows_the_coba_family():
    snn = Path(sys.executable).with_name("snn")
    out = subprocess.run(
        [str(snn), "list-models", "--json", "--family", "coba"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (row,) = json.loads(out)["models"]
    assert row["name"] == "coba_lif"
    assert row["family"] == "coba"
    assert row["distribution"] == "snn-coba"
    assert row["variants"] == ["cell", "recurrent_cell", "layer", "recurrent"]
    assert "torch" in row["backends"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(4)
    x = 0.002 + 0.01 * torch.randn(200, 3, 5, generator=gen)
    spikes = (torch.rand(200, 3, 5, generator=gen) < 0.2).float()
    for variant, kwargs, inp in (
        ("layer", {}, x),
        ("recurrent", {"input_size": 5, "hidden_size": 4}, spikes),
    ):
        module = snncore.create("coba_lif", variant=variant, **kwargs)
        with torch.no_grad():
            z_cpu, s_cpu = module(inp)
            z_gpu, s_gpu = module.to("cuda")(inp.cuda())
        assert torch.equal(z_gpu.cpu(), z_cpu)
        assert torch.allclose(s_gpu.v.cpu(), s_cpu.v, rtol=1e-5, atol=1e-4)
