"""Clear errors (or working results) where a layer used to fail deep inside: a state from
another batch, double backward through the LIF sequence, float16 Izhikevich, and parameters out
of range (NaN, inf, a non-positive inverse time constant, a negative surrogate sharpness)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import snncore

# -- a state from another batch --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "fused"])
def test_a_state_from_another_batch_names_the_field_and_shapes(backend: str) -> None:
    layer = snncore.create("lif", backend=backend)
    _, state = layer(torch.rand(4, 5, 3))
    with pytest.raises(ValueError) as info:
        layer(torch.rand(4, 2, 3), state)
    assert str(info.value) == (
        "LIF: state field 'v' has shape (5, 3), but an input of shape (4, 2, 3) needs (2, 3) "
        "(a state from another batch size? pass state=None to start afresh)"
    )


def test_a_larger_state_no_longer_broadcasts_silently_over_a_batch_of_one() -> None:
    layer = snncore.create("lif", backend="torch")
    _, state = layer(torch.rand(4, 5, 3))
    with pytest.raises(ValueError, match=r"state field 'v' has shape \(5, 3\), .* needs \(1, 3\)"):
        layer(torch.rand(4, 1, 3), state)


def test_recurrent_layers_and_cells_check_the_state_too() -> None:
    recurrent = snncore.create("lsnn", variant="recurrent", input_size=2, hidden_size=4)
    _, state = recurrent(torch.rand(3, 5, 2))
    with pytest.raises(ValueError, match=r"LSNNRecurrent: state field 'z' has shape \(5, 4\)"):
        recurrent(torch.rand(3, 2, 2), state)
    cell = snncore.create("lif_refrac", variant="cell")
    _, state = cell(torch.rand(5, 3))
    with pytest.raises(ValueError, match=r"state field 'lif\.v' has shape \(5, 3\), .* \(2, 3\)"):
        cell(torch.rand(2, 3), state)


def test_a_state_that_broadcasts_without_growing_is_still_accepted() -> None:
    layer = snncore.create("lif", backend="torch")
    _, state = layer(torch.rand(4, 1, 3))  # batch 1
    out, final = layer(torch.rand(4, 2, 3), state)
    assert tuple(out.shape) == (4, 2, 3) and tuple(final.v.shape) == (2, 3)


# -- double backward, float16 -----------------------------------------------------------------


def test_double_backward_through_the_lif_sequence_equals_the_step_loop() -> None:
    """The whole-sequence LIF (torch backend) raised "add(): functions with out=... arguments
    don't support automatic differentiation"; its backward now has a graph when asked for one
    and agrees with the step loop (record_states=True runs the steps)."""
    torch.manual_seed(0)
    x = (3 * torch.rand(6, 2, 3, dtype=torch.float64)).requires_grad_()

    def penalty(layer: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        out, state = layer(x)
        v = state.v if state.v.dim() == 2 else state.v[-1]
        (g,) = torch.autograd.grad(out.sum() + (v**2).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g**2).sum(), x)
        return g, gg

    sequence = snncore.create("lif", backend="torch").double()
    steps = snncore.create("lif", backend="torch", record_states=True).double()
    g, gg = penalty(sequence)
    g_ref, gg_ref = penalty(steps)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gg, gg_ref, rtol=1e-12, atol=1e-12)
    assert float(gg.abs().sum()) > 0


def test_izhikevich_refuses_float16_clearly_and_runs_bfloat16() -> None:
    layer = snncore.create("izhikevich")
    with pytest.raises(TypeError) as info:
        layer(torch.rand(5, 2, 3, dtype=torch.float16))
    assert str(info.value) == (
        "izhikevich cannot run in float16: its state is bounded by |v| <= 1e4 mV (v² <= 1e8) "
        "and |u| <= 1e6, beyond float16's largest value 65504; use float32, float64 or bfloat16"
    )
    out, state = layer(10 * torch.rand(50, 2, 3, dtype=torch.bfloat16))
    assert out.dtype == state.v.dtype == torch.bfloat16 and bool(torch.isfinite(state.v).all())


# -- parameters out of range ------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("model", "field", "value", "message"),
    [
        ("lif", "tau_mem_inv", 0.0, "LIFParameters.tau_mem_inv must be > 0 and finite, got 0.0"),
        ("lif", "tau_mem_inv", -1.0, "LIFParameters.tau_mem_inv must be > 0 and finite, got -1.0"),
        ("lif", "tau_mem_inv", NAN, "LIFParameters.tau_mem_inv must be > 0 and finite, got nan"),
        ("lif", "tau_syn_inv", INF, "LIFParameters.tau_syn_inv must be > 0 and finite, got inf"),
        ("lif", "alpha", -1.0, "LIFParameters.alpha must be >= 0 and finite, got -1.0"),
        ("lif", "v_th", NAN, "LIFParameters.v_th must be finite, got nan"),
        ("li", "tau_mem_inv", -5.0, "LIParameters.tau_mem_inv must be > 0 and finite, got -5.0"),
        ("lsnn", "tau_adapt_inv", 0.0, "LSNNParameters.tau_adapt_inv must be > 0 and finite, got 0.0"),
        ("lif_adex", "tau_ada_inv", INF, "LIFAdExParameters.tau_ada_inv must be > 0 and finite, got inf"),
        ("lif_ex", "v_reset", -INF, "LIFExParameters.v_reset must be finite, got -inf"),
        ("coba_lif", "tau_syn_exc_inv", -0.2, "CobaLIFParameters.tau_syn_exc_inv must be > 0 and finite, got -0.2"),
        ("coba_lif", "alpha", NAN, "CobaLIFParameters.alpha must be >= 0 and finite, got nan"),
        ("izhikevich", "a", NAN, "IzhikevichParameters.a must be finite, got nan"),
        ("izhikevich", "tau_inv", INF, "IzhikevichParameters.tau_inv must be > 0 and finite, got inf"),
    ],
)  # fmt: skip
def test_parameters_out_of_range_name_the_field_and_value(
    model: str, field: str, value: float, message: str
) -> None:
    variant = snncore.get_model(model).variants[0]
    kwargs: dict[str, Any] = {"input_size": 2, "hidden_size": 3} if "recurrent" in variant else {}
    with pytest.raises(ValueError) as info:
        snncore.create(model, variant=variant, **{field: value}, **kwargs)
    assert str(info.value) == message


def test_a_per_neuron_value_out_of_range_is_located() -> None:
    from snn_lif import LIFParameters

    with pytest.raises(ValueError) as info:
        LIFParameters(tau_mem_inv=torch.tensor([100.0, 50.0, -3.0]))
    assert str(info.value) == (
        "LIFParameters.tau_mem_inv must be > 0 and finite, got -3.0 at index (2,) (of a tensor "
        "of shape (3,))"
    )


def test_nested_and_sensor_parameters_are_validated() -> None:
    from snn_correlation import CorrelationSensorParameters
    from snn_lif import LIFParameters
    from snn_refrac import LIFRefracParameters

    with pytest.raises(ValueError, match=r"^LIFParameters\.tau_syn_inv must be > 0 and finite"):
        LIFRefracParameters(lif=LIFParameters(tau_syn_inv=-1.0))
    with pytest.raises(
        ValueError, match=r"^LIFRefracParameters\.rho_reset must be finite, got inf"
    ):
        LIFRefracParameters(rho_reset=INF)
    with pytest.raises(ValueError, match=r"^CorrelationSensorParameters\.eta_p must be finite"):
        CorrelationSensorParameters(eta_p=NAN)


def test_a_learnt_rate_that_leaves_its_range_fails_at_the_next_call() -> None:
    layer = snncore.create("lif", learnable=["tau_mem_inv"], backend="torch")
    with torch.no_grad():
        layer.p_tau_mem_inv.fill_(-1.0)
    with pytest.raises(ValueError, match=r"LIFParameters\.tau_mem_inv must be > 0 and finite"):
        layer(torch.rand(3, 2, 4))


# -- snn simulate -----------------------------------------------------------------------------

NAN_PLUGIN = """
from typing import NamedTuple

