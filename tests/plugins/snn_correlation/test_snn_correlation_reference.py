"""snn-correlation against the reference library, ``norse==1.1.0`` (skipped where not installed).

Over 1,000 steps of random input spikes (batch 1, where the reference is right) the spikes must
be equal and every state variable (LIF ``v``, ``i``; each sensor's ``post_pre``,
``correlation_trace``, ``anti_correlation_trace``) within ``rtol=1e-5, atol=1e-6`` (float32).
Weights lie on a 1/16 grid so that ``W·z`` of 0/1 spikes is exact in any summation order; what
remains is the order of ``i + W_in·x + W_rec·z`` (the reference adds left to right, snn_lif adds
the weighted sum to ``i``), a rounding difference of one float32 ulp at most per step.  Run with
``-s`` to see the largest deviation of each state variable.

Batch > 1 differs on purpose: the reference fails, or (batch = pre = post) mixes the batch
entries; we check that each entry of ours equals the reference run on that entry alone.
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
    LIFRecurrentCorrelationCell,
    LIFRecurrentCorrelationParameters,
    correlation_based_update,
    correlation_sensor_step,
    correlation_weight_update,
    initial_sensor_state,
)
from snn_lif import LIFParameters
from torch.testing import assert_close

norse = pytest.importorskip("norse.torch")

T = 1000
IN, HIDDEN = 6, 8
TOL = {"rtol": 1e-5, "atol": 1e-6}
SENSOR_FIELDS = CorrelationSensorState._fields
LIF_FIELDS = ("z", "v", "i")

LIF_CUSTOM = {
    "tau_syn_inv": 150.0,
    "tau_mem_inv": 80.0,
    "v_leak": 0.1,
    "v_th": 0.6,
    "v_reset": -0.2,
}
INPUT_SENSOR_CUSTOM = {"eta_p": 0.5, "eta_m": 0.25, "tau_ac_inv": 20.0, "tau_c_inv": 40.0}
RECURRENT_SENSOR_CUSTOM = {"eta_p": 0.75, "eta_m": 1.5, "tau_ac_inv": 30.0, "tau_c_inv": 5.0}
PARAMETER_SETS = {
    "defaults": ({}, {}, {}),
    "custom": (LIF_CUSTOM, INPUT_SENSOR_CUSTOM, RECURRENT_SENSOR_CUSTOM),
}


def _parameters(name: str):
    lif, input_sensor, recurrent_sensor = PARAMETER_SETS[name]

    def tensors(d):
        return {k: torch.as_tensor(v) for k, v in d.items()}

    ours = LIFCorrelationParameters(
        LIFParameters(**lif),
        CorrelationSensorParameters(**input_sensor),
        CorrelationSensorParameters(**recurrent_sensor),
    )
    theirs = norse.LIFCorrelationParameters(
        norse.LIFParameters(**tensors(lif)),
        norse.CorrelationSensorParameters(**tensors(input_sensor)),
        norse.CorrelationSensorParameters(**tensors(recurrent_sensor)),
    )
    return ours, theirs


def _grid(w: torch.Tensor) -> torch.Tensor:
    return torch.round(16 * w) / 16


def _weights(seed: int, input_size: int = IN, hidden_size: int = HIDDEN):
    gen = torch.Generator().manual_seed(seed)
    w_in = _grid(2.0 * torch.randn(hidden_size, input_size, generator=gen) / input_size**0.5)
    w_rec = _grid(torch.randn(hidden_size, hidden_size, generator=gen) * 0.7)
    w_rec.fill_diagonal_(0.0)  # no autapses, as the registered modules do by default
    return w_in, w_rec


def _spikes(shape: tuple[int, ...], seed: int, rate: float = 0.2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < rate).float()


def _flatten(state) -> dict[str, torch.Tensor]:
    """``LIFCorrelationState`` (or the registered model's state) as ``{name: tensor}``."""
    out = {f"lif.{f}": getattr(state.lif_state, f) for f in LIF_FIELDS}
    for sensor in ("input_correlation_state", "recurrent_correlation_state"):
        if hasattr(state, sensor):
            for f in SENSOR_FIELDS:
                out[f"{sensor.split('_')[0]}.{f}"] = getattr(getattr(state, sensor), f)
    return out


@pytest.fixture(scope="module", params=list(PARAMETER_SETS))
def reference_run(request):
    """The reference's LIFCorrelation over T steps: parameters, weights, inputs, states."""
    p_ours, p_norse = _parameters(request.param)
    w_in, w_rec = _weights(seed=1)
    x = _spikes((T, 1, IN), seed=2)
    module = norse.LIFCorrelation(IN, HIDDEN, p_norse)
    state, states = None, []
    with torch.no_grad():
        for x_t in x:
            _, state = module(x_t, w_in, w_rec, state)
            states.append({k: v.clone() for k, v in _flatten(state).items()})
    rate = torch.stack([s["lif.z"] for s in states]).mean().item()
    assert 0.01 < rate < 0.5, f"spike rate {rate}: the comparison would mean little"
    print(f"\nreference run ({request.param}): spike rate {rate:.3f} per neuron and step")
    return request.param, p_ours, w_in, w_rec, x, states


def _compare(label: str, ours: list[dict], theirs: list[dict]) -> dict[str, float]:
    """Equal spikes, states within TOL at every step; prints the largest deviations."""
    deviation = dict.fromkeys(ours[0], 0.0)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert torch.equal(a["lif.z"], b["lif.z"]), f"spikes differ at step {step}"
        for name in a:
            b_value = b[name].expand_as(a[name])
            assert_close(a[name], b_value, **TOL, msg=f"{name} at step {step}")
            deviation[name] = max(deviation[name], (a[name] - b_value).abs().max().item())
    print(f"\n{label}: max |ours − norse 1.1.0| over {len(ours)} steps")
    for name, value in deviation.items():
        print(f"  {name:35s} {value:.3g}")
    return deviation


def test_lif_correlation_matches_reference(reference_run):
    name, p_ours, w_in, w_rec, x, theirs = reference_run
    module = LIFCorrelation(IN, HIDDEN, p_ours)
    state, ours = None, []
    with torch.no_grad():
        for x_t in x:
            z, state = module(x_t, w_in, w_rec, state)
            assert torch.equal(z, state.lif_state.z)
            ours.append(_flatten(state))
    deviation = _compare(f"LIFCorrelation ({name})", ours, theirs)
    assert deviation["lif.z"] == 0.0
    # the flags are 0/1 and the input sensor sees exact 0/1 spikes: equal, not just close
    assert deviation["input.post_pre"] == 0.0
    assert deviation["recurrent.post_pre"] == 0.0


def _registered_parameters(p: LIFCorrelationParameters) -> LIFRecurrentCorrelationParameters:
    return LIFRecurrentCorrelationParameters(p.lif_parameters, p.recurrent_correlation_parameters)


def _without_input_sensor(states: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if not k.startswith("input.")} for s in states]


