"""The stimulus of each of the 20 behaviours: the input that shows it, as in Izhikevich (2004).

Each :class:`Stimulus` is a current ``I(t)`` over the model's own time axis in ms (one step of
``dt`` seconds advances it by ``h = tau_inv·dt`` ms: 0.25 ms for most presets), a duration, a
line saying what it is, and any parameter overrides the panel needs.  They follow the figure's
protocols (Izhikevich's published script for fig. 1: the same steps, pulses and ramps, times in
ms), with the changes that the behaviour tests (tests/plugins/snn_izhikevich) explain and check:

- spike latency (I): the pulse just above this discretisation's threshold (7.13, the figure's
  7.04 being tuned for its 0.2 ms step), so that the spike comes ~10 ms after the pulse;
- bistability (P): the second pulse 8 ms after a spike, the phase of the figure's;
- DAP (Q): a 1-ms pulse of 25 (the figure's 2 ms of 20 gives three spikes with u from the old v);
- accommodation (R): the ramps rise from a holding current of −55, without which the preset has
  no resting state;
- inhibition-induced bursting (T): with Izhikevich's update order (``u_update="new_v"``) at his
  0.5 ms step (``tau_inv=500``), the only discretisation in which the panel exists.

:func:`run` simulates one of them; ``snn gallery izhikevich`` draws all 20.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import torch

Current = Callable[[torch.Tensor], torch.Tensor]


class Stimulus(NamedTuple):
    """The input of one figure panel: ``current(t)`` for ``t`` in ms (a float64 tensor)."""

    duration: float  # ms of the model's time axis
    current: Current
    description: str
    overrides: Mapping[str, Any] = MappingProxyType({})


class Run(NamedTuple):
    """A simulated panel: time (ms), input current, spikes and ``v`` (mV), each ``(steps,)``."""

    t: torch.Tensor
    current: torch.Tensor
    spikes: torch.Tensor
    v: torch.Tensor
    h: float  # ms per step


def step(onset: float, amplitude: float, base: float = 0.0) -> Current:
    """``base`` until ``onset`` ms, then ``amplitude``."""
    return lambda t: torch.where(t > onset, amplitude, base)


def pulses(starts: Iterable[float], width: float, amplitude: float, base: float = 0.0) -> Current:
    """Rectangular pulses ``start < t < start + width`` on top of ``base``."""
    starts = tuple(starts)

    def current(t: torch.Tensor) -> torch.Tensor:
        on = torch.zeros_like(t, dtype=torch.bool)
        for start in starts:
            on |= (t > start) & (t < start + width)
        return torch.where(on, amplitude, base)

    return current


def _ramp(onset: float, slope: float, base: float = 0.0) -> Current:
    return lambda t: torch.where(t > onset, base + slope * (t - onset), base)


def _threshold_variability(t: torch.Tensor) -> torch.Tensor:
    return pulses([10, 80], 5, 1.0)(t) + pulses([70], 5, -6.0)(t)


def _accommodation(t: torch.Tensor) -> torch.Tensor:
    slow = torch.where((t >= 100) & (t < 300), (t - 100) / 200 * 8.0, 0.0)
    fast = torch.where((t >= 400) & (t < 412.5), (t - 400) / 12.5 * 8.0, 0.0)
    return -55.0 + slow + fast


def _lowered_drive(t: torch.Tensor) -> torch.Tensor:
    return torch.where((t < 50) | (t > 250), 80.0, 75.0)


STIMULI: Mapping[str, Stimulus] = MappingProxyType(
    {
        "tonic_spiking": Stimulus(100, step(10, 14.0), "step of 14 at 10 ms"),
        "phasic_spiking": Stimulus(200, step(20, 0.5), "step of 0.5 at 20 ms"),
        "tonic_bursting": Stimulus(220, step(22, 15.0), "step of 15 at 22 ms"),
        "phasic_bursting": Stimulus(200, step(20, 0.6), "step of 0.6 at 20 ms"),
        "mixed_mode": Stimulus(160, step(16, 10.0), "step of 10 at 16 ms"),
        "spike_frequency_adaptation": Stimulus(85, step(8.5, 30.0), "step of 30 at 8.5 ms"),
        "class_1_exc": Stimulus(300, _ramp(30, 0.075), "ramp of 0.075/ms from 30 ms"),
        "class_2_exc": Stimulus(300, _ramp(30, 0.015, -0.5), "ramp of 0.015/ms from −0.5"),
        "spike_latency": Stimulus(100, pulses([10], 3, 7.13), "3-ms pulse of 7.13 at 10 ms"),
        "subthreshold_oscillation": Stimulus(200, pulses([20], 5, 2.0), "5-ms pulse of 2 at 20 ms"),
        "resonator": Stimulus(
            400, pulses([40, 60, 280, 320], 4, 0.65), "pulse pairs 20 ms, then 40 ms apart"
        ),
        "integrator": Stimulus(
            100, pulses([100 / 11, 100 / 11 + 5, 70, 80], 2, 9.0), "pulse pairs 5, then 10 ms apart"
        ),
        "rebound_spike": Stimulus(200, pulses([20], 5, -15.0), "5-ms pulse of −15 at 20 ms"),
        "rebound_burst": Stimulus(200, pulses([20], 5, -15.0), "5-ms pulse of −15 at 20 ms"),
        "threshold_variability": Stimulus(
            100, _threshold_variability, "pulses of +1; the second after one of −6"
        ),
        "bistability": Stimulus(
            300, pulses([37.5, 208], 5, 1.24, base=0.24), "0.24 with pulses of 1.24: on, off"
        ),
        "dap": Stimulus(50, pulses([9.5], 1, 25.0), "1-ms pulse of 25 at 9.5 ms"),
        "accommodation": Stimulus(
            500, _accommodation, "slow, then fast ramp by 8 from a holding −55"
        ),
        "inhibition_induced_spiking": Stimulus(
            350, _lowered_drive, "drive of 80, lowered to 75 for 50–250 ms"
        ),
        "inhibition_induced_bursting": Stimulus(
            350,
            _lowered_drive,
            "drive of 80, lowered to 75 for 50–250 ms (u_update=new_v, h = 0.5 ms)",
            MappingProxyType({"tau_inv": 500.0, "u_update": "new_v"}),
        ),
    }
)


def run(name: str, stimulus: Stimulus | None = None, backend: str = "auto") -> Run:
    """Simulate preset ``name`` under its stimulus (or ``stimulus``), float32, one neuron."""
    from snn_izhikevich.behaviors import BEHAVIORS
    from snn_izhikevich.modules import Izhikevich

    stimulus = stimulus or STIMULI[name]
    layer = Izhikevich(
        BEHAVIORS[name], record_states=True, backend=backend, **dict(stimulus.overrides)
    )
    h = float(layer.p_tau_inv) * layer.dt
    t = torch.arange(round(stimulus.duration / h), dtype=torch.float64) * h
    current = torch.as_tensor(stimulus.current(t), dtype=torch.float32)
    with torch.no_grad():
        z, states = layer(current.reshape(-1, 1, 1))
    return Run(t, current, z[:, 0, 0], states.v[:, 0, 0], h)
