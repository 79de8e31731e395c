"""CobaLIF (snn-coba): values worked out by hand from MODELS.md, for every variant.

Most tests use round parameters (``ROUND``) with ``dt = 0.001``:
``dt·tau_syn_exc_inv = 0.1``, ``dt·tau_syn_inh_inv = 0.2``, ``dt·c_m_inv = 0.01``, ``g_l = 2``,
``e_rev_E = 100``, ``e_rev_I = −100``, ``v_rest = 0``, ``v_reset = −10``, ``v_thresh = 5``:

    g_e1 = max(g_e + relu(x), 0);  g_i1 = max(g_i + relu(−x), 0)
       (recurrent: + relu(±W_in)·x + relu(±W_rec)·z_prev, both terms)
    g_e' = 0.9·g_e1;  g_i' = 0.8·g_i1
    v1 = v + 0.01·(2·(0 − v) + g_e'·(100 − v) + g_i'·(−100 − v))
    z = Θ(v1 − 5);  v' = (1 − z)·v1 − 10·z

Modules run in float64.
"""

from __future__ import annotations

import attrs
import pytest
import torch
from snn_coba import (
    CobaLIF,
    CobaLIFCell,
    CobaLIFFeedForwardCell,
    CobaLIFFeedForwardState,
    CobaLIFParameters,
    CobaLIFRecurrent,
    CobaLIFRecurrentCell,
    CobaLIFState,
)
from snn_coba.functional import coba_lif_recurrent_step, coba_lif_step, coba_synaptic_input
from torch.testing import assert_close

F64 = torch.float64
ROUND = CobaLIFParameters(
    tau_syn_exc_inv=100.0,
    tau_syn_inh_inv=200.0,
    c_m_inv=10.0,
    g_l=2.0,
    e_rev_E=100.0,
    e_rev_I=-100.0,
    v_rest=0.0,
    v_reset=-10.0,
    v_thresh=5.0,
)

# the same in float64, for calling the step functions directly (modules use .double())
ROUND_F64 = attrs.evolve(
    ROUND,
    **{
        f.name: getattr(ROUND, f.name).double()
        for f in attrs.fields(CobaLIFParameters)
        if f.name != "method"
    },
)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def _check(z, state, expected, fields):
    assert_close(z, t(expected["z"]))
    for name in fields:
        assert_close(getattr(state, name), t(expected[name]), msg=name)


# --------------------------------------------------------------------------------------------
# Feed-forward
# --------------------------------------------------------------------------------------------

# Two neurons from v = v_rest = 0, g_e = g_i = 0; x = [2, −3], [5, 1], [0, 0].
# step 1: n0: g_e1 = 2 -> g_e' = 1.8;  v1 = 0.01·(1.8·100) = 1.8;  z = 0
#         n1: g_i1 = 3 -> g_i' = 2.4;  v1 = 0.01·(2.4·(−100)) = −2.4
# step 2: n0: g_e1 = 1.8 + 5 = 6.8 -> 6.12;  v1 = 1.8 + 0.01·(2·(−1.8) + 6.12·98.2)
#             = 1.8 + 0.01·(−3.6 + 600.984) = 7.77384 > 5 -> z = 1, v' = −10
#         n1: g_e1 = 1 -> 0.9;  g_i1 = 2.4 -> 1.92
#             v1 = −2.4 + 0.01·(2·2.4 + 0.9·102.4 + 1.92·(−97.6)) = −2.4 + 0.01·(4.8 + 92.16
#                  − 187.392) = −3.30432
# step 3: n0: g_e' = 0.9·6.12 = 5.508;  v1 = −10 + 0.01·(2·10 + 5.508·110) = −3.7412
#         n1: g_e' = 0.81, g_i' = 1.536;  v1 = −3.30432 + 0.01·(2·3.30432 + 0.81·103.30432
#             + 1.536·(−96.69568)) = −3.30432 + 0.01·(6.60864 + 83.6764992 − 148.52456448)
#             = −3.8867142528
FF_X = [[[2.0, -3.0]], [[5.0, 1.0]], [[0.0, 0.0]]]
FF_EXPECTED = [
    {"z": [[0.0, 0.0]], "v": [[1.8, -2.4]], "g_e": [[1.8, 0.0]], "g_i": [[0.0, 2.4]]},
    {"z": [[1.0, 0.0]], "v": [[-10.0, -3.30432]], "g_e": [[6.12, 0.9]], "g_i": [[0.0, 1.92]]},
    {
        "z": [[0.0, 0.0]],
        "v": [[-3.7412, -3.8867142528]],
        "g_e": [[5.508, 0.81]],
        "g_i": [[0.0, 1.536]],
    },
]


