"""The Izhikevich (2003) neuron: a quadratic membrane with a linear recovery variable.

The equations are written in Izhikevich's units: voltages in mV, time in ms.  One Euler step of
``dt`` seconds advances that ms time axis by ``h = tau_inv·dt`` (0.25 ms with the defaults):

    v1 = v + h·(sq·v² + mn·v + bias − u + x)     membrane potential (mV)
    u1 = u + h·a·(b·v − u)                       recovery variable, from the old v
                                                 (u_update="new_v": from v1, see below)
    z  = Θ(v1 − v_th)                            spike (surrogate ``method``, sharpness ``alpha``)
    v' = (1 − z)·v1 + z·c                        reset of v ...
    u' = u1 + z·d                                ... and jump of u after a spike

As in the reference, no spike is detached: the recurrent step resets with ``z`` itself.

Update order.  MODELS.md and the reference update ``u`` from the old ``v`` (explicit Euler, the
default ``u_update="old_v"``).  Izhikevich's published scripts, which drew the figures of the
2004 paper, update it from the new one, ``u1 = u + h·a·(b·v1 − u)`` (semi-implicit Euler,
``u_update="new_v"``).  The two agree as h → 0, but some figure panels depend on the scripts'
order at their step size: inhibition-induced bursting (panel T) bursts only with ``"new_v"`` at
h = 0.5 ms; with either order at h ≤ 0.25 ms, and in the continuous-time limit, u runs away
after the first spike (a < 0) and the neuron never stops firing.

Numerical guard.  Under strong input Euler's quadratic can run away: with a < 0 (the
inhibition-induced presets) u grows exponentially, drives v to −1e19 and ``v²`` overflows to
inf, then NaN (the reference does this within 9,000 steps at |x| = 1e3).  Each step therefore
first clamps the incoming ``v`` into ``[−V_BOUND, V_BOUND]`` = ±1e4 mV and ``u`` into
``[−U_BOUND, U_BOUND]`` = ±1e6 before anything else uses them.  Ordinary trajectories stay in
−100…+30 mV (about −450 mV and u ≈ 3e3 at |x| = 1e3), far inside, so the guard changes nothing
there; beyond it, a voltage of −1e4 mV still makes the quadratic term win and the neuron spikes
and resets, which is what the unclamped step does before it overflows.  Clamping the whole
state, not just the squared term, matters: clamping only ``v²`` would leave ``mn·v`` to grow
geometrically (×(1 + h·mn) per step).  Inside the range the gradient is unchanged; outside it
is zero.  float16 is refused with a clear error: its largest value, 65504, is below the bounds
themselves (and 1e4² = 1e8), so the guard could not even be written in it; bfloat16 has
float32's range and runs.

Izhikevich, "Simple model of spiking neurons", IEEE Trans. Neural Netw. 14(6), 2003;
"Which model to use for cortical spiking neurons?", IEEE Trans. Neural Netw. 15(5), 2004.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch

import snncore
from snncore import method_field, tensor_field
from snncore.parameters import ParameterRecord, finite, non_negative_finite, positive_finite

#: The guard's bounds on the state entering a step (see the module docstring).
V_BOUND = 1.0e4
U_BOUND = 1.0e6
#: Start voltage when no preset or behaviour gives one (the tonic-spiking start, mV); u = b·v.
V_INITIAL = -70.0


def _check_u_update(value: Any) -> None:
    if value not in ("old_v", "new_v"):
        raise ValueError(f"u_update must be 'old_v' or 'new_v', got {value!r}")


@attrs.frozen
class IzhikevichParameters(ParameterRecord):
    """Parameters of an Izhikevich neuron; each numeric field a scalar or per-neuron tensor.

    ``a``–``d`` default to the tonic-spiking behaviour (the reference requires them).
    """

    a: torch.Tensor = tensor_field(
        0.02, "1/ms", "time scale of the recovery variable u", validator=finite
    )
    b: torch.Tensor = tensor_field(0.2, "", "sensitivity of u to subthreshold v", validator=finite)
    c: torch.Tensor = tensor_field(-65.0, "mV", "reset potential after a spike", validator=finite)
    d: torch.Tensor = tensor_field(6.0, "mV", "jump of u after a spike", validator=finite)
    sq: torch.Tensor = tensor_field(0.04, "1/(mV·ms)", "coefficient of v²", validator=finite)
    mn: torch.Tensor = tensor_field(5.0, "1/ms", "coefficient of v", validator=finite)
    bias: torch.Tensor = tensor_field(140.0, "mV/ms", "constant drive", validator=finite)
    v_th: torch.Tensor = tensor_field(
        30.0, "mV", "spike cut-off (peak) potential", validator=finite
    )
    tau_inv: torch.Tensor = tensor_field(
        250.0,
        "1/s",
        "time scale: one step advances the ms time axis by tau_inv·dt",
        validator=positive_finite,
    )
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(
        100.0, "", "surrogate gradient sharpness", validator=non_negative_finite
    )
    u_update: str = attrs.field(
        default="old_v",
        validator=lambda _, __, value: _check_u_update(value),
        metadata={
            "unit": "",
            "doc": "u from the old v (reference) or the new v (Izhikevich's scripts)",
            "default": "old_v",
        },
    )


class IzhikevichFeedForwardState(NamedTuple):
    """State of a feed-forward Izhikevich neuron: potential ``v`` and recovery variable ``u``.

    (The reference calls this class ``IzhikevichState``.)
    """

    v: torch.Tensor
    u: torch.Tensor


class IzhikevichState(NamedTuple):
    """State of a recurrent Izhikevich neuron: last spikes ``z``, potential ``v``, recovery ``u``.

    (The reference calls this class ``IzhikevichRecurrentState``.)
    """

    z: torch.Tensor
    v: torch.Tensor
    u: torch.Tensor


def _integrate(
    x: torch.Tensor, v: torch.Tensor, u: torch.Tensor, p: IzhikevichParameters, dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Euler update of ``v`` and ``u`` before the spike, with the guard applied first."""
    if v.dtype == torch.float16:
        raise TypeError(
            "izhikevich cannot run in float16: its state is bounded by |v| <= 1e4 mV (v² <= 1e8) "
            "and |u| <= 1e6, beyond float16's largest value 65504; use float32, float64 or "
            "bfloat16"
        )
    v = v.clamp(-V_BOUND, V_BOUND)
    u = u.clamp(-U_BOUND, U_BOUND)
    h = p.tau_inv * dt
    v_new = v + h * (p.sq * v**2 + p.mn * v + p.bias - u + x)
    u_new = u + h * p.a * (p.b * (v_new if p.u_update == "new_v" else v) - u)
    return v_new, u_new


