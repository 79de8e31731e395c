"""Lift, LConv2d and RegularizationCell."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
import torch

import snncore
from snncore.containers import regularize_step, spike_accumulator, voltage_accumulator

# -- Lift ----------------------------------------------------------------------------------------


def test_lift_applies_a_stateless_module_at_every_step() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(5, 3)
    x = torch.randn(7, 2, 5)
    out = snncore.Lift(linear)(x)
    assert out.shape == (7, 2, 3)
    for t in range(7):
        torch.testing.assert_close(out[t], linear(x[t]), rtol=0, atol=0)
    # a (x, state) tuple is accepted and its state ignored, as in the reference
    torch.testing.assert_close(snncore.Lift(linear)((x, "ignored")), out, rtol=0, atol=0)


def test_lift_reference_example_shapes() -> None:
    conv = snncore.Lift(torch.nn.Conv2d(4, 2, 5, 1))
    assert conv(torch.randn(3, 4, 20, 30)).shape == (3, 2, 16, 26)  # (T, C, H, W) unbatched
    assert conv(torch.randn(3, 6, 4, 20, 30)).shape == (3, 6, 2, 16, 26)


def test_lift_threads_the_state_of_a_stateful_module() -> None:
    from snn_lif import LIF, LIFCell

    x = torch.rand(50, 2, 3, generator=torch.Generator().manual_seed(1)) * 3
    out, state = snncore.Lift(LIFCell())(x)
    expected, expected_state = LIF()(x)
    assert out.sum() > 0
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(state.v, expected_state.v, rtol=0, atol=0)
    # a given state starts the loop
    again, _ = snncore.Lift(LIFCell())((x[25:], snncore.Lift(LIFCell())(x[:25])[1]))
    torch.testing.assert_close(again, expected[25:], rtol=0, atol=0)


def test_lift_rejects_scalars() -> None:
    with pytest.raises(ValueError, match=r"\(time, \.\.\.\)"):
        snncore.Lift(torch.nn.ReLU())(torch.tensor(1.0))


# -- LConv2d -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3},
        {"kernel_size": (3, 2), "stride": 2, "padding": 1},
        {"kernel_size": 3, "dilation": 2, "padding": (2, 1), "groups": 2},
        {"kernel_size": 3, "padding": "same", "bias": True},
    ],
)
def test_lconv2d_equals_conv2d_at_every_step(kwargs: dict[str, Any]) -> None:
    torch.manual_seed(3)
    lconv = snncore.LConv2d(4, 6, dtype=torch.float64, **kwargs)
    assert lconv.weight.shape[-1] == 1  # a unit time kernel
    conv = torch.nn.Conv2d(4, 6, dtype=torch.float64, **{"bias": False, **kwargs})
    with torch.no_grad():
        conv.weight.copy_(lconv.weight[..., 0])
        if conv.bias is not None:
            conv.bias.copy_(lconv.bias)
    x = torch.randn(5, 3, 4, 9, 8, dtype=torch.float64)
    out = lconv(x)
    expected = torch.stack([conv(x_t) for x_t in x])
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_lconv2d_has_no_bias_by_default_like_the_reference() -> None:
    lconv = snncore.LConv2d(2, 3, 3)
    assert lconv.bias is None
    assert set(lconv.state_dict()) == {"weight"} and lconv.weight.shape == (3, 2, 3, 3, 1)
    with pytest.raises(ValueError, match=r"\(T, N, C_in, H, W\)"):
        lconv(torch.randn(2, 2, 5, 5))


def test_lconv2d_agrees_with_the_reference() -> None:
    norse = pytest.importorskip("norse.torch")
    theirs = norse.LConv2d(3, 5, 3, stride=2, padding=1)
    ours = snncore.LConv2d(3, 5, 3, stride=2, padding=1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 2, 3, 10, 10)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


# -- RegularizationCell --------------------------------------------------------------------------


class _State(NamedTuple):
    v: torch.Tensor


def test_spike_count_accumulates_across_calls_and_resets() -> None:
    cell = snncore.RegularizationCell()
    z1 = torch.tensor([[1.0, 0.0, 1.0]])
    z2 = torch.tensor([[1.0, 1.0, 1.0]])
    out, term = cell(z1, None)
    assert out is z1 and term.item() == 2.0
    _, term = cell(z2, None)
    assert term.item() == 5.0  # 2 + 3
    cell.reset()
    _, term = cell(z2, None)
    assert term.item() == 3.0


def test_voltage_accumulator_sums_the_state_voltage() -> None:
    cell = snncore.RegularizationCell(voltage_accumulator)
    z = torch.zeros(1, 2)
    cell(z, _State(torch.tensor([[0.5, -1.0]])))
    _, term = cell(z, _State(torch.tensor([[0.25, 2.0]])))
    torch.testing.assert_close(term, torch.tensor([[0.75, 1.0]]))
    with pytest.raises(TypeError, match="field v"):
        voltage_accumulator(z, object())


def test_regularization_term_is_differentiable_with_a_lif_cell() -> None:
    from snn_lif import LIFCell

    lif = LIFCell(learnable=("v_th",))
    cell = snncore.RegularizationCell()
    state = None
    x = torch.full((4, 3), 6.0)  # v1 = 0.1·6 = 0.6, then 0.6 + 0.1·(10.8 - 0.6) = 1.62: spikes
    for _ in range(5):
        z, state = lif(x, state)
        z, term = cell(z, state)
    assert term.item() > 0
    term.backward()
    assert lif.p_v_th.grad is not None and lif.p_v_th.grad.item() < 0  # higher threshold, fewer


def test_functional_step_and_custom_accumulator() -> None:
    z = torch.tensor([1.0, 0.0])
    assert regularize_step(z, None)[1].item() == 1.0
    assert spike_accumulator(z, None, torch.tensor(4.0)).item() == 5.0
    cell = snncore.RegularizationCell(lambda z, s, acc: (acc or 0) + int(z.max()), state=10)
    assert cell(z, None)[1] == 11
