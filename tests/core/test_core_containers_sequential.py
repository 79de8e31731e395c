"""SequentialState: the reference's two documented examples, equality with manual chaining,
state threading across calls, forward-state hooks and the stateful-child rule."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import snncore
from snncore.containers import is_stateful

snn_lif = pytest.importorskip("snn_lif")


def _example_one() -> snncore.SequentialState:
    torch.manual_seed(0)
    return snncore.SequentialState(
        snncore.Lift(torch.nn.Conv2d(16, 8, 3)),  # (T, 8, 6, 2)
        torch.nn.Flatten(2),  # (T, 8, 12)
        snn_lif.LIFRecurrent(12, 6),  # (T, 8, 6)
        snn_lif.LIFRecurrent(6, 1),  # (T, 8, 1)
    )


def _example_two() -> snncore.SequentialState:
    torch.manual_seed(1)
    model = snncore.SequentialState(
        snncore.Lift(torch.nn.Conv2d(16, 8, 3)),  # (T, 8, 6, 2)
        torch.nn.Flatten(2),  # (T, 8, 12)
        snn_lif.LIFRecurrent(12, 6),  # (T, 8, 6)
        torch.nn.RNN(6, 4, 2),  # (T, 8, 4), two layers: hidden (2, 8, 4)
        snn_lif.LIFRecurrent(4, 1),  # (T, 8, 1)
    )
    return _boost(model)


def _boost(model: torch.nn.Module) -> torch.nn.Module:
    """Strong positive input weights into the last layer, so that it spikes on the RNN's output."""
    with torch.no_grad():
        model[4].input_weights.fill_(2.0)
    return model