import attrs
import torch

import snncore


@attrs.frozen
class P:
    gain: torch.Tensor = snncore.tensor_field(1.0, "", "gain")
    method: str = snncore.method_field()
    alpha: torch.Tensor = snncore.tensor_field(100.0, "", "sharpness")


class S(NamedTuple):
    v: torch.Tensor


def step(x, s, p, dt):
    v = s.v + x * p.gain
    v = torch.where(v > 2.0, torch.full_like(v, float("nan")), v)
    return snncore.spike(v - 1.0, p.method, p.alpha) + 0.0 * v, S(v)  # NaN reaches the output


MODEL = snncore.NeuronModel(
    name="nanny", family="test", summary="goes NaN", parameters=P,
    feed_forward_step=step, feed_forward_state=S,
)


@snncore.hookimpl
def register_models(register):
    register(MODEL)
"""


def _snn(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "snn"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SNNCORE_")}
    return subprocess.run(
        [str(script), *args], env={**environment, **env}, capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip


def test_simulate_refuses_a_non_finite_current() -> None:
    done = _snn("simulate", "lif", "--current", "inf")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "Error: Invalid value for --current: must be a finite number, got inf"
    )
    assert done.stdout == ""


def test_simulate_reports_a_model_that_goes_nan(tmp_path: Path) -> None:
    """It printed ``spike counts per neuron: [-9223372036854775808, ...]`` (NaN cast to int64)."""
    (tmp_path / "snn_nanny.py").write_text(NAN_PLUGIN)
    info = tmp_path / "snn_nanny-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: snn-nanny\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[snncore]\nsnn-nanny = snn_nanny\n")
    done = _snn("simulate", "nanny", "--steps", "20", "--neurons", "4", PYTHONPATH=str(tmp_path))
    assert done.returncode == 1, done.stderr
    assert "-9223372036854775808" not in done.stdout
    assert done.stderr.splitlines() == [
        "Error: model 'nanny' produced 76 non-finite output values (NaN) of 80, the first at "
        "step 0: its step is not finite for this input"
    ]
