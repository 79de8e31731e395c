"""LSNN modules beyond the generic conformance checks (tests/conformance: shapes, dtypes, the
initial state, state threading, layer == looped cell, pickling): recurrent weight gradients of
layer and looped cell, gradients against finite differences, learnable parameters, errors for bad
input, and how the model shows in the registry and CLI."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from snn_lsnn import (
    LSNN,
    LSNNCell,
    LSNNParameters,
    LSNNRecurrent,
    LSNNRecurrentCell,
)
from torch.testing import assert_close

import snncore
from snncore.cli import cli

F64 = torch.float64
P = LSNNParameters(tau_adapt_inv=50.0, beta=0.3, v_th=0.6)  # adapts and relaxes within the run


def _currents(shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.3 + 0.5 * torch.randn(shape, generator=gen)).to(dtype)


def _spikes(shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < 0.3).to(dtype)


def _recurrent_pair(input_size=3, hidden_size=5, seed=0, **kwargs):
    """Cell and layer with the same weights; multiples of 1/8, so ``W·x`` of 0/1 spikes is exact
    in any summation order and layer and looped cell can be compared bit for bit."""
    gen = torch.Generator().manual_seed(seed)
    w_in = torch.randint(-16, 17, (hidden_size, input_size), generator=gen) / 4.0
    w_rec = torch.randint(-8, 9, (hidden_size, hidden_size), generator=gen) / 8.0
    common = {"input_weights": w_in, "recurrent_weights": w_rec, **kwargs}
    return (
        LSNNRecurrentCell(input_size, hidden_size, P, **common),
        LSNNRecurrent(input_size, hidden_size, P, **common),
    )


# --------------------------------------------------------------------------------------------
# Recurrent layer == looped cell: weight gradients
# --------------------------------------------------------------------------------------------


def test_lsnn_recurrent_layer_weight_gradients_equal_looped_cell():
    cell, layer = _recurrent_pair()
    cell, layer = cell.double(), layer.double()
    x = _spikes((30, 2, 3), seed=3, dtype=F64)
    state, outs = None, []
    for x_t in x:
        z, state = cell(x_t, state)
        outs.append(z)
    (torch.stack(outs).sum() + state.v.sum()).backward()
    z, state = layer(x)
    (z.sum() + state.v.sum()).backward()
    for (name, a), (_, b) in zip(cell.named_parameters(), layer.named_parameters(), strict=True):
        assert a.grad is not None and a.grad.abs().sum() > 0, name
        assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-12, msg=name)


# --------------------------------------------------------------------------------------------
# Gradients against finite differences (float64, no spikes: the threshold far away)
# --------------------------------------------------------------------------------------------


def test_lsnn_layer_input_gradient_matches_finite_differences():
    layer = LSNN(LSNNParameters(v_th=1e6, tau_adapt_inv=50.0), record_states=True).double()
    x = 0.3 * torch.randn(12, 2, 3, generator=torch.Generator().manual_seed(4), dtype=F64)

    def loss_terms(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, states = layer(inp)
        assert not z.any()
        return states.v, (states.i**2).sum()

    assert torch.autograd.gradcheck(
        loss_terms, (x.requires_grad_(),), eps=1e-6, atol=1e-8, rtol=1e-6
    )


def test_lsnn_recurrent_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(5)
    layer = LSNNRecurrent(
        3, 4, LSNNParameters(v_th=1e6), record_states=True, input_weights=torch.randn(4, 3)
    ).double()
    x = torch.rand(8, 2, 3, generator=gen, dtype=F64).requires_grad_()
    w_in = layer.input_weights.detach().clone().requires_grad_()

    def voltages(inp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        z, states = torch.func.functional_call(layer, {"input_weights": weights}, (inp,))
        assert not z.any()
        return states.v

    assert torch.autograd.gradcheck(voltages, (x, w_in), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_lsnn_learnable_parameters_get_gradients():
    layer = LSNN(P, learnable=("beta", "tau_adapt_inv", "v_th")).double()
    z, s = layer(_currents((40, 2, 3), seed=6, dtype=F64))
    assert z.sum() > 0
    (z.sum() + s.v.sum()).backward()
    for name in ("p_beta", "p_tau_adapt_inv", "p_v_th"):
        grad = getattr(layer, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs() > 0, name


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_lsnn_bad_input_errors():
    with pytest.raises(TypeError, match="real input"):
        LSNNCell()(torch.zeros(2, 3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="tensor"):
        LSNN()([[0.0]])
    with pytest.raises(ValueError, match=r"\(time, \*batch, \*features\)"):
        LSNN()(torch.zeros(()))
    cell, layer = _recurrent_pair(input_size=3)
    with pytest.raises(ValueError, match="input_size=3"):
        cell(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="input_size=3"):
        layer(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="input_weights must have shape"):
        LSNNRecurrentCell(3, 5, input_weights=torch.zeros(3, 5))
    with pytest.raises(TypeError, match="LSNNParameters"):
        LSNNCell(p=snncore.get_model("lif").parameters())
    with pytest.raises(TypeError, match="tau_adapt_inv"):  # the message lists the fields
        LSNNCell(tau_adapt=1.0)
    with pytest.raises(snncore.UnknownNameError, match="nope"):
        LSNNCell(method="nope")
    with pytest.raises(ValueError, match="dt"):
        LSNN(dt=0.0)


# --------------------------------------------------------------------------------------------
# Registry and CLI
# --------------------------------------------------------------------------------------------


def test_lsnn_registered_with_norse_names():
    model = snncore.get_model("lsnn")
    assert model.family == "lsnn"
    assert model.variants == ("cell", "recurrent_cell", "layer", "recurrent")
    assert type(snncore.create("lsnn", variant="cell")) is LSNNCell
    assert type(snncore.create("lsnn", variant="recurrent", input_size=2, hidden_size=3)) is (
        LSNNRecurrent
    )


def test_lsnn_cli_info_json():
    result = CliRunner().invoke(cli, ["info", "lsnn", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["model"]
    params = {r["name"]: r for r in row["parameters"]}
    assert params["tau_adapt_inv"]["unit"] == "1/s"
    assert params["tau_adapt_inv"]["default"] == pytest.approx(1 / 800)
    assert params["beta"]["default"] == pytest.approx(1.8)
    assert [f["name"] for f in row["states"]["recurrent"]] == ["z", "v", "i", "b"]
    assert [f["name"] for f in row["states"]["layer"]] == ["v", "i", "b"]
    assert "b1 = b + dt*tau_adapt_inv*(v_th - b)" in row["equations"]
