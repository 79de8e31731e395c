"""LSNN: leaky integrate-and-fire neurons whose threshold adapts to their own spikes.

ODE (Euler, step ``dt`` seconds); ``b`` is the effective threshold, which relaxes towards
``v_th`` and jumps by ``beta`` at every spike:

    dv/dt = tau_mem_inv · ((v_leak − v) + i)      membrane voltage
    di/dt = −tau_syn_inv · i                      synaptic current
    db/dt = tau_adapt_inv · (v_th − b)            adaptive threshold
    z = Θ(v − b);  v ← (1 − z)·v + z·v_reset;  b ← b + beta·z

One step, in the order of the reference (Norse 1.1.0 keeps the older order for LSNN: the input
current is added *after* the voltage update, so it reaches ``v`` one step later than in LIF):

    1. v1 = v + dt·tau_mem_inv·((v_leak − v) + i)
    2. i1 = i − dt·tau_syn_inv·i
    3. b1 = b + dt·tau_adapt_inv·(v_th − b)
    4. z  = Θ(v1 − b1)               (surrogate gradient ``method`` with sharpness ``alpha``)
    5. v' = (1 − z)·v1 + z·v_reset
    6. i' = i1 + x                   (recurrent: x = W_in·x_in + W_rec·z_prev, from the core)
    7. b' = b1 + beta·z

The feed-forward step differentiates through the spike in 5 and 7; the recurrent step uses the
detached spike there, as the reference does.  Initial state: ``v = v_leak``, ``i = 0``,
``b = v_th``, ``z = 0``.  Voltages in model units, rates in 1/s.

Bellec, Salaj, Subramoney, Legenstein & Maass, *Long short-term memory and learning-to-learn in
networks of spiking neurons*, NeurIPS 2018 (arXiv:1803.09574).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch

import snncore
from snncore import method_field, tensor_field
from snncore.parameters import ParameterRecord, finite, non_negative_finite, positive_finite


@attrs.frozen
class LSNNParameters(ParameterRecord):
    """Parameters of an LSNN neuron; each numeric field a scalar or per-neuron tensor."""

    tau_syn_inv: torch.Tensor = tensor_field(
        200.0, "1/s", "inverse synaptic time constant", validator=positive_finite
    )
    tau_mem_inv: torch.Tensor = tensor_field(
        100.0, "1/s", "inverse membrane time constant", validator=positive_finite
    )
    tau_adapt_inv: torch.Tensor = tensor_field(
        1.0 / 800,
        "1/s",
        "inverse time constant of the threshold adaptation",
        validator=positive_finite,
    )
    v_leak: torch.Tensor = tensor_field(0.0, "V", "leak (resting) potential", validator=finite)
    v_th: torch.Tensor = tensor_field(
        1.0, "V", "resting threshold, where b relaxes to", validator=finite
    )
    v_reset: torch.Tensor = tensor_field(0.0, "V", "potential after a spike", validator=finite)
    beta: torch.Tensor = tensor_field(1.8, "V", "threshold increase per spike", validator=finite)
    method: str = method_field()
    alpha: torch.Tensor = tensor_field(
        100.0, "", "surrogate gradient sharpness", validator=non_negative_finite
    )


class LSNNFeedForwardState(NamedTuple):
    """State of a feed-forward LSNN neuron: voltage ``v``, current ``i``, threshold ``b``."""

    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


class LSNNState(NamedTuple):
    """State of a recurrent LSNN neuron: last spikes ``z``, ``v``, ``i`` and threshold ``b``."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


