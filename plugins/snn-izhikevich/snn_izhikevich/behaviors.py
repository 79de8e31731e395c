"""The 20 spiking behaviours of Izhikevich (2004, fig. 1) as parameters plus start values.

Each behaviour is available three ways, all built from one table of plain numbers:

- as a module-level name, ``snn_izhikevich.tonic_spiking``: an
  :class:`IzhikevichSpikingBehavior` ``(p, s)`` as in the reference, accepted by every module
  (``IzhikevichCell(tonic_spiking)``);
- as a preset of the registered model: ``snncore.create("izhikevich", behavior="tonic_spiking")``
  (also ``preset=``), listed by ``snn info izhikevich``;
- through :data:`BEHAVIORS` / :data:`PRESETS`, read-only mappings by name.

Start values: ``u0 = b·v0`` except for accommodation (``u0 = −16``).  Behaviours are immutable
(NamedTuples of a frozen parameter record and a state), their tensors never require gradients,
and modules copy them, so no two users share a tensor through a preset.  (The reference marks
the shared start voltage ``requires_grad=True`` and its cells write that flag into it.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import NamedTuple

import torch

import snncore
from snn_izhikevich.izhikevich import IzhikevichFeedForwardState, IzhikevichParameters


class IzhikevichSpikingBehavior(NamedTuple):
    """A spiking behaviour: parameters ``p`` and the start state ``s`` (scalars for every neuron)."""

    p: IzhikevichParameters
    s: IzhikevichFeedForwardState


class _Entry(NamedTuple):
    parameters: dict[str, float]
    v0: float
    u0: float | None
    summary: str


def _e(a, b, c, d, v0, summary, u0=None, **other) -> _Entry:
    return _Entry({"a": a, "b": b, "c": c, "d": d, **other}, float(v0), u0, summary)


# Izhikevich (2004), fig. 1, panels A–T; the summary names the stimulus of the figure.
_TABLE: dict[str, _Entry] = {
    "tonic_spiking": _e(0.02, 0.2, -65, 6, -70, "(A) regular spikes during a step current"),
    "phasic_spiking": _e(0.02, 0.25, -65, 6, -64, "(B) one spike at the onset of a step"),
    "tonic_bursting": _e(0.02, 0.2, -50, 2, -70, "(C) bursts repeated during a step"),
    "phasic_bursting": _e(
        0.02, 0.25, -55, 0.05, -64, "(D) one burst at the onset of a step", tau_inv=200
    ),
    "mixed_mode": _e(0.02, 0.2, -55, 4, -70, "(E) a burst, then tonic spikes, during a step"),
    "spike_frequency_adaptation": _e(
        0.01, 0.2, -65, 8, -70, "(F) inter-spike intervals lengthen during a step"
    ),
    "class_1_exc": _e(
        0.02, -0.1, -55, 6, -60, "(G) rate rises from ~0 with a ramp", mn=4.1, bias=108
    ),
    "class_2_exc": _e(0.2, 0.26, -65, 0, -64, "(H) spiking starts at a non-zero rate on a ramp"),
    "spike_latency": _e(0.02, 0.2, -65, 6, -70, "(I) a delayed spike after a brief pulse"),
    "subthreshold_oscillation": _e(
        0.05, 0.26, -60, 0, -62, "(J) damped oscillation of v after a pulse"
    ),
    "resonator": _e(0.1, 0.26, -60, -1, -62, "(K) spikes for pulse pairs at the resonant gap"),
    "integrator": _e(
        0.02, -0.1, -55, 6, -60, "(L) spikes for closely spaced pulse pairs", mn=4.1, bias=108
    ),
    "rebound_spike": _e(
        0.03, 0.25, -60, 4, -64, "(M) a spike after an inhibitory pulse", tau_inv=200
    ),
    "rebound_burst": _e(
        0.03, 0.25, -52, 0, -64, "(N) a burst after an inhibitory pulse", tau_inv=200
    ),
    "threshold_variability": _e(
        0.03, 0.25, -60, 4, -64, "(O) a pulse fires only after an inhibitory one"
    ),
    "bistability": _e(0.1, 0.26, -60, 0, -61, "(P) a pulse switches tonic spiking on, one off"),
    "dap": _e(1.0, 0.2, -60, -21, -70, "(Q) depolarizing after-potential", tau_inv=100),
    "accommodation": _e(
        0.02, 1.0, -55, 4, -65, "(R) slow ramp: no spike; fast ramp: spike", u0=-16, tau_inv=500
    ),
    "inhibition_induced_spiking": _e(
        -0.02, -1.0, -60, 8, -63.8, "(S) tonic spikes while the drive is lowered"
    ),
    "inhibition_induced_bursting": _e(
        -0.026, -1.0, -45, -2, -63.8, "(T) bursts while the drive is lowered"
    ),
}


def _start_u(entry: _Entry) -> float:
    return entry.u0 if entry.u0 is not None else entry.parameters["b"] * entry.v0


def _behavior(entry: _Entry) -> IzhikevichSpikingBehavior:
    state = IzhikevichFeedForwardState(
        v=torch.tensor(entry.v0), u=torch.tensor(float(_start_u(entry)))
    )
    return IzhikevichSpikingBehavior(IzhikevichParameters(**entry.parameters), state)


def create_izhikevich_spiking_behavior(
    a: float,
    b: float,
    c: float,
    d: float,
    v_rest: float,
    u_rest: float,
    tau_inv: float = 250,
) -> IzhikevichSpikingBehavior:
    """A custom behaviour, as the reference builds it: ``v0 = v_rest`` and ``u0 = b·u_rest``.

    (Yes, ``u_rest`` is multiplied by ``b``, as in the reference; pass ``u_rest = v_rest`` for
    the usual ``u0 = b·v0``.)
    """
    p = IzhikevichParameters(a=a, b=b, c=c, d=d, tau_inv=tau_inv)
    s = IzhikevichFeedForwardState(
        v=torch.tensor(float(v_rest)), u=torch.tensor(float(u_rest)) * p.b.detach()
    )
    return IzhikevichSpikingBehavior(p, s)


#: The behaviours by name (read-only).
BEHAVIORS: Mapping[str, IzhikevichSpikingBehavior] = MappingProxyType(
    {name: _behavior(entry) for name, entry in _TABLE.items()}
)


class _Presets(Mapping[str, snncore.Preset]):
    """A read-only mapping of the 20 presets that also answers to a few other names for them.

    Iterating, ``len`` and ``snn info`` see the 20 figure panels only; looking up an alias
    (``"chattering"``) returns the preset it names, so ``preset="chattering"`` works."""

    def __init__(self, presets: Mapping[str, snncore.Preset], aliases: Mapping[str, str]):
        self._presets = MappingProxyType(dict(presets))
        self.aliases = MappingProxyType(dict(aliases))

    def __getitem__(self, name: str) -> snncore.Preset:
        return self._presets[self.aliases.get(name, name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._presets)

    def __len__(self) -> int:
        return len(self._presets)

    def __contains__(self, name: object) -> bool:
        return name in self._presets or name in self.aliases


#: Other names of presets: Izhikevich (2003, fig. 2) calls the cortical cells whose parameters
#: fig. 1C of 2004 uses for tonic bursting (a=0.02, b=0.2, c=−50, d=2) "chattering" (CH).
ALIASES: Mapping[str, str] = MappingProxyType({"chattering": "tonic_bursting"})

#: The same behaviours as presets of the registered model (separate tensors, read-only), also
#: reachable by the names in :data:`ALIASES`.
PRESETS: Mapping[str, snncore.Preset] = _Presets(
    {
        name: snncore.Preset(
            name=name,
            parameters=IzhikevichParameters(**entry.parameters),
            initial_state=MappingProxyType({"v": entry.v0, "u": float(_start_u(entry))}),
            summary=entry.summary,
        )
        for name, entry in _TABLE.items()
    },
    ALIASES,
)


def behavior_name(behavior: IzhikevichSpikingBehavior) -> str | None:
    """The name of one of the 20 named behaviour objects, or ``None`` for any other."""
    for name, known in BEHAVIORS.items():
        if behavior is known:
            return name
    return None


tonic_spiking = BEHAVIORS["tonic_spiking"]
phasic_spiking = BEHAVIORS["phasic_spiking"]
tonic_bursting = BEHAVIORS["tonic_bursting"]
phasic_bursting = BEHAVIORS["phasic_bursting"]
mixed_mode = BEHAVIORS["mixed_mode"]
spike_frequency_adaptation = BEHAVIORS["spike_frequency_adaptation"]
class_1_exc = BEHAVIORS["class_1_exc"]
class_2_exc = BEHAVIORS["class_2_exc"]
spike_latency = BEHAVIORS["spike_latency"]
subthreshold_oscillation = BEHAVIORS["subthreshold_oscillation"]
resonator = BEHAVIORS["resonator"]
integrator = BEHAVIORS["integrator"]
rebound_spike = BEHAVIORS["rebound_spike"]
rebound_burst = BEHAVIORS["rebound_burst"]
threshold_variability = BEHAVIORS["threshold_variability"]
bistability = BEHAVIORS["bistability"]
dap = BEHAVIORS["dap"]
accommodation = BEHAVIORS["accommodation"]
#: The reference's spelling.
accomodation = accommodation
inhibition_induced_spiking = BEHAVIORS["inhibition_induced_spiking"]
inhibition_induced_bursting = BEHAVIORS["inhibition_induced_bursting"]
