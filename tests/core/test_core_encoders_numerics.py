"""The built-in encoders: exact values worked from MODELS.md "Encoders", the reference's documented
examples, Poisson statistics and seeding, device/dtype handling and bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import snncore
from snncore import encoders as enc

# -- registry -------------------------------------------------------------------------------------


def test_spec_names_resolve_to_the_module_classes(builtins_only: Any) -> None:
    expected = {
        "poisson": enc.PoissonEncoder,
        "signed_poisson": enc.SignedPoissonEncoder,
        "constant_current_lif": enc.ConstantCurrentLIFEncoder,
        "population": enc.PopulationEncoder,
        "spike_latency": enc.SpikeLatencyEncoder,
        "spike_latency_lif": enc.SpikeLatencyLIFEncoder,
        "poisson_step": enc.PoissonEncoderStep,
        "signed_poisson_step": enc.SignedPoissonEncoderStep,
    }
    for name, cls in expected.items():
        assert snncore.get_encoder(name) is cls, name
        assert snncore.get_encoder(f"snncore.encoders:{name}") is cls, name
    assert {c.__name__ for c in snncore.list_encoders()} == {c.__name__ for c in expected.values()}


def test_unknown_encoder_suggests_close_names(builtins_only: Any) -> None:
    with pytest.raises(snncore.UnknownNameError, match="'poisson'"):
        snncore.get_encoder("poison")


# -- the reference's documented examples -----------------------------------------------------------


def test_population_example_from_the_reference() -> None:
    # scale defaults to max(x) = 1, centres linspace(0, 1, 3) = [0, .5, 1];
    # value exp(-1·(x - c)²/2): distance 0 -> 1, 0.5 -> exp(-0.125) = 0.8825, 1 -> exp(-0.5) = 0.6065
    out = enc.PopulationEncoder(3)(torch.as_tensor([0.0, 0.5, 1.0]))
    expected = torch.tensor([[1.0, 0.8825, 0.6065], [0.8825, 1.0, 0.8825], [0.6065, 0.8825, 1.0]])
    torch.testing.assert_close(out, expected, atol=5e-5, rtol=0)
    e = math.exp
    exact = torch.tensor(
        [[1, e(-0.125), e(-0.5)], [e(-0.125), 1, e(-0.125)], [e(-0.5), e(-0.125), 1]]
    )
    torch.testing.assert_close(out, exact.float())


def test_population_scale_and_shape() -> None:
    # scale 4, n = 3: centres [0, 2, 4]; x = 1: distances (1, 1, 9)·4 -> exp(-2), exp(-2), exp(-18)
    out = enc.population_encode(torch.tensor([[1.0]], dtype=torch.float64), 3, scale=4.0)
    assert out.shape == (1, 1, 3) and out.dtype == torch.float64
    expected = torch.tensor([[[math.exp(-2), math.exp(-2), math.exp(-18)]]], dtype=torch.float64)
    torch.testing.assert_close(out, expected)
    # one scale per sample (broadcast against x): row 0 uses scale 1, row 1 scale 2
    per_sample = enc.population_encode(torch.tensor([1.0, 1.0]), 2, scale=torch.tensor([1.0, 2.0]))
    # row 0: centres [0, 1], distances (1, 0)·1 -> exp(-.5), 1; row 1: centres [0, 2] -> (1, 1)·2
    expected = torch.tensor([[math.exp(-0.5), 1.0], [math.exp(-1), math.exp(-1)]])
    torch.testing.assert_close(per_sample, expected)


def test_population_custom_kernel_and_distance() -> None:
    def absolute(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return (x - c).abs()

    out = enc.PopulationEncoder(2, scale=2.0, kernel=lambda d: -d, distance_function=absolute)(
        torch.tensor([0.5])
    )
    # centres [0, 2]: |0.5 - 0|·2 = 1, |0.5 - 2|·2 = 3, kernel negates
    torch.testing.assert_close(out, torch.tensor([[-1.0, -3.0]]))


def test_constant_current_lif_example_from_the_reference() -> None:
    # dt·tau_mem_inv = 0.1, v0 = 0: v1 = 0.1·I -> 0.2, 0.4, 0.8, 1.6 (spikes, reset to 0);
    # step 2: v = v + 0.1·(I - v) -> 0.2 + 0.18 = 0.38, 0.4 + 0.36 = 0.76, 0.8 + 0.72 = 1.52
    # (spike, reset), 0 + 1.6 (spike)
    data = torch.as_tensor([2, 4, 8, 16])
    spikes = enc.ConstantCurrentLIFEncoder(2)(data)
    torch.testing.assert_close(spikes, torch.tensor([[0.0, 0, 0, 1], [0, 0, 1, 1]]))
    assert torch.equal(enc.constant_current_lif_encode(data, 2), spikes)
    # the documented voltages, from the step function
    v = torch.zeros(4)
    voltages = []
    for _ in range(2):
        _, v = enc.constant_current_lif_step(data, v)
        voltages.append(v)
    expected = torch.tensor([[0.2, 0.4, 0.8, 0.0], [0.38, 0.76, 0.0, 0.0]])
    torch.testing.assert_close(torch.stack(voltages), expected)


def test_spike_latency_example_from_the_reference() -> None:
    data = torch.as_tensor([[0, 1, 1], [1, 1, 1]])
    out = enc.SpikeLatencyEncoder()(data)
    assert torch.equal(out, torch.as_tensor([[0, 1, 1], [1, 0, 0]]))
    assert out.dtype == data.dtype


def test_spike_latency_keeps_only_first_spikes_over_longer_trains() -> None:
    spikes = torch.tensor([[0.0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 1]])
    expected = torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]])
    assert torch.equal(enc.spike_latency_encode(spikes), expected)


def test_spike_latency_lif_spikes_once_at_the_first_lif_spike() -> None:
    # I = 16: v1 = 1.6 spikes at step 0 and every step; I = 8 first spikes at step 1 (v = 1.52);
    # I = 2 never reaches 1 within 3 steps (0.2, 0.38, 0.542)
    data = torch.tensor([2.0, 8.0, 16.0])
    out = enc.SpikeLatencyLIFEncoder(3)(data)
    expected = torch.tensor([[0.0, 0, 1], [0, 1, 0], [0, 0, 0]])
    assert torch.equal(out, expected)
    full = enc.constant_current_lif_encode(data, 3)
    assert full[:, 2].sum() == 3 and full[:, 1].sum() == 1  # step 2 of I=8: 0.8 (no spike)


def test_constant_current_lif_accepts_other_lif_parameters() -> None:
    from snn_lif import LIFParameters

    data = torch.tensor([5.0])
    # v_th = 0.4, tau_mem_inv = 200: v1 = 0.2·5 = 1.0 > 0.4 -> spike, reset to v_reset = 0.1;
    # step 2: 0.1 + 0.2·(5 - 0.1) = 1.08 -> spike
    p = LIFParameters(v_th=0.4, tau_mem_inv=200.0, v_reset=0.1)
    torch.testing.assert_close(enc.constant_current_lif_encode(data, 2, p), torch.ones(2, 1))
    _, v = enc.constant_current_lif_step(data, torch.zeros(1), p)
    torch.testing.assert_close(v, torch.tensor([0.1]))
    # a core-local default with LIF's defaults
    default = enc.LIFEncoderParameters()
    assert (default.tau_mem_inv.item(), default.v_th.item(), default.method) == (
        100.0,
        1.0,
        "super",
    )


def test_constant_current_lif_passes_surrogate_gradients_to_the_input() -> None:
    x = torch.tensor([9.0, 20.0], requires_grad=True)
    enc.constant_current_lif_encode(x, 5).sum().backward()
    assert x.grad is not None and bool((x.grad != 0).all())


def test_lif_encoders_reject_parameters_without_the_lif_fields() -> None:
    with pytest.raises(TypeError, match="tau_mem_inv"):
        enc.ConstantCurrentLIFEncoder(3, p=object())


# -- Poisson --------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_value, f_max", [(0.3, 100.0), (0.8, 250.0), (0.05, 1000.0)])
def test_poisson_rate_within_three_standard_errors(x_value: float, f_max: float) -> None:
    generator = torch.Generator().manual_seed(1234)
    dt = 0.001
    x = torch.full((100,), x_value)
    spikes = enc.PoissonEncoder(1000, f_max=f_max, dt=dt)(x, generator=generator)  # 10^5 samples
    assert spikes.shape == (1000, 100)
    p = f_max * dt * x_value  # the spike probability per step
    se = math.sqrt(p * (1 - p) / spikes.numel())
    assert abs(spikes.mean().item() - p) < 3 * se, (spikes.mean().item(), p, se)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_poisson_extremes_are_deterministic() -> None:
    x = torch.tensor([0.0, 1.0])
    spikes = enc.poisson_encode(x, 50, f_max=1000.0, dt=0.001)  # probability 0 and 1
    assert torch.equal(spikes, torch.tensor([[0.0, 1.0]] * 50))


def test_poisson_same_seed_same_spikes_and_another_seed_differs() -> None:
    x = torch.rand(4, 8, generator=torch.Generator().manual_seed(0))
    encoder = enc.PoissonEncoder(200, f_max=300.0)
    a = encoder(x, generator=torch.Generator().manual_seed(7))
    b = encoder(x, generator=torch.Generator().manual_seed(7))
    c = encoder(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # a generator given to the constructor is used when the call gives none
    seeded = enc.PoissonEncoder(200, f_max=300.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(seeded(x), a)


def test_poisson_float64_output_and_rate() -> None:
    x = torch.full((100,), 0.5, dtype=torch.float64)
    spikes = enc.poisson_encode(x, 1000, generator=torch.Generator().manual_seed(3))
    assert spikes.dtype == torch.float64
    p = 0.05
    assert abs(spikes.mean().item() - p) < 3 * math.sqrt(p * (1 - p) / 1e5)


def test_signed_poisson_signs_and_rate() -> None:
    x = torch.cat([torch.full((50,), -0.5), torch.full((50,), 0.5)])
    spikes = enc.SignedPoissonEncoder(1000)(x, generator=torch.Generator().manual_seed(5))
    negative, positive = spikes[:, :50], spikes[:, 50:]
    assert set(negative.unique().tolist()) == {-1.0, 0.0}
    assert set(positive.unique().tolist()) == {0.0, 1.0}
    p, n = 0.05, 50_000  # 100 Hz · 1 ms · 0.5
    se = math.sqrt(p * (1 - p) / n)
    assert abs(positive.mean().item() - p) < 3 * se
    assert abs(-negative.mean().item() - p) < 3 * se


def test_step_variants_have_one_step_and_the_reference_default_rate() -> None:
    x = torch.full((100_000,), 0.2)
    spikes = enc.PoissonEncoderStep()(x, generator=torch.Generator().manual_seed(9))
    assert spikes.shape == x.shape
    p = 1000.0 * 0.001 * 0.2  # f_max defaults to 1000 for the one-step variants
    assert abs(spikes.mean().item() - p) < 3 * math.sqrt(p * (1 - p) / x.numel())
    signed = enc.SignedPoissonEncoderStep()(-x, generator=torch.Generator().manual_seed(9))
    assert torch.equal(signed, -spikes)  # same draws, sign flipped


def test_poisson_rejects_non_float_input_and_bad_lengths() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        enc.poisson_encode(torch.tensor([1, 0]), 10)
    with pytest.raises(ValueError, match="seq_length"):
        enc.PoissonEncoder(0)
    with pytest.raises(ValueError, match="dt"):
        enc.PoissonEncoder(10, dt=-1.0)
    with pytest.raises(ValueError, match="out_features"):
        enc.PopulationEncoder(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_encoders_on_cuda() -> None:
    device = torch.device("cuda")
    x = torch.full((100,), 0.3, device=device, dtype=torch.float64)
    generator = torch.Generator(device=device).manual_seed(11)
    spikes = enc.poisson_encode(x, 1000, generator=generator)
    assert spikes.device.type == "cuda" and spikes.dtype == torch.float64
    p = 0.03
    assert abs(spikes.mean().item() - p) < 3 * math.sqrt(p * (1 - p) / 1e5)
    again = enc.poisson_encode(x, 1000, generator=torch.Generator(device=device).manual_seed(11))
    assert torch.equal(spikes, again)
    signed = enc.signed_poisson_encode(-x, 10, generator=generator)
    assert signed.device.type == "cuda"
    data = torch.tensor([2.0, 4.0, 8.0, 16.0], device=device)
    torch.testing.assert_close(
        enc.constant_current_lif_encode(data, 2).cpu(), torch.tensor([[0.0, 0, 0, 1], [0, 0, 1, 1]])
    )
    assert enc.population_encode(data, 3).device.type == "cuda"


# -- agreement with the reference library ----------------------------------------------------------


def test_deterministic_encoders_agree_with_the_reference() -> None:
    encode = pytest.importorskip("norse.torch.functional.encode")
    generator = torch.Generator().manual_seed(21)
    currents = torch.rand(6, 5, generator=generator) * 20
    torch.testing.assert_close(
        enc.constant_current_lif_encode(currents, 40),
        encode.constant_current_lif_encode(currents, 40),
        rtol=0,
        atol=0,
    )
    torch.testing.assert_close(
        enc.spike_latency_lif_encode(currents, 40),
        encode.spike_latency_lif_encode(currents, 40),
        rtol=0,
        atol=0,
    )
    values = torch.rand(7, 3, generator=generator)
    torch.testing.assert_close(
        enc.population_encode(values, 5), encode.population_encode(values, 5)
    )
    torch.testing.assert_close(
        enc.population_encode(values, 4, scale=3.0), encode.population_encode(values, 4, scale=3.0)
    )
    spikes = (torch.rand(30, 4, 3, generator=generator) < 0.3).float()
    assert torch.equal(enc.spike_latency_encode(spikes), encode.spike_latency_encode(spikes))


def test_poisson_draws_agree_with_the_reference_for_the_same_seed() -> None:
    encode = pytest.importorskip("norse.torch.functional.encode")
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(0))
    ours = enc.poisson_encode(x, 100, 300.0, generator=torch.Generator().manual_seed(5))
    theirs = encode.poisson_encode(x, 100, 300.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(ours, theirs)
    signed = x * 2 - 1
    ours = enc.signed_poisson_encode(signed, 100, 300.0, generator=torch.Generator().manual_seed(6))
    theirs = encode.signed_poisson_encode(
        signed, 100, 300.0, generator=torch.Generator().manual_seed(6)
    )
    assert torch.equal(ours, theirs)
