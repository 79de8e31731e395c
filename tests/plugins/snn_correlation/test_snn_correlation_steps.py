"""Correlation sensor and LIFCorrelation (snn-correlation): values worked out by hand.

Every expected number is derived in the comments from MODELS.md ("Correlation sensor and
LIFCorrelation").  The sensor, per synapse (pre ``i``, post ``j``), with
``pre_mask[i, j] = z_pre[i]`` and ``post_mask[i, j] = z_post[j]``:

    C1 = C − (1 − pp)·dt·tau_c_inv·C;   A1 = A − pp·dt·tau_ac_inv·A
    pp' = H(pp + post_mask − pre_mask)   (H(0) = 0)
    C' = C1 + eta_p·pre_mask;          A' = A1 + eta_m·post_mask

With the defaults (``dt = 0.001``, ``tau_c_inv = tau_ac_inv = 10``) both decay factors are
``dt·tau = 0.01``.  The LIF part (defaults, ``dt·tau_mem_inv = 0.1``, ``dt·tau_syn_inv = 0.2``):

    i1 = i + W_in·x + W_rec·z_prev;  v1 = v + 0.1·((0 − v) + i1);  i' = 0.8·i1
    z = H(v1 − 1);  v' = (1 − z)·v1

Everything runs in float64 so that 0.01, 0.1 and 0.8 are exact to double precision.
"""

from __future__ import annotations

import pytest
import torch
from snn_correlation import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    LIFCorrelation,
    LIFCorrelationParameters,
    LIFCorrelationState,
    LIFRecurrentCorrelation,
    LIFRecurrentCorrelationCell,
    LIFRecurrentCorrelationState,
    correlation_sensor_step,
    functional,
    initial_correlation_state,
    initial_sensor_state,
)
from torch.testing import assert_close

import snncore

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def sensor(post_pre, c, a) -> CorrelationSensorState:
    return CorrelationSensorState(t(post_pre), t(c), t(a))


def assert_sensor(state: CorrelationSensorState, post_pre, c, a) -> None:
    assert_close(state.post_pre, t(post_pre), msg="post_pre")
    assert_close(state.correlation_trace, t(c), msg="correlation_trace")
    assert_close(state.anti_correlation_trace, t(a), msg="anti_correlation_trace")


# --------------------------------------------------------------------------------------------
# The sensor step
# --------------------------------------------------------------------------------------------


def test_sensor_decays_c_while_post_pre_is_0_and_a_while_it_is_1():
    # tau_c_inv = 50 -> dt·tau_c_inv = 0.05; tau_ac_inv = 200 -> dt·tau_ac_inv = 0.2.
    # No spikes: pp = [[0, 1], [1, 0]], C = [[2, 4], [6, 8]], A = [[1, 3], [5, 7]].
    #   C' = C − (1 − pp)·0.05·C:  [0,0] 2 − 0.1 = 1.9; [0,1] pp = 1: 4; [1,0] pp = 1: 6;
    #                              [1,1] 8 − 0.4 = 7.6
    #   A' = A − pp·0.2·A:         [0,0] pp = 0: 1; [0,1] 3 − 0.6 = 2.4; [1,0] 5 − 1 = 4;
    #                              [1,1] pp = 0: 7
    #   pp' = H(pp + 0 − 0) = pp   (H(1) = 1, H(0) = 0)
    p = CorrelationSensorParameters(tau_c_inv=50.0, tau_ac_inv=200.0)
    state = sensor([[[0, 1], [1, 0]]], [[[2, 4], [6, 8]]], [[[1, 3], [5, 7]]])
    new = correlation_sensor_step(t([[0, 0]]), t([[0, 0]]), state, p)
    assert_sensor(new, [[[0, 1], [1, 0]]], [[[1.9, 4], [6, 7.6]]], [[[1, 2.4], [4, 7]]])
    # and a second step compounds the decay: C[0,0] = 1.9·0.95 = 1.805, A[0,1] = 2.4·0.8 = 1.92
    newer = correlation_sensor_step(t([[0, 0]]), t([[0, 0]]), new, p)
    assert_sensor(newer, [[[0, 1], [1, 0]]], [[[1.805, 4], [6, 7.22]]], [[[1, 1.92], [3.2, 7]]])


