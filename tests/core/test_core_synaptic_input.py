"""``NeuronModel.synaptic_input``: a model's own way of weighing input and recurrent spikes.

A toy recurrent integrator whose step just returns what it receives shows exactly what the core
passes: ``synaptic_input(x, W_in) + synaptic_input(z_prev, W_rec)`` when the model sets it, and
the weighted sum ``W_in·x + W_rec·z_prev`` when it does not — in the recurrent cell and in the
recurrent layer's time loop alike.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import pytest
import torch
from torch.testing import assert_close

import snncore


@attrs.frozen
class EchoParameters:
    pass


class EchoState(NamedTuple):
    z: torch.Tensor
    seen: torch.Tensor


def echo_step(current: torch.Tensor, state: EchoState, p: Any, dt: float) -> tuple[Any, EchoState]:
    """Spikes ``z = 1`` everywhere, and records the input it received in ``seen``."""
    z = torch.ones(state.z.shape, dtype=current.dtype)
    return current, EchoState(z, current)


def echo_initial_state(p: Any, shape: Any, device: Any = None, dtype: Any = None) -> EchoState:
    return EchoState(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(0))


def split_input(spikes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Two channels: the positive part of W, then the negative part, each applied to spikes."""
    return torch.cat(
        (
            torch.nn.functional.linear(spikes, weights.clamp(min=0)),
            torch.nn.functional.linear(spikes, (-weights).clamp(min=0)),
        ),
        dim=-1,
    )


def _model(synaptic_input: Any) -> snncore.NeuronModel:
    return snncore.NeuronModel(
        name="echo",
        family="echo",
        summary="echoes its recurrent input",
        parameters=EchoParameters,
        recurrent_step=echo_step,
        state=EchoState,
        initial_state=echo_initial_state,
        synaptic_input=synaptic_input,
    )


W_IN = torch.tensor([[1.0, -2.0], [-3.0, 4.0]])  # hidden 2 × input 2
W_REC = torch.tensor([[0.0, 5.0], [-6.0, 0.0]])


@pytest.mark.parametrize("variant", ["recurrent_cell", "recurrent"])
def test_custom_synaptic_input_receives_input_and_recurrent_spikes(variant):
    model = _model(split_input)
    module = snncore.create(
        model, variant, input_size=2, hidden_size=2, input_weights=W_IN, recurrent_weights=W_REC
    )
    x = torch.tensor([[1.0, 1.0]])
    # step 1, z_prev = 0:  relu(W_in)·x = [1, 4], relu(−W_in)·x = [2, 3] -> [1, 4, 2, 3]
    # step 2, z_prev = 1:  relu(W_rec)·1 = [5, 0], relu(−W_rec)·1 = [0, 6]
    #                      -> [1 + 5, 4 + 0, 2 + 0, 3 + 6] = [6, 4, 2, 9]
    expected = torch.tensor([[[1.0, 4.0, 2.0, 3.0]], [[6.0, 4.0, 2.0, 9.0]]])
    if variant == "recurrent":
        out, _ = module(torch.stack([x, x]))
        assert_close(out, expected)
    else:
        out1, state = module(x)
        out2, _ = module(x, state)
        assert_close(torch.stack([out1, out2]), expected)


@pytest.mark.parametrize("variant", ["recurrent_cell", "recurrent"])
def test_default_is_the_weighted_sum(variant):
    model = _model(None)
    module = snncore.create(
        model, variant, input_size=2, hidden_size=2, input_weights=W_IN, recurrent_weights=W_REC
    )
    x = torch.tensor([[1.0, 1.0]])
    # step 1: W_in·x = [1 − 2, −3 + 4] = [−1, 1];  step 2: + W_rec·1 = [5, −6] -> [4, −5]
    expected = torch.tensor([[[-1.0, 1.0]], [[4.0, -5.0]]])
    if variant == "recurrent":
        out, _ = module(torch.stack([x, x]))
    else:
        out1, state = module(x)
        out = torch.stack([out1, module(x, state)[0]])
    assert_close(out, expected)


def test_synaptic_input_gradient_reaches_both_weights():
    model = _model(split_input)
    module = snncore.create(
        model, "recurrent", input_size=2, hidden_size=2, input_weights=W_IN, recurrent_weights=W_REC
    )
    out, _ = module(torch.ones(2, 1, 2))
    out.sum().backward()
    # d/dW of sum over both channels of relu(W)·s + relu(−W)·s = |W|·s: sign(W)·s per entry,
    # summed over the two steps for W_in (s = 1 twice) and one step for W_rec (z_prev = 1 once)
    assert_close(module.input_weights.grad, 2.0 * torch.sign(W_IN))
    assert_close(module.recurrent_weights.grad, torch.sign(W_REC))