def test_registered_recurrent_cell_matches_reference(reference_run):
    name, p_ours, w_in, w_rec, x, theirs = reference_run
    cell = LIFRecurrentCorrelationCell(
        IN, HIDDEN, _registered_parameters(p_ours), input_weights=w_in, recurrent_weights=w_rec
    )
    state, ours = None, []
    with torch.no_grad():
        for x_t in x:
            _, state = cell(x_t, state)
            ours.append(_flatten(state))
    _compare(f"LIFRecurrentCorrelationCell ({name})", ours, _without_input_sensor(theirs))


def test_registered_recurrent_layer_matches_reference(reference_run):
    name, p_ours, w_in, w_rec, x, theirs = reference_run
    layer = LIFRecurrentCorrelation(
        IN,
        HIDDEN,
        _registered_parameters(p_ours),
        input_weights=w_in,
        recurrent_weights=w_rec,
        record_states=True,
    )
    with torch.no_grad():
        z, states = layer(x)
    flat = _flatten(states)
    ours = [{k: v[step] for k, v in flat.items()} for step in range(T)]
    assert torch.equal(z, flat["lif.z"])
    _compare(f"LIFRecurrentCorrelation ({name})", ours, _without_input_sensor(theirs))


# --------------------------------------------------------------------------------------------
# Batch > 1: the deliberate difference
# --------------------------------------------------------------------------------------------