def test_sensor_flag_update_and_increments_with_broadcast_masks():
    # 3 presynaptic x 2 postsynaptic neurons, batch 1.  eta_p = 0.5, eta_m = 0.25, default taus
    # (factor 0.01).  z_pre = [1, 0, 1] -> pre_mask = [[1, 1], [0, 0], [1, 1]] (row i = z_pre[i]);
    # z_post = [1, 0] -> post_mask = [[1, 0], [1, 0], [1, 0]] (column j = z_post[j]).
    # pp = [[0, 1], [0, 1], [1, 0]], C = A = 1 everywhere.
    # pp' = H(pp + post − pre):
    #   [0,0] 0 + 1 − 1 = 0 -> 0   (pre and post together: H(0) = 0)
    #   [0,1] 1 + 0 − 1 = 0 -> 0   (a pre spike after a post spike clears the flag)
    #   [1,0] 0 + 1 − 0 = 1 -> 1   (a post spike sets it)
    #   [1,1] 1 + 0 − 0 = 1 -> 1   (no event: kept)
    #   [2,0] 1 + 1 − 1 = 1 -> 1   (both, flag set: kept)
    #   [2,1] 0 + 0 − 1 = −1 -> 0
    # C1 = 1 − (1 − pp)·0.01 (the OLD pp): 0.99 where pp = 0, 1 where pp = 1;
    # C' = C1 + 0.5·pre_mask: [[0.99 + 0.5, 1 + 0.5], [0.99, 1], [1 + 0.5, 0.99 + 0.5]]
    # A1 = 1 − pp·0.01: 1 where pp = 0, 0.99 where pp = 1;
    # A' = A1 + 0.25·post_mask: [[1.25, 0.99], [1.25, 0.99], [0.99 + 0.25, 1]]
    p = CorrelationSensorParameters(eta_p=0.5, eta_m=0.25)
    ones = [[[1, 1], [1, 1], [1, 1]]]
    state = sensor([[[0, 1], [0, 1], [1, 0]]], ones, ones)
    new = correlation_sensor_step(t([[1, 0, 1]]), t([[1, 0]]), state, p)
    assert_sensor(
        new,
        [[[0, 0], [1, 1], [1, 0]]],
        [[[1.49, 1.5], [0.99, 1], [1.5, 1.49]]],
        [[[1.25, 0.99], [1.25, 0.99], [1.24, 1]]],
    )


def test_sensor_parameters_broadcast_per_postsynaptic_neuron():
    # tau_c_inv = [10, 40] per post neuron j -> factors 0.01, 0.04; eta_m = [1, 3].
    # pp = 0, C = 2, A = 0; z_pre = [0, 0], z_post = [1, 1]:
    #   C' = 2·(1 − factor_j) = [1.98, 1.92] in both rows;  A' = eta_m[j] = [1, 3]
    #   pp' = H(0 + 1 − 0) = 1
    p = CorrelationSensorParameters(tau_c_inv=t([10.0, 40.0]), eta_m=t([1.0, 3.0]))
    state = sensor([[[0, 0], [0, 0]]], [[[2, 2], [2, 2]]], [[[0, 0], [0, 0]]])
    new = correlation_sensor_step(t([[0, 0]]), t([[1, 1]]), state, p)
    assert_sensor(new, [[[1, 1], [1, 1]]], [[[1.98, 1.92], [1.98, 1.92]]], [[[1, 3], [1, 3]]])