def test_coba_feed_forward_cell_hand_worked():
    cell = CobaLIFFeedForwardCell(ROUND).double()
    state = None
    for x, expected in zip(FF_X, FF_EXPECTED, strict=True):
        z, state = cell(t(x), state)
        assert isinstance(state, CobaLIFFeedForwardState)
        _check(z, state, expected, ("v", "g_e", "g_i"))


def test_coba_layer_hand_worked():
    z, states = CobaLIF(ROUND, record_states=True).double()(t(FF_X))
    for step, expected in enumerate(FF_EXPECTED):
        _check(
            z[step],
            CobaLIFFeedForwardState(*(s[step] for s in states)),
            expected,
            ("v", "g_e", "g_i"),
        )


def test_coba_defaults_first_step():
    # Defaults: dt·tau_syn_exc_inv = 0.0002, dt·c_m_inv = 0.005, g_l = 0.25, e_rev_E = 60,
    # v_rest = −20, v_thresh = −10, v_reset = −70.  From v = v_rest, g = 0; x = [2, 30, −4]:
    #   n0: g_e' = 2·0.9998 = 1.9996;  v1 = −20 + 0.005·(1.9996·80) = −19.20016
    #   n1: g_e' = 29.994;  v1 = −20 + 0.005·(29.994·80) = −8.0024 > −10 -> z = 1, v' = −70
    #   n2: g_i' = 4·0.9998 = 3.9992;  v1 = −20 + 0.005·(3.9992·(−100 + 20)) = −21.59968
    z, state = CobaLIFFeedForwardCell().double()(t([2.0, 30.0, -4.0]))
    assert_close(z, t([0.0, 1.0, 0.0]))
    assert_close(state.v, t([-19.20016, -70.0, -21.59968]))
    assert_close(state.g_e, t([1.9996, 29.994, 0.0]))
    assert_close(state.g_i, t([0.0, 0.0, 3.9992]))


# --------------------------------------------------------------------------------------------
# Recurrent
# --------------------------------------------------------------------------------------------

# input_size 2, hidden 2:  W_in = [[3, −1], [20, 0]],  W_rec = [[0, 4], [−2, 0]].
# step 1, x = [1, 1], z_prev = [0, 0]:  relu(W_in)·x = [3, 20],  relu(−W_in)·x = [1, 0]
#   n0: g_e1 = 3 -> 2.7;  g_i1 = 1 -> 0.8;  v1 = 0.01·(2.7·100 + 0.8·(−100)) = 1.9;  z = 0
#   n1: g_e1 = 20 -> 18;  v1 = 0.01·(18·100) = 18 > 5 -> z = 1, v' = −10
# step 2, x = [1, 0], z_prev = [0, 1]:  input [3, 20] / [0, 0];  recurrent relu(W_rec)·z = [4, 0],
#   relu(−W_rec)·z = [0, 0]
#   n0: g_e1 = 2.7 + 3 + 4 = 9.7 -> 8.73  (the reference drops the input 3: 0.9·6.7 = 6.03)
#       g_i1 = 0.8 -> 0.64;  v1 = 1.9 + 0.01·(2·(−1.9) + 8.73·98.1 + 0.64·(−101.9))
#       = 1.9 + 0.01·(−3.8 + 856.413 − 65.216) = 9.77397 > 5 -> z = 1, v' = −10
#   n1: g_e1 = 18 + 20 = 38 -> 34.2;  v1 = −10 + 0.01·(2·10 + 34.2·110) = 27.82 -> z = 1
# step 3, x = [0, 0], z_prev = [1, 1]:  recurrent relu(W_rec)·z = [4, 0], relu(−W_rec)·z = [0, 2]
#   n0: g_e1 = 8.73 + 4 = 12.73 -> 11.457;  g_i1 = 0.64 -> 0.512
#       v1 = −10 + 0.01·(20 + 11.457·110 + 0.512·(−90)) = −10 + 0.01·(20 + 1260.27 − 46.08)
#       = 2.3419 -> z = 0
#   n1: g_e' = 0.9·34.2 = 30.78;  g_i1 = 2 -> 1.6
#       v1 = −10 + 0.01·(20 + 30.78·110 + 1.6·(−90)) = 22.618 -> z = 1, v' = −10
W_IN = t([[3.0, -1.0], [20.0, 0.0]])
W_REC = t([[0.0, 4.0], [-2.0, 0.0]])
REC_X = [[[1.0, 1.0]], [[1.0, 0.0]], [[0.0, 0.0]]]
REC_EXPECTED = [
    {"z": [[0.0, 1.0]], "v": [[1.9, -10.0]], "g_e": [[2.7, 18.0]], "g_i": [[0.8, 0.0]]},
    {"z": [[1.0, 1.0]], "v": [[-10.0, -10.0]], "g_e": [[8.73, 34.2]], "g_i": [[0.64, 0.0]]},
    {"z": [[0.0, 1.0]], "v": [[2.3419, -10.0]], "g_e": [[11.457, 30.78]], "g_i": [[0.512, 1.6]]},
]
FIELDS = ("z", "v", "g_e", "g_i")


