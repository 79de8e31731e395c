"""The registered ``izhikevich`` model and its Norse-style module classes.

The classes are the core's generic modules (``snncore.create("izhikevich", variant=...)``
returns instances of these very classes).  They take every generic argument, and in addition
the reference's call convention with a spiking behaviour where the generic modules take ``p``::

    IzhikevichCell(tonic_spiking)                       # = IzhikevichCell(behavior="tonic_spiking")
    Izhikevich(spiking_method=tonic_bursting, dt=0.001)
    IzhikevichRecurrentCell(2, 4, tonic_spiking)        # (input_size, hidden_size, behaviour)

A behaviour object gives the parameters and the start state of every neuron (its ``s`` must hold
scalars); any custom one from :func:`create_izhikevich_spiking_behavior` works as well.
"""

from __future__ import annotations

import functools
from typing import Any

import snncore
from snn_izhikevich.behaviors import PRESETS, IzhikevichSpikingBehavior, behavior_name
from snn_izhikevich.izhikevich import (
    IzhikevichFeedForwardState,
    IzhikevichParameters,
    IzhikevichState,
    initial_feed_forward_state,
    initial_state,
    izhikevich_feed_forward_step,
    izhikevich_recurrent_current_step,
)

IZHIKEVICH_MODEL = snncore.NeuronModel(
    name="izhikevich",
    family="izhikevich",
    summary="Izhikevich quadratic neuron with recovery variable; 20 named behaviours as presets",
    parameters=IzhikevichParameters,
    feed_forward_step=izhikevich_feed_forward_step,
    feed_forward_state=IzhikevichFeedForwardState,
    initial_feed_forward_state=initial_feed_forward_state,
    recurrent_step=izhikevich_recurrent_current_step,
    state=IzhikevichState,
    initial_state=initial_state,
    presets=PRESETS,
    equations=(
        "h = tau_inv*dt;  v1 = v + h*(sq*v^2 + mn*v + bias - u + x);  u1 = u + h*a*(b*v - u);\n"
        "z = H(v1 - v_th);  v' = (1 - z)*v1 + z*c;  u' = u1 + z*d\n"
        "(u_update='new_v': u1 = u + h*a*(b*v1 - u), the order of Izhikevich's scripts)\n"
        "(v, u clamped to +-1e4 mV, +-1e6 before the step: an overflow guard, inactive in "
        "normal use)"
    ),
    units={"z": "spikes (0/1)", "v": "mV", "u": "mV/ms (recovery)"},
    reference=(
        "Izhikevich, IEEE Trans. Neural Netw. 14(6) 2003 (model); 15(5) 2004 (the 20 behaviours)"
    ),
)


def _start_values(behavior: IzhikevichSpikingBehavior) -> dict[str, float]:
    values = {}
    for field in ("v", "u"):
        value = getattr(behavior.s, field)
        if getattr(value, "numel", lambda: 1)() != 1:
            raise ValueError(
                f"IzhikevichSpikingBehavior.s.{field} must be one start value for every neuron "
                f"(a scalar), got shape {tuple(value.shape)}; pass per-neuron start values as "
                f"the module's state= instead"
            )
        values[field] = float(value)
    return values


def _accept_behavior(cls: type, p_position: int) -> type:
    """Let ``cls`` take a behaviour object wherever it takes ``p`` (and as ``spiking_method``,
    ``behavior`` or ``preset``); the behaviour's state becomes every neuron's start value."""
    generic_init = cls.__init__

    @functools.wraps(generic_init)
    def __init__(self: Any, *args: Any, spiking_method: Any = None, **kwargs: Any) -> None:
        args_list = list(args)
        found: list[IzhikevichSpikingBehavior] = []
        if spiking_method is not None:
            if not isinstance(spiking_method, IzhikevichSpikingBehavior):
                raise TypeError(
                    "spiking_method must be an IzhikevichSpikingBehavior (e.g. "
                    f"snn_izhikevich.tonic_spiking), got {type(spiking_method).__name__}"
                )
            found.append(spiking_method)
        if len(args_list) > p_position and isinstance(
            args_list[p_position], IzhikevichSpikingBehavior
        ):
            found.append(args_list[p_position])
            args_list[p_position] = None
        for key in ("p", "behavior", "preset"):
            if isinstance(kwargs.get(key), IzhikevichSpikingBehavior):
                found.append(kwargs.pop(key))
        if len(found) > 1:
            raise TypeError(f"{cls.__name__}: give one spiking behaviour, got {len(found)}")
        if not found:
            generic_init(self, *args_list, **kwargs)
            return
        behavior = found[0]
        for key in ("p", "behavior", "preset"):
            if kwargs.get(key) is not None or (
                key == "p" and len(args_list) > p_position and args_list[p_position] is not None
            ):
                raise TypeError(f"{cls.__name__}: give either a spiking behaviour or {key}=")
        start = _start_values(behavior)
        if len(args_list) > p_position:
            args_list[p_position] = behavior.p
        else:
            kwargs["p"] = behavior.p
        generic_init(self, *args_list, **kwargs)
        # The core applies a preset's start values through ``_preset_state``; a behaviour object
        # is an unnamed preset, so it fills the same slot.
        self._preset_state = start
        self.preset = behavior_name(behavior)
        self.spiking_method = behavior

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


IzhikevichCell = _accept_behavior(
    snncore.module_class(IZHIKEVICH_MODEL, "cell", "IzhikevichCell", __name__), 0
)
Izhikevich = _accept_behavior(
    snncore.module_class(IZHIKEVICH_MODEL, "layer", "Izhikevich", __name__), 0
)
IzhikevichRecurrentCell = _accept_behavior(
    snncore.module_class(IZHIKEVICH_MODEL, "recurrent_cell", "IzhikevichRecurrentCell", __name__),
    2,
)
IzhikevichRecurrent = _accept_behavior(
    snncore.module_class(IZHIKEVICH_MODEL, "recurrent", "IzhikevichRecurrent", __name__), 2
)