def test_sensor_batch_entries_get_their_own_masks():
    # Batch 2, 2 pre x 2 post (the one case where the reference does not fail, see module
    # docstring and test_snn_correlation_reference.py: there it mixes the batch entries).
    # Entry 0: z_pre = [1, 0], z_post = [0, 1]; entry 1: z_pre = [0, 1], z_post = [1, 1].
    # From an empty sensor (pp = C = A = 0), eta = 1:
    #   C'[b, i, j] = z_pre[b, i]:  entry 0 [[1, 1], [0, 0]];  entry 1 [[0, 0], [1, 1]]
    #   A'[b, i, j] = z_post[b, j]: entry 0 [[0, 1], [0, 1]];  entry 1 [[1, 1], [1, 1]]
    #   pp' = H(post − pre): entry 0 [0,0] 0 − 1, [0,1] 1 − 1 = 0, [1,0] 0 − 0, [1,1] 1 − 0
    #                          -> [[0, 0], [0, 1]]
    #                        entry 1 [0,0] 1 − 0, [0,1] 1 − 0, [1,0] 1 − 1, [1,1] 1 − 1
    #                          -> [[1, 1], [0, 0]]
    state = initial_sensor_state((2, 2, 2), dtype=F64)
    new = correlation_sensor_step(t([[1, 0], [0, 1]]), t([[0, 1], [1, 1]]), state)
    assert_sensor(
        new,
        [[[0, 0], [0, 1]], [[1, 1], [0, 0]]],
        [[[1, 1], [0, 0]], [[0, 0], [1, 1]]],
        [[[0, 1], [0, 1]], [[1, 1], [1, 1]]],
    )
    # each entry equals the same step on that entry alone (batch of one)
    for b in range(2):
        alone = correlation_sensor_step(
            t([[1, 0], [0, 1]])[b : b + 1],
            t([[0, 1], [1, 1]])[b : b + 1],
            initial_sensor_state((1, 2, 2), dtype=F64),
        )
        for field in CorrelationSensorState._fields:
            assert torch.equal(getattr(alone, field)[0], getattr(new, field)[b])


def test_sensor_without_batch_dimension():
    # State (pre, post) = (2, 3), z_pre (2,), z_post (3,): C' = pre_mask, A' = post_mask.
    new = correlation_sensor_step(t([0, 1]), t([1, 0, 1]), initial_sensor_state((2, 3), None, F64))
    assert_sensor(new, [[1, 0, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 1]], [[1, 0, 1], [1, 0, 1]])


def test_sensor_gradients_flow_to_the_traces_not_the_flag():
    # dC'/dz_pre[i] = eta_p per synapse of row i (post = 3 columns); dA'/dz_post[j] = eta_m per
    # synapse of column j (pre = 2 rows).  With loss = sum(C') + sum(A') + sum(pp'):
    #   d/dz_pre = 3·eta_p = 3·0.5 = 1.5;  d/dz_post = 2·eta_m = 2·0.25 = 0.5;  pp' adds nothing.
    p = CorrelationSensorParameters(eta_p=0.5, eta_m=0.25)
    z_pre = t([[1.0, 0.0]]).requires_grad_()
    z_post = t([[0.0, 1.0, 1.0]]).requires_grad_()
    new = correlation_sensor_step(z_pre, z_post, initial_sensor_state((1, 2, 3), dtype=F64), p)
    assert not new.post_pre.requires_grad
    (new.correlation_trace.sum() + new.anti_correlation_trace.sum() + new.post_pre.sum()).backward()
    assert_close(z_pre.grad, t([[1.5, 1.5]]))
    assert_close(z_post.grad, t([[0.5, 0.5, 0.5]]))


def test_sensor_step_does_not_modify_its_input_state():
    state = sensor([[[1.0]]], [[[2.0]]], [[[3.0]]])
    copy = CorrelationSensorState(*(x.clone() for x in state))
    correlation_sensor_step(t([[1.0]]), t([[1.0]]), state)
    for old, kept in zip(state, copy, strict=True):
        assert torch.equal(old, kept)


# --------------------------------------------------------------------------------------------
# LIFCorrelation: recurrent LIF plus the input and the recurrent sensor
# --------------------------------------------------------------------------------------------