@pytest.mark.parametrize("cls", [CobaLIFCell, CobaLIFRecurrentCell])
def test_coba_recurrent_cell_hand_worked(cls):
    cell = cls(2, 2, ROUND, input_weights=W_IN, recurrent_weights=W_REC).double()
    state = None
    for x, expected in zip(REC_X, REC_EXPECTED, strict=True):
        z, state = cell(t(x), state)
        assert isinstance(state, CobaLIFState)
        _check(z, state, expected, FIELDS)


def test_coba_recurrent_layer_hand_worked():
    layer = CobaLIFRecurrent(
        2, 2, ROUND, input_weights=W_IN, recurrent_weights=W_REC, record_states=True
    ).double()
    z, states = layer(t(REC_X))
    for step, expected in enumerate(REC_EXPECTED):
        _check(z[step], CobaLIFState(*(s[step] for s in states)), expected, FIELDS)


def test_coba_functional_step_hand_worked():
    state = CobaLIFState(
        z=t([[0.0, 0.0]]), v=t([[0.0, 0.0]]), g_e=t([[0.0, 0.0]]), g_i=t([[0.0, 0.0]])
    )
    for x, expected in zip(REC_X, REC_EXPECTED, strict=True):
        z, state = coba_lif_step(t(x), state, W_IN, W_REC, ROUND_F64, 0.001)
        _check(z, state, expected, FIELDS)


def test_input_conductance_is_kept_when_there_are_recurrent_spikes():
    # The reference's bug: with recurrent spikes its step replaces the input jump by the
    # recurrent one.  Neuron 0 at step 2 receives input 3 and recurrent 4 on top of 2.7:
    # g_e' = 0.9·(2.7 + 3 + 4) = 8.73, not the reference's 0.9·(2.7 + 4) = 6.03.
    cell = CobaLIFCell(2, 2, ROUND, input_weights=W_IN, recurrent_weights=W_REC).double()
    _, state = cell(t([[1.0, 1.0]]))
    assert_close(state.z, t([[0.0, 1.0]]))  # neuron 1 spiked: the recurrent path is active
    _, state = cell(t([[1.0, 0.0]]), state)
    assert_close(state.g_e[0, 0], t(0.9 * (2.7 + 3.0 + 4.0)))
    assert not torch.isclose(state.g_e[0, 0], t(0.9 * (2.7 + 4.0)))


def test_synaptic_input_splits_excitation_and_inhibition():
    # relu(W)·s then relu(−W)·s:  W = [[3, −1], [20, 0]], s = [1, 2]
    #   excitatory [3·1 + 0, 20·1 + 0] = [3, 20];  inhibitory [0 + 1·2, 0] = [2, 0]
    assert_close(coba_synaptic_input(t([[1.0, 2.0]]), W_IN), t([[3.0, 20.0, 2.0, 0.0]]))


