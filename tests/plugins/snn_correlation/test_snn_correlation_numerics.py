"""snn-correlation: numerical safety over 10,000 steps of ±1e3 inputs (float32).

Every step is explicit Euler with decay factors ``1 − dt·tau`` in [0, 1) for the defaults, and
each increment is bounded by the input, so no state can overflow: after 10,000 steps of ±1e3 the
traces are bounded by 1e3·10,000 = 1e7.  The tests keep the running maximum of ``|state|`` over
all steps (``torch.maximum`` propagates NaN, so a NaN at any step would survive to the end) and
print it with ``-s``.  A CUDA test (skipped without a GPU) checks that CUDA agrees with the CPU.
"""

from __future__ import annotations

import pytest
import torch
from snn_correlation import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    LIFCorrelation,
    LIFCorrelationParameters,
    LIFRecurrentCorrelation,
    correlation_sensor_step,
    initial_sensor_state,
)
from torch.testing import assert_close

T = 10_000
BOUND = 1e3 * T  # no increment exceeds 1e3 per step


def _pm_1e3(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """±1e3 with random signs."""
    gen = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(shape, generator=gen) < 0.5, -1e3, 1e3)


def _flatten(state) -> dict[str, torch.Tensor]:
    out = {f"lif.{k}": v for k, v in state.lif_state._asdict().items()}
    for sensor in ("input_correlation_state", "recurrent_correlation_state"):
        if hasattr(state, sensor):
            for k, v in getattr(state, sensor)._asdict().items():
                out[f"{sensor.split('_')[0]}.{k}"] = v
    return out


def _track(running: dict[str, torch.Tensor] | None, values: dict[str, torch.Tensor]):
    maxima = {k: v.detach().abs().amax() for k, v in values.items()}
    if running is None:
        return maxima
    return {k: torch.maximum(running[k], maxima[k]) for k in running}


def _report(label: str, running: dict[str, torch.Tensor]) -> None:
    print(f"\n{label}: max |state| over {T} steps of ±1e3 input")
    for name, value in running.items():
        print(f"  {name:35s} {value.item():.4g}")
        assert torch.isfinite(value), f"{name} is not finite"
        assert value <= BOUND, name


def test_sensor_step_stays_finite_for_pm_1e3_spikes():
    pre, post = _pm_1e3((T, 2, 5), seed=1), _pm_1e3((T, 2, 4), seed=2)
    state, running = initial_sensor_state((2, 5, 4)), None
    p = CorrelationSensorParameters()
    for z_pre, z_post in zip(pre, post, strict=True):
        state = correlation_sensor_step(z_pre, z_post, state, p)
        running = _track(running, state._asdict())
    _report("correlation_sensor_step", running)
    assert set(state.post_pre.unique().tolist()) <= {0.0, 1.0}


def test_lif_correlation_stays_finite_for_pm_1e3_inputs():
    gen = torch.Generator().manual_seed(3)
    w_in = torch.round(16 * torch.randn(4, 3, generator=gen)) / 16
    w_rec = torch.round(16 * torch.randn(4, 4, generator=gen)) / 16
    module = LIFCorrelation(3, 4, LIFCorrelationParameters())
    x = _pm_1e3((T, 2, 3), seed=4)
    state, running = None, None
    with torch.no_grad():
        for x_t in x:
            _, state = module(x_t, w_in, w_rec, state)
            running = _track(running, _flatten(state))
    _report("LIFCorrelation", running)


def test_registered_recurrent_layer_stays_finite_for_pm_1e3_inputs():
    gen = torch.Generator().manual_seed(7)
    layer = LIFRecurrentCorrelation(
        3,
        4,
        input_weights=torch.randn(4, 3, generator=gen),
        recurrent_weights=torch.randn(4, 4, generator=gen),
        record_states=True,
    )
    with torch.no_grad():
        z, states = layer(_pm_1e3((T, 2, 3), seed=5))
    running = {k: v.abs().amax() for k, v in _flatten(states).items()}
    _report("LIFRecurrentCorrelation", running)
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    assert isinstance(states.recurrent_correlation_state, CorrelationSensorState)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    # 0/1 input spikes and 1/16-grid weights: the spikes must agree exactly, the states closely.
    gen = torch.Generator().manual_seed(6)
    x = (torch.rand(300, 3, 5, generator=gen) < 0.3).float()
    w_in = torch.round(16 * torch.randn(4, 5, generator=gen)) / 16
    w_rec = torch.round(8 * torch.randn(4, 4, generator=gen)) / 16
    layer = LIFRecurrentCorrelation(5, 4, input_weights=w_in, recurrent_weights=w_rec)
    with torch.no_grad():
        z_cpu, s_cpu = layer(x)
        z_gpu, s_gpu = layer.to("cuda")(x.cuda())
    assert torch.equal(z_gpu.cpu(), z_cpu)
    for name, value in _flatten(s_cpu).items():
        assert_close(_flatten(s_gpu)[name].cpu(), value, rtol=1e-5, atol=1e-5, msg=name)
    module, state, state_gpu = LIFCorrelation(5, 4), None, None
    with torch.no_grad():
        for x_t in x:
            z, state = module(x_t, w_in, w_rec, state)
            z_g, state_gpu = module(x_t.cuda(), w_in.cuda(), w_rec.cuda(), state_gpu)
            assert torch.equal(z_g.cpu(), z)
    for name, value in _flatten(state).items():
        assert_close(_flatten(state_gpu)[name].cpu(), value, rtol=1e-5, atol=1e-5, msg=name)