# 2 inputs, 2 hidden neurons, batch 1.  W_in = [[12, 0], [1, 1]], W_rec = [[0, 0], [8, 0]].
W_IN = [[12.0, 0.0], [1.0, 1.0]]
W_REC = [[0.0, 0.0], [8.0, 0.0]]
XS = [[[1.0, 1.0]], [[0.0, 0.0]]]
# Step 1: x = [1, 1], z_prev = [0, 0]: current = W_in·x = [12, 2]
#   i1 = [12, 2]; v1 = 0.1·i1 = [1.2, 0.2] -> z = [1, 0]; v' = [0, 0.2]; i' = 0.8·i1 = [9.6, 1.6]
#   input sensor (pre = x = [1, 1], post = z = [1, 0]), empty:
#     pp' = H(post_j − pre_i): column 0: 1 − 1 = 0 -> 0; column 1: 0 − 1 -> 0   => all 0
#     C' = pre_mask = [[1, 1], [1, 1]];  A' = post_mask = [[1, 0], [1, 0]]
#   recurrent sensor (pre = z_prev = [0, 0], post = z = [1, 0]), empty:
#     pp' = H(post_j) = [[1, 0], [1, 0]];  C' = 0;  A' = [[1, 0], [1, 0]]
# Step 2: x = [0, 0], z_prev = [1, 0]: current = W_rec·z_prev = column 0 of W_rec = [0, 8]
#   neuron 0: i1 = 9.6; v1 = 0 + 0.1·(0 + 9.6) = 0.96 -> z = 0; v' = 0.96; i' = 7.68
#   neuron 1: i1 = 1.6 + 8 = 9.6; v1 = 0.2 + 0.1·(−0.2 + 9.6) = 1.14 -> z = 1; v' = 0; i' = 7.68
#   input sensor (pre = [0, 0], post = [0, 1]); old pp = 0 everywhere:
#     C' = 1 − 0.01·1 = 0.99 everywhere;  A' = A + post_mask = [[1, 1], [1, 1]] (no decay, pp = 0)
#     pp' = H(0 + post_j − 0) = [[0, 1], [0, 1]]
#   recurrent sensor (pre = [1, 0], post = [0, 1]); old pp = [[1, 0], [1, 0]]:
#     C1 = 0; C' = pre_mask = [[1, 1], [0, 0]]
#     A1 = A − pp·0.01·A = [[0.99, 0], [0.99, 0]]; A' = A1 + post_mask = [[0.99, 1], [0.99, 1]]
#     pp' = H(pp + post − pre): [0,0] 1 + 0 − 1 = 0; [0,1] 0 + 1 − 1 = 0; [1,0] 1 + 0 − 0 = 1;
#           [1,1] 0 + 1 − 0 = 1  => [[0, 0], [1, 1]]
EXPECTED = [
    {
        "z": [[1, 0]],
        "v": [[0, 0.2]],
        "i": [[9.6, 1.6]],
        "input": ([[[0, 0], [0, 0]]], [[[1, 1], [1, 1]]], [[[1, 0], [1, 0]]]),
        "recurrent": ([[[1, 0], [1, 0]]], [[[0, 0], [0, 0]]], [[[1, 0], [1, 0]]]),
    },
    {
        "z": [[0, 1]],
        "v": [[0.96, 0]],
        "i": [[7.68, 7.68]],
        "input": ([[[0, 1], [0, 1]]], [[[0.99, 0.99], [0.99, 0.99]]], [[[1, 1], [1, 1]]]),
        "recurrent": ([[[0, 0], [1, 1]]], [[[1, 1], [0, 0]]], [[[0.99, 1], [0.99, 1]]]),
    },
]


def _assert_lif(z, lif_state, expected) -> None:
    assert_close(z, t(expected["z"]))
    assert_close(lif_state.z, t(expected["z"]))
    assert_close(lif_state.v, t(expected["v"]))
    assert_close(lif_state.i, t(expected["i"]))


def test_lif_correlation_module_hand_worked_two_steps():
    module = LIFCorrelation(2, 2)
    state = None
    for x, expected in zip(XS, EXPECTED, strict=True):
        z, state = module(t(x), t(W_IN), t(W_REC), state)
        assert isinstance(state, LIFCorrelationState)
        _assert_lif(z, state.lif_state, expected)
        assert_sensor(state.input_correlation_state, *expected["input"])
        assert_sensor(state.recurrent_correlation_state, *expected["recurrent"])


