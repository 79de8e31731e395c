"""The correlation-based weight update helpers (snn-correlation), worked out by hand.

``correlation_weight_update(step, update, weights, state, learning_rate, every)`` fires when
``step % every == 0``: ``dw = mean over batch of update([C.flatten(), A.flatten()])``, reshaped to
``weights``' shape ``(post, pre)``; ``weights' = weights + learning_rate·dw``; both traces are
reset to zero.  ``correlation_based_update`` is the reference's form: it returns the weights only
and zeroes the traces in place.
"""

from __future__ import annotations

import pytest
import torch
from snn_correlation import (
    CorrelationSensorState,
    correlation_based_update,
    correlation_weight_update,
    functional,
)
from torch.testing import assert_close

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def c_minus_a(pre: int, post: int) -> torch.nn.Linear:
    """A linear update with weight [I, −I]: dw = C.flatten() − A.flatten()."""
    n = pre * post
    linear = torch.nn.Linear(2 * n, n, bias=False).double()
    with torch.no_grad():
        linear.weight.copy_(torch.cat((torch.eye(n), -torch.eye(n)), dim=1))
    return linear


class CountingUpdate(torch.nn.Module):
    """dw = 1 for every synapse; counts its calls."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, traces: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.ones(traces.shape[0], self.n, dtype=traces.dtype)


# Sensor of 2 pre x 3 post neurons, batch 1:
C = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]
A = [[[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]]
PP = [[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]


def state() -> CorrelationSensorState:
    return CorrelationSensorState(t(PP), t(C), t(A))


def test_weight_update_hand_worked():
    # dw = C.flatten() − A.flatten() = [1−6, 2−5, 3−4, 4−3, 5−2, 6−1] = [−5, −3, −1, 1, 3, 5]
    # reshaped to (post, pre) = (3, 2): [[−5, −3], [−1, 1], [3, 5]]
    # weights = 1, learning_rate = 0.5: weights' = 1 + 0.5·dw = [[−1.5, −0.5], [0.5, 1.5],
    # [2.5, 3.5]]; traces reset to 0, post_pre kept.
    weights = torch.ones(3, 2, dtype=F64)
    new_weights, new_state = correlation_weight_update(0, c_minus_a(2, 3), weights, state(), 0.5, 4)
    assert_close(new_weights, t([[-1.5, -0.5], [0.5, 1.5], [2.5, 3.5]]))
    assert torch.equal(new_state.post_pre, t(PP))
    assert torch.equal(new_state.correlation_trace, torch.zeros(1, 2, 3, dtype=F64))
    assert torch.equal(new_state.anti_correlation_trace, torch.zeros(1, 2, 3, dtype=F64))
    # pure: the inputs are untouched
    assert torch.equal(weights, torch.ones(3, 2, dtype=F64))
    assert torch.equal(state().correlation_trace, t(C))


def test_weight_update_averages_over_the_batch():
    # Batch 2: entry 0 as above (dw0 = [[−5, −3], [−1, 1], [3, 5]]), entry 1 with empty traces
    # (dw1 = 0): dw = (dw0 + dw1)/2 = [[−2.5, −1.5], [−0.5, 0.5], [1.5, 2.5]];
    # weights' = 1 + 0.5·dw = [[−0.25, 0.25], [0.75, 1.25], [1.75, 2.25]]
    zeros = [[0.0] * 3] * 2
    batched = CorrelationSensorState(t([*PP, zeros]), t([*C, zeros]), t([*A, zeros]))
    new_weights, _ = correlation_weight_update(
        8, c_minus_a(2, 3), torch.ones(3, 2, dtype=F64), batched, 0.5, 4
    )
    assert_close(new_weights, t([[-0.25, 0.25], [0.75, 1.25], [1.75, 2.25]]))


@pytest.mark.parametrize("every", [1, 3, 5])
def test_weight_update_fires_exactly_at_multiples_of_every(every):
    # Steps 0..10; with a counting update (dw = 1, learning_rate = 1) the weights grow by 1 at
    # each step that is a multiple of `every` and are the very same tensor otherwise.
    update = CountingUpdate(6)
    weights, sensor = torch.zeros(3, 2, dtype=F64), state()
    fired = []
    for step in range(11):
        new_weights, new_sensor = correlation_weight_update(
            step, update, weights, sensor, 1.0, every
        )
        if new_weights is weights:
            assert new_sensor is sensor  # nothing happened, nothing was copied
        else:
            fired.append(step)
            assert torch.equal(new_weights, weights + 1)
        weights, sensor = new_weights, new_sensor
    expected = [s for s in range(11) if s % every == 0]  # every=3: [0, 3, 6, 9]
    assert fired == expected
    assert update.calls == len(expected)
    assert torch.equal(weights, torch.full((3, 2), float(len(expected)), dtype=F64))


def test_reference_form_zeroes_the_traces_in_place_on_update_steps_only():
    update, sensor = c_minus_a(2, 3), state()
    c_tensor, a_tensor = sensor.correlation_trace, sensor.anti_correlation_trace
    weights = torch.ones(3, 2, dtype=F64)
    # step 1 with every = 2: no update, weights returned as they are, traces untouched
    assert correlation_based_update(1, update, weights, sensor, 0.5, 2) is weights
    assert torch.equal(c_tensor, t(C))
    assert torch.equal(a_tensor, t(A))
    # step 2: the hand-worked update above, and the state's own tensors are zeroed
    new_weights = correlation_based_update(2, update, weights, sensor, 0.5, 2)
    assert_close(new_weights, t([[-1.5, -0.5], [0.5, 1.5], [2.5, 3.5]]))
    assert torch.equal(c_tensor, torch.zeros(1, 2, 3, dtype=F64))
    assert torch.equal(a_tensor, torch.zeros(1, 2, 3, dtype=F64))
    assert torch.equal(sensor.post_pre, t(PP))
    assert functional.correlation_based_update is correlation_based_update


def test_weight_update_output_is_detached():
    update = c_minus_a(2, 3)
    weights = torch.ones(3, 2, dtype=F64, requires_grad=True)
    new_weights, _ = correlation_weight_update(0, update, weights, state(), 0.5, 1)
    new_weights.sum().backward()
    assert update.weight.grad is None  # nothing flows back into the update module
    assert torch.equal(weights.grad, torch.ones(3, 2, dtype=F64))


@pytest.mark.parametrize(
    ("step", "every", "error", "match"),
    [
        (0, 0, ValueError, "update interval must be a positive integer"),
        (0, -2, ValueError, "update interval must be a positive integer"),
        (0, 2.0, ValueError, "update interval must be a positive integer"),
        (0, True, ValueError, "update interval must be a positive integer"),
        (1.0, 2, TypeError, "step index must be an int"),
    ],
)
def test_weight_update_rejects_bad_step_or_interval(step, every, error, match):
    with pytest.raises(error, match=match):
        correlation_weight_update(step, c_minus_a(2, 3), torch.ones(3, 2), state(), 0.5, every)
    with pytest.raises(error, match=match):
        correlation_based_update(step, c_minus_a(2, 3), torch.ones(3, 2), state(), 0.5, every)


def test_weight_update_rejects_weights_of_the_wrong_shape():
    # weights must be (post, pre) = (3, 2), like input_weights; (2, 3) has the right number of
    # elements but is transposed
    with pytest.raises(ValueError, match=r"weights must have shape \(post, pre\) = \(3, 2\)"):
        correlation_weight_update(0, c_minus_a(2, 3), torch.ones(2, 3), state(), 0.5, 1)


def test_weight_update_rejects_an_update_of_the_wrong_size():
    with pytest.raises(ValueError, match="must map each entry's 12 trace values to 6 weight"):
        correlation_weight_update(0, CountingUpdate(5), torch.ones(3, 2), state(), 0.5, 1)
