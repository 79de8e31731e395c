"""The 20 behaviours of Izhikevich (2004, fig. 1), each shown by a measurable criterion.

Stimuli follow the figure's protocols (Izhikevich's published script for fig. 1: the same step
currents, pulses and ramps, with times in ms).  Time here is the model's ms axis: one step of
``dt = 1 ms/1000`` advances it by ``h = tau_inv·dt`` ms, the preset's own step (0.25 ms for most;
0.2 for phasic bursting and the rebounds, 0.1 for DAP, 0.5 for accommodation), so ``I(t)`` is
sampled at ``t = k·h`` and, as in the script, applied in the step that starts at ``t``.

Two differences from the figure's script are inherited from the equations (MODELS.md = the
reference): ``u`` is updated from the *old* ``v`` (the script uses the new one), and spike latency
and the inhibition-induced presets run at h = 0.25 ms (the script: 0.2 and 0.5 ms).  Where that
moves a threshold, the test finds the threshold itself (spike latency) or uses the figure's phase
rather than its absolute time (bistability).  Two panels need more, and say so:

- accommodation (R): with ``u' = a·(b·v − u)`` and b = 1 the preset has no resting state (the
  figure integrates ``u' = a·b·(v + 65)`` instead), so the ramps start from a holding current
  that gives it one;
- inhibition-induced bursting (T) exists only in the script's discretisation: it runs with
  ``u_update="new_v"`` at the script's 0.5 ms step; in the reference's order, or at 0.25 ms in
  either order, u runs away after the first spike and the neuron never stops firing (tested).

All simulations run in float32, the reference's precision.
"""

from __future__ import annotations

import itertools

import torch
from snn_izhikevich import BEHAVIORS, Izhikevich


def simulate(name: str, current, duration_ms: float, **overrides):
    """Run a preset under ``current(t)`` (t in ms, a (steps,) tensor -> (steps,) or
    (steps, K) currents for K neurons side by side).  Returns the time axis ``t`` (ms), the
    spikes ``(steps, K)`` and voltages ``(steps, K)``."""
    behavior = BEHAVIORS[name]
    layer = Izhikevich(behavior, record_states=True, **overrides)
    h = float(layer.p_tau_inv) * layer.dt
    t = torch.arange(round(duration_ms / h), dtype=torch.float64) * h
    x = torch.as_tensor(current(t), dtype=torch.float32)
    if x.dim() == 1:
        x = x.unsqueeze(1)
    with torch.no_grad():
        z, s = layer(x.unsqueeze(1))  # (steps, batch 1, K)
    return t, z[:, 0], s.v[:, 0]


def spike_times(t: torch.Tensor, z: torch.Tensor, k: int = 0) -> list[float]:
    return t[z[:, k] > 0].tolist()