def _fire(
    v_new: torch.Tensor, u_new: torch.Tensor, p: IzhikevichParameters
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z = snncore.spike(v_new - p.v_th, p.method, p.alpha)
    return z, (1 - z) * v_new + z * p.c, u_new + z * p.d


def izhikevich_feed_forward_step(
    input_current: torch.Tensor,
    state: IzhikevichFeedForwardState,
    p: IzhikevichParameters = IzhikevichParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, IzhikevichFeedForwardState]:
    """One Euler step driven by ``input_current``; returns ``(spikes, state)``."""
    z, v, u = _fire(*_integrate(input_current, state.v, state.u, p, dt), p)
    return z, IzhikevichFeedForwardState(v, u)


def izhikevich_recurrent_current_step(
    input_current: torch.Tensor,
    state: IzhikevichState,
    p: IzhikevichParameters = IzhikevichParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, IzhikevichState]:
    """One recurrent step; ``input_current`` is ``W_in·x + W_rec·z_prev`` (the core's step)."""
    z, v, u = _fire(*_integrate(input_current, state.v, state.u, p, dt), p)
    return z, IzhikevichState(z, v, u)


def izhikevich_recurrent_step(
    input_spikes: torch.Tensor,
    state: IzhikevichState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: IzhikevichParameters = IzhikevichParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, IzhikevichState]:
    """The reference's functional signature: weighs the input and last spikes itself."""
    current = torch.nn.functional.linear(input_spikes, input_weights) + torch.nn.functional.linear(
        state.z, recurrent_weights
    )
    return izhikevich_recurrent_current_step(current, state, p, dt)


def _start(p: IzhikevichParameters, shape: Any, device: Any, dtype: Any):
    v = torch.full(tuple(shape), V_INITIAL, device=device, dtype=dtype)
    u = v * p.b.detach().to(device=device, dtype=dtype)
    return v, torch.broadcast_to(u, v.shape).clone()


def initial_feed_forward_state(
    p: IzhikevichParameters, shape: Any, device: Any = None, dtype: Any = None
) -> IzhikevichFeedForwardState:
    """``v = −70 mV``, ``u = b·v`` (presets and behaviours give their own start values)."""
    return IzhikevichFeedForwardState(*_start(p, shape, device, dtype))


def initial_state(
    p: IzhikevichParameters, shape: Any, device: Any = None, dtype: Any = None
) -> IzhikevichState:
    """``z = 0``, ``v = −70 mV``, ``u = b·v``."""
    v, u = _start(p, shape, device, dtype)
    return IzhikevichState(torch.zeros_like(v), v, u)