def test_reference_sensor_mixes_batch_entries_ours_keeps_them_apart():
    # Batch 2 with pre = post = 2, the only shape with batch > 1 that the reference runs.
    # Entry 0: z_pre = [1, 0]; entry 1: z_pre = [0, 1]; no post spikes; empty sensor.
    # Right: C'[b, i, j] = z_pre[b, i] -> entry 0 [[1, 1], [0, 0]], entry 1 [[0, 0], [1, 1]].
    # The reference adds z_pre (B, pre) to an array transposed to (B, post, pre), so its mask at
    # (b, i, j) is z_pre[j, i]: entry 0 [[1, 0], [0, 1]] — spikes of both entries.
    z_pre, z_post = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 2)
    empty = [torch.zeros(2, 2, 2) for _ in range(3)]
    theirs = norse.correlation_sensor_step(z_pre, z_post, norse.CorrelationSensorState(*empty))
    ours = correlation_sensor_step(z_pre, z_post, initial_sensor_state((2, 2, 2)))
    right = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]])
    assert torch.equal(ours.correlation_trace, right)
    assert torch.equal(theirs.correlation_trace[0], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert not torch.equal(theirs.correlation_trace, right)
    # run alone (batch 1), the reference agrees with ours entry by entry
    for b in range(2):
        alone = norse.correlation_sensor_step(
            z_pre[b : b + 1],
            z_post[b : b + 1],
            norse.CorrelationSensorState(*[e[b : b + 1] for e in empty]),
        )
        assert torch.equal(alone.correlation_trace[0], ours.correlation_trace[b])


def test_batch_of_three_equals_reference_run_per_entry():
    p_ours, p_norse = _parameters("custom")
    w_in, w_rec = _weights(seed=3)
    x = _spikes((200, 3, IN), seed=4, rate=0.3)
    with pytest.raises(RuntimeError):  # the reference cannot run this batch at all
        norse.LIFCorrelation(IN, HIDDEN, p_norse)(x[0], w_in, w_rec, None)
    ours, state = LIFCorrelation(IN, HIDDEN, p_ours), None
    reference = norse.LIFCorrelation(IN, HIDDEN, p_norse)
    ref_states = [None] * 3
    spikes = 0.0
    with torch.no_grad():
        for x_t in x:
            z, state = ours(x_t, w_in, w_rec, state)
            spikes += z.sum().item()
            flat = _flatten(state)
            for b in range(3):
                z_b, ref_states[b] = reference(x_t[b : b + 1], w_in, w_rec, ref_states[b])
                assert torch.equal(z[b : b + 1], z_b)
                for name, value in _flatten(ref_states[b]).items():
                    assert_close(flat[name][b : b + 1], value.expand_as(flat[name][b : b + 1]))
    assert spikes > 0


# --------------------------------------------------------------------------------------------
# The weight update helper
# --------------------------------------------------------------------------------------------


def test_correlation_based_update_matches_reference():
    gen = torch.Generator().manual_seed(5)
    n = IN * HIDDEN

    def sensor():
        return [
            (torch.rand(1, IN, HIDDEN, generator=torch.Generator().manual_seed(s)) * k)
            for s, k in ((6, 1.0), (7, 5.0), (8, 5.0))
        ]

    update = torch.nn.Linear(2 * n, n)
    with torch.no_grad():
        update.weight.copy_(torch.randn(n, 2 * n, generator=gen) / n)
    weights = torch.randn(HIDDEN, IN, generator=gen)
    theirs_state = norse.CorrelationSensorState(*sensor())
    ours_state = CorrelationSensorState(*sensor())
    pure_state = CorrelationSensorState(*sensor())
    for step in (3, 4):  # every = 4: step 3 leaves everything, step 4 updates
        w_ref = norse.correlation_based_update(step, update, weights, theirs_state, 0.1, 4)
        w_ours = correlation_based_update(step, update, weights, ours_state, 0.1, 4)
        w_pure, pure_state = correlation_weight_update(step, update, weights, pure_state, 0.1, 4)
        assert_close(w_ours, w_ref, rtol=1e-6, atol=1e-7)
        assert_close(w_pure, w_ref, rtol=1e-6, atol=1e-7)
        for a, b, c in zip(ours_state, theirs_state, pure_state, strict=True):
            assert torch.equal(a, b)
            assert torch.equal(c, b)
    assert not torch.equal(w_ref, weights)
    assert torch.equal(theirs_state.correlation_trace, torch.zeros(1, IN, HIDDEN))
