"""LIFAdEx and LIFEx (snn-adex): values worked out by hand from MODELS.md, for every variant.

Default parameters and ``dt = 0.001`` give ``dt·tau_mem_inv = 0.1``, ``dt·tau_syn_inv = 0.2``,
``dt·tau_ada_inv = 0.002``; ``delta_T = 0.5``, ``v_th = 1``, ``v_leak = v_reset = 0``,
``adaptation_current = 4``, ``adaptation_spike = 0.02``.  One step:

    i1 = i + x
    v1 = v + 0.1·((0 − v) + 0.5·exp((v − 1)/0.5) + i1 − a)       (LIFEx: without − a)
    i' = 0.8·i1
    a1 = a + 0.002·(4·v − a)                                      (the old v)
    z = Θ(v1 − 1);  v' = (1 − z)·v1;  a' = a1 + 0.02·z

Exponentials are written as ``math.exp`` of the hand-derived argument.  Modules run in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
from snn_adex import (
    LIFAdEx,
    LIFAdExCell,
    LIFAdExFeedForwardState,
    LIFAdExParameters,
    LIFAdExRecurrent,
    LIFAdExRecurrentCell,
    LIFAdExState,
    LIFEx,
    LIFExCell,
    LIFExFeedForwardState,
    LIFExParameters,
    LIFExRecurrent,
    LIFExRecurrentCell,
    LIFExState,
)
from snn_adex.functional import lif_adex_step, lif_ex_step
from torch.testing import assert_close

F64 = torch.float64
E2 = 0.5 * math.exp(-2.0)  # the exponential term at v = 0: 0.5·exp((0 − 1)/0.5) = 0.0676676…


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# --------------------------------------------------------------------------------------------
# LIFAdEx
# --------------------------------------------------------------------------------------------

# Two neurons starting at v = v_th = 1 (exponential term 0.5·exp(0) = 0.5), i = a = 0.
# Neuron 0 gets x = 0, 0; neuron 1 gets x = 6, 0.
# neuron 0, step 1: i1 = 0;  v1 = 1 + 0.1·(−1 + 0.5 + 0 − 0) = 0.95 -> z = 0;  i' = 0
#                   a1 = 0 + 0.002·(4·1 − 0) = 0.008;  a' = 0.008
#           step 2: v1 = 0.95 + 0.1·(−0.95 + 0.5·exp(−0.1) + 0 − 0.008)   (exp((0.95 − 1)/0.5))
#                   a' = 0.008 + 0.002·(4·0.95 − 0.008) = 0.015584;  i' = 0
# neuron 1, step 1: i1 = 6;  v1 = 1 + 0.1·(−1 + 0.5 + 6 − 0) = 1.55 -> z = 1, v' = 0;  i' = 4.8
#                   a1 = 0.008;  a' = 0.008 + 0.02 = 0.028
#           step 2: i1 = 4.8;  v1 = 0 + 0.1·(0 + E2 + 4.8 − 0.028) -> z = 0;  i' = 3.84
#                   a' = 0.028 + 0.002·(0 − 0.028) = 0.027944
ADEX_START = {"v": [[1.0, 1.0]], "i": [[0.0, 0.0]], "a": [[0.0, 0.0]]}
ADEX_X = [[[0.0, 6.0]], [[0.0, 0.0]]]
ADEX_EXPECTED = [
    {"z": [[0.0, 1.0]], "v": [[0.95, 0.0]], "i": [[0.0, 4.8]], "a": [[0.008, 0.028]]},
    {
        "z": [[0.0, 0.0]],
        "v": [[0.95 + 0.1 * (-0.95 + 0.5 * math.exp(-0.1) - 0.008), 0.1 * (E2 + 4.8 - 0.028)]],
        "i": [[0.0, 3.84]],
        "a": [[0.015584, 0.027944]],
    },
]


def _check(z, state, expected, fields):
    assert_close(z, t(expected["z"]))
    for name in fields:
        assert_close(getattr(state, name), t(expected[name]), msg=name)


def test_lif_adex_cell_hand_worked():
    cell = LIFAdExCell().double()
    state = LIFAdExFeedForwardState(**{k: t(v) for k, v in ADEX_START.items()})
    for x, expected in zip(ADEX_X, ADEX_EXPECTED, strict=True):
        z, state = cell(t(x), state)
        assert isinstance(state, LIFAdExFeedForwardState)
        _check(z, state, expected, ("v", "i", "a"))


def test_lif_adex_layer_hand_worked():
    layer = LIFAdEx(record_states=True).double()
    state = LIFAdExFeedForwardState(**{k: t(v) for k, v in ADEX_START.items()})
    z, states = layer(t(ADEX_X), state)
    for step, expected in enumerate(ADEX_EXPECTED):
        _check(z[step], LIFAdExFeedForwardState(*(s[step] for s in states)), expected, "via")


def test_lif_adex_first_step_from_rest():
    # Default initial state v = v_leak = 0, i = a = 0; x = 1:
    # i1 = 1;  v1 = 0.1·(0 + E2 + 1 − 0) = 0.1067668;  i' = 0.8;  a' = 0.002·(4·0 − 0) = 0
    z, state = LIFAdExCell().double()(t([1.0]))
    assert_close(z, t([0.0]))
    assert_close(state.v, t([0.1 * (E2 + 1.0)]))
    assert_close(state.i, t([0.8]))
    assert_close(state.a, t([0.0]))


# Recurrent: input_size 1, hidden 2, W_in = [[1], [12]], W_rec = [[0, 2], [0, 0]]; x = 1, 0.
# From rest (z = 0, v = 0, i = a = 0):
# step 1: currents W_in·1 = [1, 12]
#   n0: i1 = 1;  v1 = 0.1·(E2 + 1) = 0.1067668 -> z = 0;  i' = 0.8;  a' = 0
#   n1: i1 = 12; v1 = 0.1·(E2 + 12) = 1.2067668 -> z = 1, v' = 0;  i' = 9.6;  a' = 0 + 0.02
# step 2: currents W_in·0 + W_rec·[0, 1] = [2, 0]
#   n0: i1 = 0.8 + 2 = 2.8;  v1 = V0 + 0.1·(−V0 + 0.5·exp((V0 − 1)/0.5) + 2.8 − 0), V0 = 0.1067668
#       i' = 2.24;  a' = 0 + 0.002·(4·V0 − 0) = 0.008·V0
#   n1: i1 = 9.6;  v1 = 0 + 0.1·(E2 + 9.6 − 0.02) = 0.9647668 -> z = 0;  i' = 7.68
#       a' = 0.02 + 0.002·(0 − 0.02) = 0.01996
V0 = 0.1 * (E2 + 1.0)
W_IN = t([[1.0], [12.0]])
W_REC = t([[0.0, 2.0], [0.0, 0.0]])
REC_X = [[[1.0]], [[0.0]]]
ADEX_REC_EXPECTED = [
    {"z": [[0.0, 1.0]], "v": [[V0, 0.0]], "i": [[0.8, 9.6]], "a": [[0.0, 0.02]]},
    {
        "z": [[0.0, 0.0]],
        "v": [[V0 + 0.1 * (-V0 + 0.5 * math.exp((V0 - 1) / 0.5) + 2.8), 0.1 * (E2 + 9.6 - 0.02)]],
        "i": [[2.24, 7.68]],
        "a": [[0.008 * V0, 0.01996]],
    },
]


def test_lif_adex_recurrent_cell_hand_worked():
    cell = LIFAdExRecurrentCell(1, 2, input_weights=W_IN, recurrent_weights=W_REC).double()
    state = None
    for x, expected in zip(REC_X, ADEX_REC_EXPECTED, strict=True):
        z, state = cell(t(x), state)
        assert isinstance(state, LIFAdExState)
        _check(z, state, expected, ("z", "v", "i", "a"))


def test_lif_adex_recurrent_layer_hand_worked():
    layer = LIFAdExRecurrent(
        1, 2, input_weights=W_IN, recurrent_weights=W_REC, record_states=True
    ).double()
    z, states = layer(t(REC_X))
    for step, expected in enumerate(ADEX_REC_EXPECTED):
        _check(z[step], LIFAdExState(*(s[step] for s in states)), expected, ("z", "v", "i", "a"))


def test_lif_adex_functional_step_weighs_input_and_recurrent_spikes():
    state = LIFAdExState(*(t([[0.0, 0.0]]) for _ in range(4)))
    for x, expected in zip(REC_X, ADEX_REC_EXPECTED, strict=True):
        z, state = lif_adex_step(t(x), state, W_IN, W_REC, LIFAdExParameters(), 0.001)
        _check(z, state, expected, ("z", "v", "i", "a"))


def test_lif_adex_nondefault_parameters():
    # adaptation_current = 10, adaptation_spike = 0.5, delta_T = 0.25, tau_ada_inv = 100
    # (dt·tau_ada_inv = 0.1), v_leak = 0.2, v_th = 0.45, v_reset = −0.3.  Start v = v_leak = 0.2,
    # i = 0, a = 0.1; x = 2:
    #   i1 = 2;  exp term = 0.25·exp((0.2 − 0.45)/0.25) = 0.25·exp(−1)
    #   v1 = 0.2 + 0.1·((0.2 − 0.2) + 0.25·exp(−1) + 2 − 0.1) = 0.39 + 0.025·exp(−1) = 0.3991970
    #   0.3991970 < 0.45 -> z = 0;  i' = 1.6;  a' = 0.1 + 0.1·(10·(0.2 − 0.2) − 0.1) = 0.09
    # step 2, x = 0:  i1 = 1.6;  v = V1 = 0.3991970
    #   v1 = V1 + 0.1·((0.2 − V1) + 0.25·exp((V1 − 0.45)/0.25) + 1.6 − 0.09) = 0.5542... > 0.45
    #   -> z = 1, v' = −0.3;  i' = 1.28;  a' = 0.09 + 0.1·(10·(V1 − 0.2) − 0.09) + 0.5
    p = LIFAdExParameters(
        adaptation_current=10.0,
        adaptation_spike=0.5,
        delta_T=0.25,
        tau_ada_inv=100.0,
        v_leak=0.2,
        v_th=0.45,
        v_reset=-0.3,
    )
    cell = LIFAdExCell(p).double()
    state = LIFAdExFeedForwardState(v=t([0.2]), i=t([0.0]), a=t([0.1]))
    z, state = cell(t([2.0]), state)
    v1 = 0.39 + 0.025 * math.exp(-1.0)
    assert_close(z, t([0.0]))
    assert_close(state.v, t([v1]))
    assert_close(state.i, t([1.6]))
    assert_close(state.a, t([0.09]))
    z, state = cell(t([0.0]), state)
    pre_reset = v1 + 0.1 * ((0.2 - v1) + 0.25 * math.exp((v1 - 0.45) / 0.25) + 1.6 - 0.09)
    assert pre_reset > 0.45
    assert_close(z, t([1.0]))
    assert_close(state.v, t([-0.3]))
    assert_close(state.i, t([1.28]))
    assert_close(state.a, t([0.09 + 0.1 * (10.0 * (v1 - 0.2) - 0.09) + 0.5]))


# --------------------------------------------------------------------------------------------
# LIFEx
# --------------------------------------------------------------------------------------------

# As the AdEx cell test without a: start v = 1, i = 0; neuron 0 x = 0, 0; neuron 1 x = 6, 0.
# neuron 0: step 1: v1 = 1 + 0.1·(−1 + 0.5 + 0) = 0.95;  step 2: v1 = 0.95 + 0.1·(−0.95 +
#           0.5·exp(−0.1));  i stays 0
# neuron 1: step 1: i1 = 6;  v1 = 1 + 0.1·(−1 + 0.5 + 6) = 1.55 -> z = 1, v' = 0;  i' = 4.8
#           step 2: i1 = 4.8;  v1 = 0.1·(E2 + 4.8) -> z = 0;  i' = 3.84
EX_EXPECTED = [
    {"z": [[0.0, 1.0]], "v": [[0.95, 0.0]], "i": [[0.0, 4.8]]},
    {
        "z": [[0.0, 0.0]],
        "v": [[0.95 + 0.1 * (-0.95 + 0.5 * math.exp(-0.1)), 0.1 * (E2 + 4.8)]],
        "i": [[0.0, 3.84]],
    },
]


def test_lif_ex_cell_hand_worked():
    cell = LIFExCell().double()
    state = LIFExFeedForwardState(v=t([[1.0, 1.0]]), i=t([[0.0, 0.0]]))
    for x, expected in zip(ADEX_X, EX_EXPECTED, strict=True):
        z, state = cell(t(x), state)
        assert isinstance(state, LIFExFeedForwardState)
        _check(z, state, expected, ("v", "i"))


def test_lif_ex_layer_hand_worked():
    layer = LIFEx(record_states=True).double()
    z, states = layer(t(ADEX_X), LIFExFeedForwardState(v=t([[1.0, 1.0]]), i=t([[0.0, 0.0]])))
    for step, expected in enumerate(EX_EXPECTED):
        _check(z[step], LIFExFeedForwardState(*(s[step] for s in states)), expected, "vi")


# Recurrent, same weights as AdEx: step 1 as there (without a);  step 2:
#   n0: i1 = 2.8;  v1 = V0 + 0.1·(−V0 + 0.5·exp((V0 − 1)/0.5) + 2.8);  i' = 2.24
#   n1: i1 = 9.6;  v1 = 0.1·(E2 + 9.6) = 0.9667668 -> z = 0;  i' = 7.68
EX_REC_EXPECTED = [
    {"z": [[0.0, 1.0]], "v": [[V0, 0.0]], "i": [[0.8, 9.6]]},
    {
        "z": [[0.0, 0.0]],
        "v": [[V0 + 0.1 * (-V0 + 0.5 * math.exp((V0 - 1) / 0.5) + 2.8), 0.1 * (E2 + 9.6)]],
        "i": [[2.24, 7.68]],
    },
]


def test_lif_ex_recurrent_cell_hand_worked():
    cell = LIFExRecurrentCell(1, 2, input_weights=W_IN, recurrent_weights=W_REC).double()
    state = None
    for x, expected in zip(REC_X, EX_REC_EXPECTED, strict=True):
        z, state = cell(t(x), state)
        assert isinstance(state, LIFExState)
        _check(z, state, expected, ("z", "v", "i"))


def test_lif_ex_recurrent_layer_hand_worked():
    layer = LIFExRecurrent(
        1, 2, input_weights=W_IN, recurrent_weights=W_REC, record_states=True
    ).double()
    z, states = layer(t(REC_X))
    for step, expected in enumerate(EX_REC_EXPECTED):
        _check(z[step], LIFExState(*(s[step] for s in states)), expected, ("z", "v", "i"))


def test_lif_ex_functional_step():
    state = LIFExState(*(t([[0.0, 0.0]]) for _ in range(3)))
    for x, expected in zip(REC_X, EX_REC_EXPECTED, strict=True):
        z, state = lif_ex_step(t(x), state, W_IN, W_REC, LIFExParameters(), 0.001)
        _check(z, state, expected, ("z", "v", "i"))


# --------------------------------------------------------------------------------------------
# Initial states, parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "fields"), [(LIFAdExRecurrent, ("z", "v", "i", "a")), (LIFExRecurrent, ("z", "v", "i"))]
)
def test_recurrent_initial_state_starts_at_v_leak(cls, fields):
    layer = cls(3, 4, v_leak=-0.25, record_states=True)
    _, states = layer(torch.zeros(1, 2, 3))
    assert states._fields == fields
    # One step with no input from v = v_leak: the leak term is 0, the exponential term
    # 0.5·exp((−0.25 − 1)/0.5) = 0.5·exp(−2.5) pushes v up by 0.1 of it.
    assert_close(states.v[0], torch.full((2, 4), -0.25 + 0.05 * math.exp(-2.5)))


@pytest.mark.parametrize("cls", [LIFAdExParameters, LIFExParameters])
@pytest.mark.parametrize("bad", [0.0, -0.5, [0.5, 0.0], float("nan")])
def test_delta_t_must_be_positive(cls, bad):
    with pytest.raises(ValueError, match=r"delta_T must be > 0"):
        cls(delta_T=bad)


@pytest.mark.parametrize("module", [LIFAdExCell, LIFEx])
def test_delta_t_checked_by_modules_and_create(module):
    with pytest.raises(ValueError, match=r"delta_T must be > 0"):
        module(delta_T=0.0)
    import snncore

    with pytest.raises(ValueError, match=r"delta_T must be > 0"):
        snncore.create("lif_adex", variant="cell", delta_T=-1.0)


def test_learnt_delta_t_that_turns_non_positive_fails_clearly():
    cell = LIFExCell(learnable=("delta_T",))
    with torch.no_grad():
        cell.p_delta_T.fill_(-0.1)
    with pytest.raises(ValueError, match=r"delta_T must be > 0"):
        cell(torch.zeros(2, 3))


def test_per_neuron_parameters_broadcast():
    # v_th per neuron: [1, 0.05].  From rest with x = 1: v1 = 0.1·(0.5·exp((0 − v_th)/0.5) + 1):
    #   neuron 0: 0.1·(0.5·exp(−2) + 1) = 0.10677 < 1 -> no spike
    #   neuron 1: 0.1·(0.5·exp(−0.1) + 1) = 0.14524 > 0.05 -> spike, v' = 0
    cell = LIFExCell(v_th=torch.tensor([1.0, 0.05])).double()
    z, state = cell(t([[1.0, 1.0]]))
    assert_close(z, t([[0.0, 1.0]]))
    assert_close(state.v, t([[0.1 * (E2 + 1.0), 0.0]]))