def test_lif_correlation_functional_step_equals_module():
    p = LIFCorrelationParameters()
    state = initial_correlation_state(p, 1, 2, 2, dtype=F64)
    for x, expected in zip(XS, EXPECTED, strict=True):
        z, state = functional.lif_correlation_step(t(x), state, t(W_IN), t(W_REC), p)
        _assert_lif(z, state.lif_state, expected)
        assert_sensor(state.input_correlation_state, *expected["input"])
        assert_sensor(state.recurrent_correlation_state, *expected["recurrent"])


def test_lif_correlation_uses_each_sensors_own_parameters():
    # Same two steps with eta_p = 2 on the input sensor and eta_m = 3, tau_ac_inv = 50 (factor
    # 0.05) on the recurrent one; the LIF part is unchanged.
    #   input C after step 1 = 2·pre_mask = 2; after step 2 = 2 − 0.01·2 = 1.98
    #   recurrent A after step 1 = 3·post_mask = [[3, 0], [3, 0]];
    #     step 2: A1 = A − pp·0.05·A = [[2.85, 0], [2.85, 0]]; A' = A1 + 3·[[0, 1], [0, 1]]
    p = LIFCorrelationParameters(
        input_correlation_parameters=CorrelationSensorParameters(eta_p=2.0),
        recurrent_correlation_parameters=CorrelationSensorParameters(eta_m=3.0, tau_ac_inv=50.0),
    )
    module = LIFCorrelation(2, 2, p)
    state = None
    for x in XS:
        z, state = module(t(x), t(W_IN), t(W_REC), state)
    _assert_lif(z, state.lif_state, EXPECTED[1])
    assert_close(state.input_correlation_state.correlation_trace, t([[[1.98, 1.98]] * 2]))
    assert_close(
        state.recurrent_correlation_state.anti_correlation_trace, t([[[2.85, 3], [2.85, 3]]])
    )


def test_registered_recurrent_cell_is_lif_plus_recurrent_sensor():
    # The registered variants own the weights and carry the recurrent sensor only: the same
    # numbers as LIFCorrelation's LIF part and recurrent sensor.
    cell = snncore.create(
        "lif_correlation",
        variant="recurrent_cell",
        input_size=2,
        hidden_size=2,
        input_weights=t(W_IN),
        recurrent_weights=t(W_REC),
    ).double()
    assert type(cell) is LIFRecurrentCorrelationCell
    state = None
    for x, expected in zip(XS, EXPECTED, strict=True):
        z, state = cell(t(x), state)
        assert isinstance(state, LIFRecurrentCorrelationState)
        _assert_lif(z, state.lif_state, expected)
        assert_sensor(state.recurrent_correlation_state, *expected["recurrent"])


def _lif_at(states, step):
    """The LIF state of one time step out of recorded (stacked) states."""
    return type(states.lif_state)(*(f[step] for f in states.lif_state))


def test_registered_recurrent_layer_hand_worked_with_recorded_states():
    layer = LIFRecurrentCorrelation(
        2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC), record_states=True
    ).double()
    z, states = layer(t(XS))  # (T=2, B=1, 2)
    assert z.shape == (2, 1, 2)
    for step, expected in enumerate(EXPECTED):
        _assert_lif(z[step], _lif_at(states, step), expected)
        assert_sensor(
            CorrelationSensorState(*(f[step] for f in states.recurrent_correlation_state)),
            *expected["recurrent"],
        )
    # without recorded states: the final state only
    z_final, final = LIFRecurrentCorrelation(
        2, 2, input_weights=t(W_IN), recurrent_weights=t(W_REC)
    ).double()(t(XS))
    assert torch.equal(z_final, z)
    assert_sensor(final.recurrent_correlation_state, *EXPECTED[1]["recurrent"])


def test_registered_model_offers_the_recurrent_variants_only():
    model = snncore.get_model("lif_correlation")
    assert model.family == "correlation"
    assert model.variants == ("recurrent_cell", "recurrent")
    # no feed-forward variants: a cell's input is an already weighted current, so there are no
    # presynaptic spikes for a sensor to see
    with pytest.raises(ValueError, match="has no 'cell' variant"):
        snncore.create("lif_correlation", variant="cell")
