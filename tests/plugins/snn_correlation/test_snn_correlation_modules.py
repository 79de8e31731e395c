"""snn-correlation: registration, CLI, module plumbing and clear errors for bad input."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from click.testing import CliRunner
from snn_correlation import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    LIFCorrelation,
    LIFCorrelationParameters,
    LIFRecurrentCorrelation,
    LIFRecurrentCorrelationCell,
    LIFRecurrentCorrelationParameters,
    correlation_sensor_step,
    initial_sensor_state,
)
from snn_lif import LIFParameters

import snncore
from snncore.cli import cli

# --------------------------------------------------------------------------------------------
# Registration and the command line
# --------------------------------------------------------------------------------------------


def test_list_models_json_lists_lif_correlation():
    result = CliRunner().invoke(cli, ["list-models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["models"]}
    row = rows["lif_correlation"]
    assert row["distribution"] == "snn-correlation"
    assert row["plugin"] == "snn-correlation"
    assert row["family"] == "correlation"
    assert row["variants"] == ["recurrent_cell", "recurrent"]
    assert "torch" in row["backends"]
    assert [name for name, r in rows.items() if r["distribution"] == "snn-correlation"] == [
        "lif_correlation"
    ]


def test_list_models_family_filter():
    result = CliRunner().invoke(cli, ["list-models", "--family", "correlation"])
    assert result.exit_code == 0, result.output
    assert "lif_correlation" in result.output
    assert "snn-correlation" in result.output


def test_info_shows_equations_parameters_and_units():
    result = CliRunner().invoke(cli, ["info", "lif_correlation"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "C1 = C - (1 - pp)*dt*tau_c_inv*C" in text
    assert "A1 = A - pp*dt*tau_ac_inv*A" in text
    assert "pp' = H(pp + post - pre)" in text
    for name in (
        "lif_parameters.tau_mem_inv",
        "recurrent_correlation_parameters.eta_p",
        "recurrent_correlation_parameters.tau_c_inv",
    ):
        assert name in text
    assert "1/s" in text
    assert "recurrent_correlation_state" in text


def test_info_json_parameters_defaults_units_and_states():
    result = CliRunner().invoke(cli, ["info", "lif_correlation", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["model"]
    params = {r["name"]: r for r in row["parameters"]}
    for field, default, unit in (
        ("eta_p", 1.0, ""),
        ("eta_m", 1.0, ""),
        ("tau_ac_inv", 10.0, "1/s"),
        ("tau_c_inv", 10.0, "1/s"),
    ):
        entry = params[f"recurrent_correlation_parameters.{field}"]
        assert entry["default"] == pytest.approx(default)
        assert entry["unit"] == unit
    assert params["lif_parameters.v_th"]["unit"] == "V"
    assert [s["name"] for s in row["states"]["recurrent"]] == [
        "lif_state",
        "recurrent_correlation_state",
    ]
    assert row["variants"] == ["recurrent_cell", "recurrent"]


def test_create_returns_the_named_classes_and_they_pickle():
    layer = snncore.create("lif_correlation", variant="recurrent", input_size=3, hidden_size=4)
    assert type(layer) is LIFRecurrentCorrelation
    assert torch.equal(layer.recurrent_weights.diagonal(), torch.zeros(4))  # no autapses
    copy = pickle.loads(pickle.dumps(layer))
    x = (torch.rand(5, 2, 3) < 0.5).float()
    z, s = layer(x)
    z2, s2 = copy(x)
    assert torch.equal(z, z2)
    assert s.recurrent_correlation_state.post_pre.shape == (2, 4, 4)
    assert torch.equal(s.recurrent_correlation_state.correlation_trace, s2[1][1])


def test_learnable_sensor_parameter_gets_a_gradient():
    cell = LIFRecurrentCorrelationCell(
        3,
        4,
        learnable=("recurrent_correlation_parameters.eta_m",),
        input_weights=torch.full((4, 3), 2.0),
        recurrent_weights=torch.zeros(4, 4),
    )
    names = [name for name, _ in cell.named_parameters()]
    assert any("eta_m" in name for name in names)
    x = torch.ones(2, 3)
    state = None
    for _ in range(3):
        _, state = cell(x, state)
    state.recurrent_correlation_state.anti_correlation_trace.sum().backward()
    grad = next(p.grad for n, p in cell.named_parameters() if "eta_m" in n)
    assert grad is not None and grad.abs().sum() > 0


def test_lif_correlation_works_in_float64_and_under_no_grad():
    module = LIFCorrelation(3, 2)
    x = torch.ones(1, 3, dtype=torch.float64)
    w_in, w_rec = (
        torch.full((2, 3), 5.0, dtype=torch.float64),
        torch.zeros(2, 2, dtype=torch.float64),
    )
    with torch.no_grad():
        z, state = module(x, w_in, w_rec)
    # i1 = 15, v1 = 0.1·15 = 1.5 > 1: both neurons spike on the first step
    assert z.dtype == torch.float64
    assert torch.equal(z, torch.ones(1, 2, dtype=torch.float64))
    assert state.input_correlation_state.correlation_trace.dtype == torch.float64


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau_c_inv": 0.0}, "tau_c_inv must be > 0"),
        ({"tau_c_inv": -10.0}, "tau_c_inv must be > 0"),
        ({"tau_c_inv": float("nan")}, "tau_c_inv must be > 0"),
        ({"tau_ac_inv": 0.0}, "tau_ac_inv must be > 0"),
        ({"tau_ac_inv": torch.tensor([10.0, -1.0])}, "tau_ac_inv must be > 0"),
    ],
)
def test_sensor_parameters_reject_non_positive_rates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CorrelationSensorParameters(**kwargs)


def test_parameters_reject_wrong_types():
    with pytest.raises(TypeError, match="a parameter must be a number or a tensor"):
        CorrelationSensorParameters(eta_p="one")
    with pytest.raises(TypeError, match="lif_parameters"):
        LIFCorrelationParameters(lif_parameters=CorrelationSensorParameters())
    with pytest.raises(TypeError, match="input_correlation_parameters"):
        LIFCorrelationParameters(input_correlation_parameters=LIFParameters())
    with pytest.raises(TypeError, match="recurrent_correlation_parameters"):
        LIFRecurrentCorrelationParameters(recurrent_correlation_parameters=1.0)


def _sensor(shape=(1, 3, 2)) -> CorrelationSensorState:
    return initial_sensor_state(shape)


@pytest.mark.parametrize(
    ("z_pre", "z_post", "error", "match"),
    [
        (torch.zeros(1, 4), torch.zeros(1, 2), ValueError, r"z_pre must have shape .* = \(1, 3\)"),
        (torch.zeros(1, 3), torch.zeros(1, 3), ValueError, r"z_post must have shape .* = \(1, 2\)"),
        (torch.zeros(2, 3), torch.zeros(2, 2), ValueError, r"z_pre must have shape .* \(1, 3\)"),
        (torch.zeros(3), torch.zeros(2), ValueError, r"z_pre must have shape .* \(1, 3\)"),
        (torch.zeros(1, 3, dtype=torch.int64), torch.zeros(1, 2), TypeError, "floating-point"),
        ([[0.0, 0.0, 0.0]], torch.zeros(1, 2), TypeError, "z_pre must be a floating-point"),
    ],
)
def test_sensor_step_rejects_spikes_that_do_not_fit_the_state(z_pre, z_post, error, match):
    with pytest.raises(error, match=match):
        correlation_sensor_step(z_pre, z_post, _sensor())


def test_sensor_step_rejects_bad_states():
    with pytest.raises(TypeError, match="state must be a CorrelationSensorState"):
        correlation_sensor_step(torch.zeros(1, 3), torch.zeros(1, 2), (torch.zeros(1, 3, 2),) * 2)
    ragged = _sensor()._replace(correlation_trace=torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="share one shape"):
        correlation_sensor_step(torch.zeros(1, 3), torch.zeros(1, 2), ragged)
    flat = CorrelationSensorState(*(torch.zeros(3) for _ in range(3)))
    with pytest.raises(ValueError, match=r"\(\*batch, pre, post\)"):
        correlation_sensor_step(torch.zeros(3), torch.zeros(3), flat)


def test_lif_correlation_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="input_size must be a positive integer"):
        LIFCorrelation(0, 3)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        LIFCorrelation(3, 2.5)
    with pytest.raises(TypeError, match="p must be LIFCorrelationParameters"):
        LIFCorrelation(3, 4, LIFRecurrentCorrelationParameters())
    with pytest.raises(ValueError, match="dt must be a positive number"):
        LIFCorrelation(3, 4, dt=0.0)
    with pytest.raises(LookupError, match="nope"):
        LIFCorrelation(3, 4, LIFCorrelationParameters(LIFParameters(method="nope")))


W_IN, W_REC = torch.zeros(4, 3), torch.zeros(4, 4)


@pytest.mark.parametrize(
    ("x", "w_in", "w_rec", "error", "match"),
    [
        (torch.zeros(3), W_IN, W_REC, ValueError, r"input of shape \(batch, input_size=3\)"),
        (torch.zeros(5, 2, 3), W_IN, W_REC, ValueError, r"\(batch, input_size=3\)"),
        (torch.zeros(2, 4), W_IN, W_REC, ValueError, r"input must have shape \(2, 3\)"),
        (torch.zeros(2, 3), W_IN.T, W_REC, ValueError, r"input_weights must have shape \(4, 3\)"),
        (torch.zeros(2, 3), W_IN, W_IN, ValueError, r"recurrent_weights must have shape \(4, 4\)"),
        (torch.zeros(2, 3, dtype=torch.int64), W_IN, W_REC, TypeError, "floating point"),
        (torch.zeros(2, 3), W_IN.double(), W_REC, TypeError, "input_weights is torch.float64"),
    ],
)
def test_lif_correlation_forward_rejects_bad_shapes_and_dtypes(x, w_in, w_rec, error, match):
    with pytest.raises(error, match=match):
        LIFCorrelation(3, 4)(x, w_in, w_rec)


def test_lif_correlation_rejects_a_state_of_another_batch_or_model():
    module = LIFCorrelation(3, 4)
    _, state = module(torch.zeros(1, 3), W_IN, W_REC)
    with pytest.raises(ValueError, match=r"z must have shape \(\*batch, hidden\) = \(5, 4\)"):
        module(torch.zeros(5, 3), W_IN, W_REC, state)
    _, other = LIFRecurrentCorrelationCell(3, 4)(torch.zeros(1, 3))
    with pytest.raises(TypeError, match="state must be a LIFCorrelationState"):
        module(torch.zeros(1, 3), W_IN, W_REC, other)


def test_registered_modules_reject_bad_input():
    cell = LIFRecurrentCorrelationCell(3, 4)
    with pytest.raises(ValueError, match="input_size=3"):
        cell(torch.zeros(2, 5))
    _, state = cell(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"z_post must have shape \(\*batch, post\) = \(1, 4\)"):
        cell(torch.zeros(2, 3), state)  # a state of batch 1 with a batch of 2
    with pytest.raises(ValueError, match="dt must be a positive number"):
        snncore.create("lif_correlation", variant="recurrent", input_size=3, hidden_size=4, dt=-1)
    with pytest.raises(TypeError, match="p must be LIFRecurrentCorrelationParameters"):
        LIFRecurrentCorrelation(3, 4, LIFCorrelationParameters())


def test_lif_correlation_follows_a_replaced_p_and_grad_carrying_parameters():
    # x = [1, 1], W_in = 1: i1 = 2, v1 = 0.2, no spike; the input sensor gets C' = eta_p·1.
    x, w_in, w_rec = torch.ones(1, 2, dtype=torch.float64), torch.ones(2, 2), torch.zeros(2, 2)
    w_in, w_rec = w_in.double(), w_rec.double()
    module = LIFCorrelation(2, 2)
    _, state = module(x, w_in, w_rec)
    assert torch.equal(
        state.input_correlation_state.correlation_trace, torch.ones(1, 2, 2).double()
    )
    module.p = LIFCorrelationParameters(
        input_correlation_parameters=CorrelationSensorParameters(eta_p=3.0)
    )
    _, state = module(x, w_in, w_rec)  # the new p is used, not a cached copy of the old one
    assert torch.equal(
        state.input_correlation_state.correlation_trace, torch.full((1, 2, 2), 3.0).double()
    )
    # a learnt float32 parameter used from float64 input: gradients arrive, and an optimiser's
    # in-place change is seen on the next call (no stale converted copy)
    eta = torch.tensor(2.0, requires_grad=True)
    module.p = LIFCorrelationParameters(
        input_correlation_parameters=CorrelationSensorParameters(eta_p=eta)
    )
    _, state = module(x, w_in, w_rec)
    state.input_correlation_state.correlation_trace.sum().backward()
    assert eta.grad == 4.0  # dC'/deta_p = pre_mask = 1, summed over the 2 x 2 synapses
    with torch.no_grad():
        eta += 1.0
    _, state = module(x, w_in, w_rec)
    assert torch.equal(
        state.input_correlation_state.correlation_trace, torch.full((1, 2, 2), 3.0).double()
    )