def test_recurrent_step_rejects_a_one_channel_input():
    state = CobaLIFState(*(torch.zeros(1, 3) for _ in range(4)))
    with pytest.raises(ValueError, match=r"2·hidden = 6"):
        coba_lif_recurrent_step(torch.zeros(1, 3), state)


# --------------------------------------------------------------------------------------------
# Conductances never go below zero
# --------------------------------------------------------------------------------------------


def test_negative_spikes_do_not_make_conductances_negative():
    # x = [−1, 0] into the recurrent cell: relu(W_in)·x = [−3, −20] -> g_e1 = max(−3, 0) = 0,
    # relu(−W_in) = [[0, 1], [0, 0]] so relu(−W_in)·x = [0, 0] -> g_i1 = 0;  v1 = 0.01·(2·0) = 0
    # (unclamped, as in the reference, g_e' would be 0.9·[−3, −20] = [−2.7, −18])
    cell = CobaLIFCell(2, 2, ROUND, input_weights=W_IN, recurrent_weights=W_REC).double()
    z, state = cell(t([[-1.0, 0.0]]))
    assert_close(state.g_e, t([[0.0, 0.0]]))
    assert_close(state.g_i, t([[0.0, 0.0]]))
    assert_close(state.v, t([[0.0, 0.0]]))
    assert_close(z, t([[0.0, 0.0]]))


def test_negative_initial_conductance_is_clamped():
    # g_e = −1, g_i = 0.5, v = 0, x = 0:  g_e1 = max(−1, 0) = 0;  g_i' = 0.8·0.5 = 0.4
    # v1 = 0 + 0.01·(0.4·(−100)) = −0.4
    state = CobaLIFFeedForwardState(v=t([0.0]), g_e=t([-1.0]), g_i=t([0.5]))
    _, state = CobaLIFFeedForwardCell(ROUND).double()(t([0.0]), state)
    assert_close(state.g_e, t([0.0]))
    assert_close(state.g_i, t([0.4]))
    assert_close(state.v, t([-0.4]))


# --------------------------------------------------------------------------------------------
# Initial states, signatures
# --------------------------------------------------------------------------------------------


def test_initial_state_is_at_rest():
    # v = v_rest = −20, g = 0, no input: g stays 0 and v1 = −20 + 0.005·0.25·(−20 + 20) = −20
    z, states = CobaLIFRecurrent(3, 4, record_states=True)(torch.zeros(2, 5, 3))
    assert states._fields == FIELDS
    assert torch.equal(states.v, torch.full((2, 5, 4), -20.0))
    assert torch.equal(z, torch.zeros(2, 5, 4))


def test_coba_lif_cell_takes_dt_fourth_as_the_reference():
    # CobaLIFCell(input_size, hidden_size, p, dt): dt = 0.002 doubles dt·c_m_inv to 0.02 in ROUND.
    # One step from rest with W_in = [[3, −1], [20, 0]], x = [1, 1]: n0 g_e' = 3·(1 − 0.2) = 2.4,
    # g_i' = 1·(1 − 0.4) = 0.6;  v1 = 0.02·(2.4·100 − 0.6·100) = 3.6
    cell = CobaLIFCell(2, 2, ROUND, 0.002, input_weights=W_IN, recurrent_weights=W_REC).double()
    assert cell.dt == 0.002
    assert cell.autapses is False
    _, state = cell(t([[1.0, 1.0]]))
    assert_close(state.v[0, 0], t(3.6))
    assert isinstance(cell, CobaLIFRecurrentCell)
    # the core's recurrent signature keeps autapses fourth
    assert CobaLIFRecurrentCell(2, 2, ROUND, True).autapses is True


def test_bad_input_is_a_clear_error():
    cell = CobaLIFCell(2, 3)
    with pytest.raises(ValueError, match=r"input_size=2"):
        cell(torch.zeros(4, 5))
    with pytest.raises(TypeError, match=r"real input"):  # integer spikes are cast
        cell(torch.zeros(4, 2, dtype=torch.complex64))