def isis(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def step_current(onset: float, amplitude: float, base: float = 0.0):
    return lambda t: torch.where(t > onset, amplitude, base)


def pulses(starts, width: float, amplitude: float, base: float = 0.0):
    """Rectangular pulses ``start < t < start + width`` (the script's strict inequalities)."""

    def current(t):
        on = torch.zeros_like(t, dtype=torch.bool)
        for s in starts:
            on |= (t > s) & (t < s + width)
        return torch.where(on, amplitude, base)

    return current


def groups(times: list[float], gap: float) -> list[list[float]]:
    """Spikes split into groups wherever an inter-spike interval exceeds ``gap`` ms."""
    out: list[list[float]] = []
    for s in times:
        if out and s - out[-1][-1] <= gap:
            out[-1].append(s)
        else:
            out.append([s])
    return out


# --------------------------------------------------------------------------------------------
# (A)–(F): step currents
# --------------------------------------------------------------------------------------------


def test_tonic_spiking_fires_regularly_during_a_step():
    # Fig. 1A: I = 14 from t = 10 ms (here held for 300 ms to see the steady rhythm).
    t, z, _ = simulate("tonic_spiking", step_current(10, 14.0), 300)
    times = spike_times(t, z)
    assert times[0] > 10 and len(times) >= 8
    steady = isis(times)[3:]  # after the onset transient
    # regular: every steady inter-spike interval within 2 % of their mean
    mean = sum(steady) / len(steady)
    assert all(abs(i - mean) < 0.02 * mean for i in steady), steady


def test_phasic_spiking_fires_exactly_once_at_the_onset():
    # Fig. 1B: I = 0.5 from t = 20 ms, held for 180 ms: one spike, then silence.
    t, z, _ = simulate("phasic_spiking", step_current(20, 0.5), 200)
    times = spike_times(t, z)
    assert len(times) == 1
    assert 20 < times[0] < 60  # near the onset ...
    assert t[-1] - times[0] > 140  # ... and nothing for the remaining > 140 ms of current


def test_tonic_bursting_fires_groups_separated_by_long_gaps():
    # Fig. 1C: I = 15 from t = 22 ms.
    t, z, _ = simulate("tonic_bursting", step_current(22, 15.0), 220)
    bursts = groups(spike_times(t, z), gap=10.0)
    assert len(bursts) >= 3
    assert all(len(b) >= 3 for b in bursts)
    intra = max(max(isis(b)) for b in bursts)
    inter = min(b[0] - a[-1] for a, b in itertools.pairwise(bursts))
    assert inter > 5 * intra, (inter, intra)  # bursts: the gaps dwarf the in-burst intervals


def test_phasic_bursting_fires_one_burst_at_the_onset():
    # Fig. 1D: I = 0.6 from t = 20 ms (h = 0.2 ms).
    t, z, _ = simulate("phasic_bursting", step_current(20, 0.6), 200)
    bursts = groups(spike_times(t, z), gap=10.0)
    assert len(bursts) == 1 and len(bursts[0]) >= 3
    assert max(isis(bursts[0])) < 10
    assert t[-1] - bursts[0][-1] > 100  # then silent while the current stays on


def test_mixed_mode_bursts_then_spikes_tonically():
    # Fig. 1E: I = 10 from t = 16 ms.
    t, z, _ = simulate("mixed_mode", step_current(16, 10.0), 160)
    intervals = isis(spike_times(t, z))
    # an initial burst (the first intervals short) ...
    assert intervals[0] < 6 and intervals[1] < 6
    # ... followed by single spikes at long, regular intervals
    tonic = [i for i in intervals if i > 6]
    assert len(tonic) >= 3 and all(i > 5 * intervals[0] for i in tonic)
    assert max(tonic[1:]) - min(tonic[1:]) < 0.05 * min(tonic[1:])


def test_spike_frequency_adaptation_lengthens_the_intervals():
    # Fig. 1F: I = 30 from t = 8.5 ms.
    t, z, _ = simulate("spike_frequency_adaptation", step_current(8.5, 30.0), 85)
    intervals = isis(spike_times(t, z))
    assert len(intervals) >= 4
    assert all(b > a for a, b in itertools.pairwise(intervals)), intervals
    assert intervals[-1] > 3 * intervals[0]


# --------------------------------------------------------------------------------------------
# (G), (H): excitability classes
# --------------------------------------------------------------------------------------------


def test_class_1_rate_grows_from_zero_on_a_ramp():
    # Fig. 1G: ramp I = 0.075·(t − 30) from t = 30 ms.
    t, z, _ = simulate("class_1_exc", lambda t: torch.where(t > 30, 0.075 * (t - 30), 0.0), 300)
    times = spike_times(t, z)
    intervals = isis(times)
    assert len(times) >= 5
    assert all(b < a for a, b in itertools.pairwise(intervals))  # the rate only grows


def test_class_2_fires_on_a_ramp_with_rising_rate():
    # Fig. 1H: I = −0.5 + 0.015·(t − 30) from t = 30 ms (−0.5 before).
    t, z, _ = simulate(
        "class_2_exc", lambda t: torch.where(t > 30, -0.5 + 0.015 * (t - 30), -0.5), 300
    )
    intervals = isis(spike_times(t, z))
    assert len(intervals) >= 5
    # the rate rises along the ramp: intervals shrink (up to two 0.25 ms steps of jitter from
    # the time grid) to well under the first
    assert all(b <= a + 0.5 for a, b in itertools.pairwise(intervals)), intervals
    assert intervals[-1] < 0.6 * intervals[0]


def _lowest_rate_hz(name: str, amplitudes: torch.Tensor, base: float) -> float:
    """Steady firing rate for step currents (one neuron per amplitude); the lowest non-zero."""
    t, z, _ = simulate(
        name, lambda t: torch.where((t > 20)[:, None], amplitudes[None, :], base), 1500
    )
    counts = z[t > 500].sum(0)  # spikes in the last second
    return float(counts[counts > 0].min())


def test_class_1_and_class_2_differ_in_the_lowest_rate():
    # The defining difference (Hodgkin's classes): class 1 fires at arbitrarily low rates just
    # above its rheobase, class 2 starts at a clearly non-zero rate.  Step currents on a fine
    # grid: class 1 around its rheobase, 2.25 (where 0.04v² + 4.2v + 108 + I = 0 loses its
    # roots), class 2 over the range of the figure's ramp.
    class_1 = _lowest_rate_hz("class_1_exc", 2.2 + 0.005 * torch.arange(100), 0.0)
    class_2 = _lowest_rate_hz("class_2_exc", -0.5 + 0.01 * torch.arange(150), -0.5)
    assert class_1 <= 3  # Hz
    assert class_2 >= 20  # Hz


# --------------------------------------------------------------------------------------------
# (I)–(L): brief pulses
# --------------------------------------------------------------------------------------------


def test_spike_latency_grows_near_threshold():
    # Fig. 1I: a 3-ms pulse at t = 10 ms whose amplitude (7.04 in the figure, tuned for its
    # 0.2 ms step) is just above threshold fires late.  Find the threshold on a 0.001 grid of
    # amplitudes, then compare latencies above it.
    amplitudes = 6.5 + 0.001 * torch.arange(1500)
    # (the pulse shape times each amplitude: one neuron per amplitude)
    t, z, _ = simulate(
        "spike_latency", lambda t: pulses([10], 3, 1.0)(t)[:, None] * amplitudes[None, :], 100
    )
    fired = z.sum(0) > 0
    k = int(fired.nonzero()[0])  # first amplitude that fires
    assert k > 0 and not fired[:k].any() and fired[k:].all()  # a sharp threshold

    def latency(j: int) -> float:
        return spike_times(t, z, j)[0] - 13.0  # after the pulse ends

    near, farther, strong = latency(k), latency(k + 100), latency(len(amplitudes) - 1)
    assert near > 8  # ms: the spike comes long after the pulse
    assert near > farther > strong  # and sooner the stronger the pulse


def test_subthreshold_oscillation_rings_after_one_spike():
    # Fig. 1J: a 5-ms pulse of 2 at t = 20 ms.
    t, z, v = simulate("subthreshold_oscillation", pulses([20], 5, 2.0), 200)
    times = spike_times(t, z)
    assert len(times) == 1
    after = v[t > times[0] + 2, 0]
    rest = float(v[-1, 0])
    # local extrema of v after the spike alternate around the rest value, shrinking
    d = torch.diff(after)
    idx = ((d[:-1] > 0) & (d[1:] <= 0)) | ((d[:-1] < 0) & (d[1:] >= 0))
    extrema = (after[1:-1][idx] - rest).tolist()
    assert len(extrema) >= 4
    assert all(a * b < 0 for a, b in itertools.pairwise(extrema))  # above, below, above, ...
    assert all(abs(b) < abs(a) for a, b in itertools.pairwise(extrema))  # damped


def test_resonator_fires_only_for_pulses_at_its_resonant_interval():
    # Fig. 1K: pulse pairs (4 ms of 0.65) with 20 ms and 40 ms between onsets.  First measure
    # the resonance: the period of v's damped oscillation after one pulse.
    t, z, v = simulate("resonator", pulses([20], 4, 0.65), 200)
    assert z.sum() == 0  # one pulse: no spike
    d = torch.diff(v[:, 0])
    peaks = t[1:-1][(d[:-1] > 0) & (d[1:] <= 0)]
    period = float(peaks[2] - peaks[1])
    assert 35 < period < 45  # ms: the figure's 40 ms pair sits on it, the 20 ms pair opposite
    fired = {}
    for gap in (period / 2, period):
        _, z, _ = simulate("resonator", pulses([20, 20 + gap], 4, 0.65), 200)
        fired[gap] = bool(z.sum() > 0)
    assert fired == {period / 2: False, period: True}
    # the figure's own pairs: 20 ms apart (40, 60) no spike, 40 ms apart (280, 320) a spike
    t, z, _ = simulate("resonator", pulses([40, 60, 280, 320], 4, 0.65), 400)
    times = spike_times(t, z)
    assert len(times) == 1 and times[0] > 320


def test_integrator_fires_only_for_closely_spaced_pulses():
    # Fig. 1L: 2-ms pulses of 9; pairs 5 ms apart (from t = 9.09) and 10 ms apart (70, 80).
    t, z, _ = simulate("integrator", pulses([100 / 11, 100 / 11 + 5, 70, 80], 2, 9.0), 100)
    times = spike_times(t, z)
    assert len(times) == 1 and 100 / 11 + 5 < times[0] < 70
    # an integrator has no preferred interval: only short gaps sum to a spike (pairs start at
    # the figure's 100/11 ms, so each 2-ms pulse covers 8 steps as there)
    start = 100 / 11
    _, z1, _ = simulate("integrator", pulses([start], 2, 9.0), 100)
    assert z1.sum() == 0
    fired = []
    for gap in (3, 5, 10, 20, 40):
        _, z, _ = simulate("integrator", pulses([start, start + gap], 2, 9.0), 120)
        fired.append(bool(z.sum() > 0))
    assert fired == [True, True, False, False, False]


# --------------------------------------------------------------------------------------------
# (M)–(Q): rebound, threshold variability, bistability, DAP
# --------------------------------------------------------------------------------------------


def test_rebound_spike_after_an_inhibitory_pulse():
    # Fig. 1M: I = −15 for 20 < t < 25 ms (h = 0.2 ms).
    t, z, v = simulate("rebound_spike", pulses([20], 5, -15.0), 200)
    times = spike_times(t, z)
    assert len(times) == 1 and times[0] > 25
    assert float(v[(t > 20) & (t < 25)].min()) < float(v[0]) - 10  # hyperpolarised first
    _, z0, _ = simulate("rebound_spike", lambda t: torch.zeros_like(t), 200)
    assert z0.sum() == 0  # no pulse, no spike


def test_rebound_burst_after_an_inhibitory_pulse():
    # Fig. 1N: the same inhibitory pulse.
    t, z, _ = simulate("rebound_burst", pulses([20], 5, -15.0), 200)
    bursts = groups(spike_times(t, z), gap=15.0)
    assert len(bursts) == 1 and len(bursts[0]) >= 3 and bursts[0][0] > 25
    assert isis(bursts[0])[0] < 5
    assert t[-1] - bursts[0][-1] > 60  # then silent
    _, z0, _ = simulate("rebound_burst", lambda t: torch.zeros_like(t), 200)
    assert z0.sum() == 0


def test_threshold_variability_a_pulse_fires_only_after_inhibition():
    # Fig. 1O: +1 for 10–15 ms and 80–85 ms, −6 for 70–75 ms.
    def protocol(with_inhibition: bool):
        def current(t):
            excite = pulses([10, 80], 5, 1.0)(t)
            return excite + (pulses([70], 5, -6.0)(t) if with_inhibition else 0.0)

        return current

    t, z, _ = simulate("threshold_variability", protocol(True), 100)
    times = spike_times(t, z)
    assert len(times) == 1 and times[0] > 80  # only the pulse after inhibition fires
    _, z0, _ = simulate("threshold_variability", protocol(False), 100)
    assert z0.sum() == 0  # the same pulse alone does not


def test_bistability_one_pulse_switches_spiking_on_another_off():
    # Fig. 1P: baseline 0.24, 5-ms pulses of 1.24 at t = 37.5 ms and later.  In the figure the
    # second pulse comes 8 ms after a spike (216 ms, its spike being at 208); spike times here
    # differ slightly (u from the old v), so the second pulse keeps that phase.
    t, z, _ = simulate("bistability", lambda t: torch.full_like(t, 0.24), 300)
    assert z.sum() == 0  # baseline alone: resting
    t, z, _ = simulate("bistability", pulses([37.5], 5, 1.24, base=0.24), 300)
    times = spike_times(t, z)
    assert times[0] > 37.5 and len(times) >= 6  # switched on: keeps spiking ...
    intervals = isis(times)
    assert max(intervals) - min(intervals) < 0.05 * min(intervals)  # ... tonically
    off = times[3] + 8.0
    t, z, _ = simulate("bistability", pulses([37.5, off], 5, 1.24, base=0.24), 400)
    times = spike_times(t, z)
    assert times[-1] < off + 5 and len(times) == 4  # switched off by the second pulse


def test_dap_depolarizing_after_potential():
    # Fig. 1Q: a brief strong pulse at t = 10 ms (h = 0.1 ms).  With the figure's 2 ms of 20 the
    # after-potential itself reaches threshold here (u from the old v), giving three spikes; a
    # 1-ms pulse of 25 shows the figure's single spike.
    t, z, v = simulate("dap", lambda t: torch.where((t - 10).abs() < 0.5, 25.0, 0.0), 50)
    times = spike_times(t, z)
    assert len(times) == 1
    after = v[t > times[0], 0]
    c, rest = -60.0, float(v[0, 0])
    # after the reset to c, v rises again (the DAP) to a hump above c before decaying
    peak = int(after.argmax())
    assert peak > 0 and float(after[peak]) > c + 5
    assert float(after[-1]) < c and abs(float(after[-1]) - rest) < 1


# --------------------------------------------------------------------------------------------
# (R)–(T): accommodation and inhibition-induced firing
# --------------------------------------------------------------------------------------------


def _accommodation_protocol(slow: bool, fast: bool, holding: float = -55.0, amplitude=8.0):
    # Fig. 1R's ramps (a slow one over 200 ms, a fast one over 12.5 ms), both rising by the same
    # amplitude from a holding current.
    def current(t):
        slow_ramp = torch.where((t >= 100) & (t < 300), (t - 100) / 200 * amplitude, 0.0)
        fast_ramp = torch.where((t >= 400) & (t < 412.5), (t - 400) / 12.5 * amplitude, 0.0)
        return holding + slow * slow_ramp + fast * fast_ramp

    return current


def test_accommodation_the_same_rise_fires_only_when_fast():
    # Accommodation: the threshold follows a slowly rising input, so a slow ramp to an amplitude
    # stays silent while a fast ramp to the same amplitude fires.
    #
    # Protocol.  With u' = a·(b·v − u) and b = 1 the preset has no resting state: the fixed
    # points need 0.04v² + 4v + 140 + I = 0, which has real roots only for I ≤ −40, so without
    # input it fires tonically (test below).  Izhikevich's figure instead integrates
    # u' = a·b·(v + 65), a different equation.  Here the preset is held at rest by a holding
    # current of −55 (stable point v ≈ −69.4 mV) and both ramps rise by 8 from there, to −47,
    # still below the rheobase −40: a steady −47 would not fire.
    t, z, _ = simulate("accommodation", _accommodation_protocol(slow=True, fast=True), 500)
    times = spike_times(t, z)
    assert not [s for s in times if s < 400]  # settling and the slow ramp: silent
    assert len([s for s in times if 400 <= s < 420]) >= 1  # the fast ramp: a spike
    # and the fast ramp alone fires too (it does not rely on what the slow one left behind)
    t, z, _ = simulate("accommodation", _accommodation_protocol(slow=False, fast=True), 500)
    assert [s for s in spike_times(t, z) if 400 <= s < 420]
    # while the level both ramps reach, held from the start, never fires
    t, z, _ = simulate("accommodation", lambda t: torch.full_like(t, -47.0), 500)
    assert z.sum() == 0


def test_accommodation_preset_fires_without_input():
    # The reason for the holding current above: no resting state (the discriminant
    # 4² − 4·0.04·140 < 0).
    assert 4.0**2 - 4 * 0.04 * 140 < 0
    t, z, _ = simulate("accommodation", lambda t: torch.zeros_like(t), 100)
    assert len(spike_times(t, z)) >= 5


def _inhibition_protocol(t):
    # Fig. 1S/T: drive 80, lowered to 75 for 50 < t < 250 ms.
    return torch.where((t < 50) | (t > 250), 80.0, 75.0)


def test_inhibition_induced_spiking():
    t, z, _ = simulate("inhibition_induced_spiking", _inhibition_protocol, 350)
    times = spike_times(t, z)
    assert not [s for s in times if s < 50]  # full drive: silent
    during = [s for s in times if 50 < s < 250]
    assert len(during) >= 3  # lowered drive: tonic spikes
    intervals = isis(during)
    assert max(intervals) - min(intervals) < 0.05 * min(intervals)
    assert not [s for s in times if s > 270]  # drive restored: silent again


def test_inhibition_induced_bursting():
    # Fig. 1T: silent under the full drive of 80, bursts while it is lowered to 75, silent again.
    # The panel needs the update order of Izhikevich's script (u from the new v, u_update="new_v")
    # at its 0.5 ms step (tau_inv = 500); see the next test for the reference's order.
    t, z, _ = simulate(
        "inhibition_induced_bursting", _inhibition_protocol, 350, tau_inv=500.0, u_update="new_v"
    )
    times = spike_times(t, z)
    assert not [s for s in times if s < 50]
    bursts = groups([s for s in times if 50 < s < 250], gap=10.0)
    # at least two bursts of >= 3 spikes, the gap between them > 5x the longest in-burst interval
    assert len(bursts) >= 2 and all(len(b) >= 3 for b in bursts), bursts
    intra = max(max(isis(b)) for b in bursts)
    assert min(b[0] - a[-1] for a, b in itertools.pairwise(bursts)) > 5 * intra
    assert not [s for s in times if s > 270]


def test_inhibition_induced_bursting_runs_away_with_the_reference_order():
    # With u from the old v (MODELS.md, the reference) the first burst never ends: u falls by
    # |d| = 2 per spike faster than a < 0 lets it recover, and the neuron keeps firing at
    # intervals of at most 2 ms to the end, also at the figure's 0.5 ms step; with either order at
    # 0.25 ms as well (so this panel is a property of the script's discretisation, not of the
    # model's differential equations).
    for tau_inv, u_update in ((250.0, "old_v"), (500.0, "old_v"), (250.0, "new_v")):
        t, z, _ = simulate(
            "inhibition_induced_bursting",
            _inhibition_protocol,
            350,
            tau_inv=tau_inv,
            u_update=u_update,
        )
        times = spike_times(t, z)
        late = [s for s in times if s > 100]
        assert late[-1] > 345 and max(isis(late)) <= 2.0, (tau_inv, u_update)
