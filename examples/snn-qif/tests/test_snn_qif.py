"""snn-qif's tests: snncore's conformance suite, and values worked by hand from the equations
with the default parameters (dt·tau_mem_inv = 0.001·100 = 0.1, v_rest = v_reset = 0,
v_critical = 0.5, v_th = 1)."""

from __future__ import annotations

import pickle

import snncore
import torch
from snncore.testing import conformance_suite
from torch.testing import assert_close

from snn_qif import (
    QIF_MODEL,
    QIFState,
)

# Every generic check (shapes, dtypes, state threading, pickling, per-neuron parameters,
# gradients, long runs, backends, torch.compile, the surrogate) on every variant: one test each.
test_conformance = conformance_suite("snn-qif")


def test_two_euler_steps_from_rest():
    # v = v_rest = 0, x = 0.3: quadratic (0 − 0)·(0 − 0.5)/0.5 = 0, v1 = 0 + 0.1·(0 + 0.3) = 0.03;
    # then (0.03 − 0)·(0.03 − 0.5)/0.5 = −0.0282, v1 = 0.03 + 0.1·(−0.0282 + 0.3) = 0.05718.
    cell = snncore.create("qif", variant="cell")
    z, state = cell(torch.full((1, 1), 0.3))
    assert z.item() == 0.0
    assert_close(state.v, torch.full((1, 1), 0.03))
    z, state = cell(torch.full((1, 1), 0.3), state)
    assert z.item() == 0.0
    assert_close(state.v, torch.full((1, 1), 0.05718))


def test_spike_and_reset():
    # From v = 0.95 with x = 0: 0.95·(0.95 − 0.5)/0.5 = 0.855, v1 = 0.95 + 0.1·0.855 = 1.0355
    # >= v_th = 1: a spike, and v' = v_reset = 0; z keeps the spike for the recurrent variants.
    cell = snncore.create("qif", variant="cell")
    state = QIFState(z=torch.zeros(1, 1), v=torch.full((1, 1), 0.95))
    z, state = cell(torch.zeros(1, 1), state)
    assert z.item() == 1.0
    assert (state.z.item(), state.v.item()) == (1.0, 0.0)


def test_silent_below_the_rheobase_fires_above():
    # Rheobase (v_critical − v_rest)/4 = 0.125.  With u = v − 0.25 the equation reads
    # dv/dt = tau_mem_inv·(2u² + x − 0.125): below the rheobase v settles at the stable fixed
    # point u = −sqrt((0.125 − x)/2), for x = 0.12 at v = 0.25 − 0.05 = 0.2; above it v runs away
    # and fires; x = 0.14 first at t = 156 steps (≈ (atan(8.7) + atan(2.9))/(100·sqrt(0.03)) s).
    layer = snncore.create("qif", variant="layer")
    spikes, state = layer(torch.tensor([0.12, 0.14]).expand(500, 1, 2))
    assert spikes[:, 0, 0].sum() == 0
    assert spikes[:, 0, 1].nonzero().flatten().tolist() == [156, 313, 470]
    assert_close(state.v[0, 0], torch.tensor(0.2), atol=1e-4, rtol=0)


def test_class_names():
    names = [cls.__name__ for cls in snncore.module_classes(QIF_MODEL)]
    assert names == [
        "QIFCell",
        "QIFRecurrentCell",
        "QIF",  # the layer
        "QIFRecurrent",
    ]
    layer = snncore.create("qif", variant="layer")
    assert type(layer).__name__ == "QIF"


def test_a_layer_pickles():
    v_th = torch.tensor([0.2, 0.5, 1.0])  # one threshold per neuron
    layer = snncore.create("qif", variant="layer", v_th=v_th)
    copy = pickle.loads(pickle.dumps(layer))
    assert type(copy) is type(layer)
    x = torch.rand(100, 2, 3, generator=torch.Generator().manual_seed(0))
    spikes, state = layer(x)
    assert spikes.sum() > 0
    copied_spikes, copied_state = copy(x)
    assert torch.equal(copied_spikes, spikes) and torch.equal(copied_state.v, state.v)