def _decay(
    v: torch.Tensor, i: torch.Tensor, b: torch.Tensor, p: LSNNParameters, dt: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1–3: voltage, current and threshold after ``dt`` without input or spike."""
    v_decayed = v + dt * p.tau_mem_inv * ((p.v_leak - v) + i)
    i_decayed = i - dt * p.tau_syn_inv * i
    b_decayed = b + dt * p.tau_adapt_inv * (p.v_th - b)
    return v_decayed, i_decayed, b_decayed


def lsnn_feed_forward_step(
    input_current: torch.Tensor,
    state: LSNNFeedForwardState,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LSNNFeedForwardState]:
    """One Euler step of LSNN driven by ``input_current``; returns ``(spikes, state)``."""
    v_decayed, i_decayed, b_decayed = _decay(state.v, state.i, state.b, p, dt)
    z = snncore.spike(v_decayed - b_decayed, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    b_new = b_decayed + z * p.beta
    return z, LSNNFeedForwardState(v=v_new, i=i_decayed + input_current, b=b_new)


def lsnn_recurrent_step(
    input_current: torch.Tensor,
    state: LSNNState,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LSNNState]:
    """One step of recurrent LSNN; ``input_current`` is ``W_in·x + W_rec·z_prev``.

    The reset and the threshold jump use the detached spike, as the reference does.
    """
    v_decayed, i_decayed, b_decayed = _decay(state.v, state.i, state.b, p, dt)
    z = snncore.spike(v_decayed - b_decayed, p.method, p.alpha)
    z_const = z.detach()
    v_new = (1 - z_const) * v_decayed + z_const * p.v_reset
    b_new = b_decayed + z_const * p.beta
    return z, LSNNState(z=z, v=v_new, i=i_decayed + input_current, b=b_new)


def lsnn_step(
    input_spikes: torch.Tensor,
    state: LSNNState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LSNNState]:
    """Recurrent LSNN step that weighs its inputs itself (the reference's functional signature)."""
    current = torch.nn.functional.linear(input_spikes, input_weights) + torch.nn.functional.linear(
        state.z, recurrent_weights
    )
    return lsnn_recurrent_step(current, state, p, dt)


def _rest(p: LSNNParameters, shape: Any, device: Any, dtype: Any) -> tuple[torch.Tensor, ...]:
    zeros = torch.zeros(shape, device=device, dtype=dtype)
    v = zeros + p.v_leak.detach().to(device=device, dtype=dtype)
    b = zeros + p.v_th.detach().to(device=device, dtype=dtype)
    return zeros, v, b


def initial_feed_forward_state(
    p: LSNNParameters, shape: Any, device: Any = None, dtype: Any = None
) -> LSNNFeedForwardState:
    zeros, v, b = _rest(p, shape, device, dtype)
    return LSNNFeedForwardState(v=v, i=zeros, b=b)


def initial_state(
    p: LSNNParameters, shape: Any, device: Any = None, dtype: Any = None
) -> LSNNState:
    zeros, v, b = _rest(p, shape, device, dtype)
    return LSNNState(z=zeros, v=v, i=zeros, b=b)


def _adjoint_layer(
    x: torch.Tensor, state: LSNNFeedForwardState, p: LSNNParameters, dt: float
) -> Any:
    from snn_lsnn.adjoint import lsnn_adjoint_layer  # imported on first use

    return lsnn_adjoint_layer(x, state, p, dt)


def _adjoint_recurrent(
    x: torch.Tensor, state: LSNNState, p: LSNNParameters, dt: float, *w: Any
) -> Any:
    from snn_lsnn.adjoint import lsnn_adjoint_recurrent

    return lsnn_adjoint_recurrent(x, state, p, dt, *w)


LSNN_MODEL = snncore.NeuronModel(
    name="lsnn",
    family="lsnn",
    summary="LIF with an adaptive threshold (long short-term memory SNN, Bellec et al. 2018)",
    parameters=LSNNParameters,
    feed_forward_step=lsnn_feed_forward_step,
    feed_forward_state=LSNNFeedForwardState,
    initial_feed_forward_state=initial_feed_forward_state,
    recurrent_step=lsnn_recurrent_step,
    state=LSNNState,
    initial_state=initial_state,
    adjoint={"layer": _adjoint_layer, "recurrent": _adjoint_recurrent},
    equations=(
        "v1 = v + dt*tau_mem_inv*((v_leak - v) + i);  i1 = i - dt*tau_syn_inv*i;\n"
        "b1 = b + dt*tau_adapt_inv*(v_th - b);  z = H(v1 - b1);\n"
        "v' = (1 - z)*v1 + z*v_reset;  i' = i1 + x;  b' = b1 + beta*z\n"
        "(recurrent: x = W_in*x_in + W_rec*z_prev, detached z in v' and b')"
    ),
    units={"z": "spikes (0/1)", "v": "V", "i": "A (model units)", "b": "V (threshold)"},
    reference="Bellec et al., Long short-term memory and learning-to-learn in networks of "
    "spiking neurons, NeurIPS 2018",
    class_names={
        "cell": "LSNNCell",
        "recurrent_cell": "LSNNRecurrentCell",
        "layer": "LSNN",
        "recurrent": "LSNNRecurrent",
    },
)

LSNNCell, LSNNRecurrentCell, LSNN, LSNNRecurrent = snncore.module_classes(LSNN_MODEL)
