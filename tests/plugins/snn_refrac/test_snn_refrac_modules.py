"""Refractory LIF modules beyond the generic conformance checks (tests/conformance: shapes and
dtypes of the nested states, the initial state, state threading, layer == looped cell, pickling):
recurrent weight gradients of layer and looped cell, gradients against finite differences, nested
learnable parameters, errors for bad input, and how the models show in the registry and CLI."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from snn_lif import LIFParameters
from snn_refrac import (
    LIFMCRefracRecurrent,
    LIFMCRefracRecurrentCell,
    LIFRefrac,
    LIFRefracCell,
    LIFRefracParameters,
    LIFRefracRecurrent,
    LIFRefracRecurrentCell,
)
from torch.testing import assert_close

import snncore
from snncore.cli import cli

F64 = torch.float64
P = LIFRefracParameters(lif=LIFParameters(v_leak=0.1), rho_reset=3.0)
RECURRENT = [
    pytest.param(LIFRefracRecurrentCell, LIFRefracRecurrent, id="lif_refrac"),
    pytest.param(LIFMCRefracRecurrentCell, LIFMCRefracRecurrent, id="lif_mc_refrac"),
]


def _currents(shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.8 + 0.5 * torch.randn(shape, generator=gen)).to(dtype)


def _spikes(shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < 0.3).to(dtype)


def _recurrent_pair(cell_cls, layer_cls, input_size=3, hidden_size=5, seed=0, p=P, **kwargs):
    """Cell and layer with the same weights; multiples of 1/4 and 1/8, so ``W·x`` of 0/1 spikes
    is exact in any summation order and layer and looped cell can be compared bit for bit."""
    gen = torch.Generator().manual_seed(seed)
    w_in = torch.randint(-16, 17, (hidden_size, input_size), generator=gen) / 4.0
    w_rec = torch.randint(-8, 9, (hidden_size, hidden_size), generator=gen) / 8.0
    common = {"input_weights": w_in, "recurrent_weights": w_rec, **kwargs}
    cell = cell_cls(input_size, hidden_size, p, **common)
    layer = layer_cls(input_size, hidden_size, p, **common)
    if hasattr(cell, "g_coupling"):
        g = 0.05 * torch.randn(hidden_size, hidden_size, generator=gen)
        with torch.no_grad():
            cell.g_coupling.copy_(g)
            layer.g_coupling.copy_(g)
    return cell, layer


def _leaves(state) -> list[torch.Tensor]:
    return [*state.lif, state.rho]


# --------------------------------------------------------------------------------------------
# Recurrent layer == looped cell: weight gradients
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_lif_refrac_recurrent_layer_weight_gradients_equal_looped_cell(cell_cls, layer_cls):
    cell, layer = _recurrent_pair(cell_cls, layer_cls)
    cell, layer = cell.double(), layer.double()
    x = _spikes((30, 2, 3), seed=3, dtype=F64)
    state, outs = None, []
    for x_t in x:
        z, state = cell(x_t, state)
        outs.append(z)
    (torch.stack(outs).sum() + state.lif.v.sum()).backward()
    z, state = layer(x)
    (z.sum() + state.lif.v.sum()).backward()
    for (name, a), (_, b) in zip(cell.named_parameters(), layer.named_parameters(), strict=True):
        assert a.grad is not None and a.grad.abs().sum() > 0, name
        assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-12, msg=name)


# --------------------------------------------------------------------------------------------
# Gradients against finite differences (float64, no spikes: v_th far away)
# --------------------------------------------------------------------------------------------

NO_SPIKES = LIFRefracParameters(lif=LIFParameters(v_th=1e6))


def test_lif_refrac_layer_input_gradient_matches_finite_differences():
    layer = LIFRefrac(NO_SPIKES, record_states=True).double()
    x = 0.3 * torch.randn(12, 2, 3, generator=torch.Generator().manual_seed(4), dtype=F64)

    def outputs(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, states = layer(inp)
        assert not z.any()
        return states.lif.v, (states.lif.i**2).sum()

    assert torch.autograd.gradcheck(outputs, (x.requires_grad_(),), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize(("cell_cls", "layer_cls"), RECURRENT)
def test_lif_refrac_recurrent_gradients_match_finite_differences(cell_cls, layer_cls):
    _, layer = _recurrent_pair(cell_cls, layer_cls, input_size=3, hidden_size=4, p=NO_SPIKES)
    layer = layer.double()
    layer.record_states = True
    x = torch.rand(8, 2, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    names = [n for n, _ in layer.named_parameters() if n != "recurrent_weights"]
    tensors = tuple(getattr(layer, n).detach().clone().requires_grad_() for n in names)

    def voltages(inp: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        z, states = torch.func.functional_call(layer, dict(zip(names, params, strict=True)), (inp,))
        assert not z.any()
        return states.lif.v

    assert torch.autograd.gradcheck(
        voltages, (x.requires_grad_(), *tensors), eps=1e-6, atol=1e-8, rtol=1e-6
    )
    if cell_cls is LIFMCRefracRecurrentCell:
        assert "g_coupling" in names


def test_lif_refrac_nested_learnable_parameters():
    layer = LIFRefrac(P, learnable=("lif.tau_mem_inv", "lif.v_th")).double()
    assert isinstance(layer.p_lif__tau_mem_inv, torch.nn.Parameter)
    z, s = layer(_currents((40, 2, 3), seed=6, dtype=F64))
    assert z.sum() > 0
    (z.sum() + s.lif.v.sum()).backward()
    for name in ("p_lif__tau_mem_inv", "p_lif__v_th"):
        grad = getattr(layer, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs() > 0, name
    # parameters by keyword: the nested record and rho_reset
    cell = LIFRefracCell(lif=LIFParameters(v_th=0.5), rho_reset=2)
    assert cell.parameters_now().lif.v_th.item() == 0.5
    assert cell.parameters_now().rho_reset.item() == 2.0


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_lif_refrac_bad_parameters():
    with pytest.raises(ValueError, match=r"rho_reset must be >= 0"):
        LIFRefracParameters(rho_reset=-1.0)
    with pytest.raises(ValueError, match="rho_reset"):
        LIFRefracCell(rho_reset=torch.tensor([1.0, -2.0]))
    with pytest.raises(TypeError, match="LIFParameters"):
        LIFRefracParameters(lif={"v_th": 0.5})
    with pytest.raises(TypeError, match="LIFRefracParameters"):
        LIFRefracCell(p=LIFParameters())  # the LIF record where the refractory one is expected
    with pytest.raises(snncore.UnknownNameError, match="nope"):
        LIFRefracCell(lif=LIFParameters(method="nope"))  # checked when the module is built
    with pytest.raises(TypeError, match="rho_reset"):  # the message lists the fields
        LIFRefracCell(v_th=0.5)
    with pytest.raises(ValueError, match="learnable"):
        LIFRefrac(learnable=("v_th",))  # nested fields are dotted: lif.v_th


def test_lif_refrac_bad_input_errors():
    with pytest.raises(TypeError, match="real input"):
        LIFRefracCell()(torch.zeros(2, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(time, \*batch, \*features\)"):
        LIFRefrac()(torch.zeros(()))
    for cell_cls, layer_cls in (p.values for p in RECURRENT):
        cell, layer = _recurrent_pair(cell_cls, layer_cls, input_size=3)
        with pytest.raises(ValueError, match="input_size=3"):
            cell(torch.zeros(2, 4))
        with pytest.raises(ValueError, match="input_size=3"):
            layer(torch.zeros(5, 2, 4))
        with pytest.raises(TypeError, match="real input"):
            layer(torch.zeros(5, 2, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="no 'cell' variant"):
        snncore.create("lif_mc_refrac", variant="cell")


# --------------------------------------------------------------------------------------------
# Registry and CLI
# --------------------------------------------------------------------------------------------


def test_lif_refrac_registered_with_norse_names():
    model = snncore.get_model("lif_refrac")
    assert model.family == snncore.get_model("lif_mc_refrac").family == "lif_refrac"
    assert model.variants == ("cell", "recurrent_cell", "layer", "recurrent")
    assert snncore.get_model("lif_mc_refrac").variants == ("recurrent_cell", "recurrent")
    assert type(snncore.create("lif_refrac", variant="layer")) is LIFRefrac
    mc = snncore.create("lif_mc_refrac", variant="recurrent_cell", input_size=2, hidden_size=3)
    assert type(mc) is LIFMCRefracRecurrentCell
    assert mc.g_coupling.shape == (3, 3)


def test_lif_refrac_cli_info_json_flattens_nested_parameters():
    result = CliRunner().invoke(cli, ["info", "lif_refrac", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["model"]
    params = {r["name"]: r for r in row["parameters"]}
    assert params["lif.tau_mem_inv"]["default"] == 100.0
    assert params["lif.tau_mem_inv"]["unit"] == "1/s"
    assert params["rho_reset"] == {
        "name": "rho_reset",
        "default": 5.0,
        "unit": "steps",
        "doc": "refractory period after a spike",
    }
    assert [f["name"] for f in row["states"]["recurrent"]] == ["lif", "rho"]
    assert "m = H(rho)" in row["equations"]


def test_lif_mc_refrac_default_coupling_is_small_and_stable():
    # Default g_coupling = 1e-3·N(0, 1)/sqrt(hidden) per step (the reference's N(0, 1)/sqrt(hidden)
    # per step makes |v| grow without bound within tens of steps).
    torch.manual_seed(0)
    layer = LIFMCRefracRecurrent(4, 64)
    std = layer.g_coupling.detach().std().item()
    assert 0.8e-3 / 8 < std < 1.2e-3 / 8  # 1e-3/sqrt(64) = 1.25e-4
    with torch.no_grad():
        z, s = layer(_spikes((1000, 2, 4), seed=7))
    assert torch.isfinite(s.lif.v).all() and s.lif.v.abs().max() < 10
    assert 0 < z.mean() < 1 / 6