def _drive(steps: int = 30, seed: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(steps, 16, 8, 4, generator=generator) * 4


def test_first_documented_example_shapes() -> None:
    model = _example_one()
    out, state = model(torch.ones(1, 16, 8, 4))  # a single time step
    assert out.shape == (1, 8, 1)
    assert len(state) == 4 and state[0] is None and state[1] is None
    assert isinstance(state[2], snn_lif.LIFState) and state[2].v.shape == (8, 6)
    assert isinstance(state[3], snn_lif.LIFState) and state[3].v.shape == (8, 1)
    assert model.stateful_layers == [False, False, True, True]


def test_second_documented_example_shapes() -> None:
    # The reference's comments say (1, 6, 4) after the RNN and (1, 4, 1) at the end; running the
    # reference gives (1, 8, 4) and (1, 8, 1) (the batch stays 8), as here.
    model = _example_two()
    hidden, state = snncore.SequentialState(*model, return_hidden=True)(torch.ones(1, 16, 8, 4))
    assert [tuple(h.shape) for h in hidden] == [
        (1, 8, 6, 2),
        (1, 8, 12),
        (1, 8, 6),
        (1, 8, 4),
        (1, 8, 1),
    ]
    assert isinstance(state[3], torch.Tensor) and state[3].shape == (2, 8, 4)  # the RNN's h_n
    assert model.stateful_layers == [False, False, True, True, True]


def test_equals_manual_chaining_with_explicit_states() -> None:
    model = _example_two()
    lift, flatten, lif1, rnn, lif2 = model
    first, second = _drive(seed=2), _drive(seed=3)
    out, states = model(first)
    assert out.sum() > 0  # spikes happen, so the comparison means something

    x = flatten(lift(first))
    x, s1 = lif1(x)
    x, h = rnn(x)
    expected, s2 = lif2(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(states[2].v, s1.v, rtol=0, atol=0)
    torch.testing.assert_close(states[3], h, rtol=0, atol=0)
    torch.testing.assert_close(states[4].i, s2.i, rtol=0, atol=0)

    # continuing from the returned states equals continuing each layer by hand
    out2, states2 = model(second, states)
    x = flatten(lift(second))
    x, s1 = lif1(x, s1)
    x, h = rnn(x, h)
    expected2, s2 = lif2(x, s2)
    torch.testing.assert_close(out2, expected2, rtol=0, atol=0)
    torch.testing.assert_close(states2[4].v, s2.v, rtol=0, atol=0)
    # and differs from starting afresh (the state really was threaded)
    _, fresh_states = model(second)
    assert not torch.equal(fresh_states[3], states2[3])


def test_given_state_list_is_not_modified_and_must_match_the_children() -> None:
    model = _example_one()
    given: list[Any] = [None] * 4
    model(_drive(steps=3), given)
    assert given == [None] * 4
    with pytest.raises(ValueError, match="4 children but got a state list of 2"):
        model(_drive(steps=3), [None, None])


def test_agrees_with_the_reference_sequential_state_on_ported_weights() -> None:
    norse = pytest.importorskip("norse.torch")
    ours = _example_two()
    theirs = norse.SequentialState(
        norse.Lift(torch.nn.Conv2d(16, 8, 3)),
        torch.nn.Flatten(2),
        norse.LIFRecurrent(12, 6),
        torch.nn.RNN(6, 4, 2),
        norse.LIFRecurrent(4, 1),
    )
    _boost(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)  # same keys: checkpoints port
    data = _drive(steps=40, seed=4)
    out, state = ours(data)
    expected, expected_state = theirs(data)
    assert out.sum() > 0
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(state[2].v, expected_state[2].v, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state[3], expected_state[3], rtol=1e-5, atol=1e-6)


def test_forward_state_hooks_see_every_stateful_child() -> None:
    model = _example_two()
    seen: list[tuple[str, Any]] = []

    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        seen.append((type(module).__name__, output))

    model.register_forward_state_hooks(hook)
    with pytest.raises(ValueError, match="already registered"):
        model.register_forward_state_hooks(hook)
    out, states = model(_drive(steps=5))
    assert [name for name, _ in seen] == ["LIFRecurrent", "RNN", "LIFRecurrent"]
    last_out, last_state = seen[-1][1]  # the hook receives (out, state)
    assert last_out is out and last_state is states[4]
    model.remove_forward_state_hooks()
    model(_drive(steps=5))
    assert len(seen) == 3
    model.register_forward_state_hooks(hook)  # allowed again after removal
    model(_drive(steps=5))
    assert len(seen) == 6


def test_stateful_rule() -> None:
    class WithState(torch.nn.Module):
        def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
            count = 1 if state is None else state + 1
            return x + count, count

    class OptedOut(WithState):
        stateful = False

    assert is_stateful(snn_lif.LIFCell()) and is_stateful(snn_lif.LIF())
    assert is_stateful(torch.nn.GRU(2, 3)) and is_stateful(torch.nn.LSTM(2, 3))
    assert is_stateful(WithState()) and not is_stateful(OptedOut())
    assert not is_stateful(torch.nn.Linear(2, 3)) and not is_stateful(torch.nn.ReLU())
    assert is_stateful(snncore.SequentialState(torch.nn.ReLU()))  # nests
    assert is_stateful(snncore.Lift(snn_lif.LIFCell()))
    assert not is_stateful(snncore.Lift(torch.nn.Linear(2, 2)))

    model = snncore.SequentialState(WithState(), torch.nn.ReLU(), WithState())
    out, state = model(torch.zeros(1))
    assert state == [1, None, 1] and out.item() == 2.0  # (0 + 1) then + 1
    out, state = model(torch.zeros(1), state)
    assert state == [2, None, 2] and out.item() == 4.0


def test_lstm_child_threads_its_hidden_and_cell_state() -> None:
    torch.manual_seed(5)
    lstm = torch.nn.LSTM(3, 4)
    model = snncore.SequentialState(lstm, snn_lif.LIF())
    x = torch.randn(6, 2, 3)
    out, (hc, lif_state) = model(x)
    assert lif_state.v.shape == (2, 4)
    expected, (h, c) = lstm(x)
    torch.testing.assert_close(hc[0], h, rtol=0, atol=0)
    torch.testing.assert_close(hc[1], c, rtol=0, atol=0)
    expected_out, _ = snn_lif.LIF()(expected)
    torch.testing.assert_close(out, expected_out, rtol=0, atol=0)
