"""Recurrent LIF neurons with correlation sensors on their synapses.

One step: the recurrent LIF step of ``snn_lif`` (input current ``W_in·x + W_rec·z_prev`` jumps
into ``i``; the reset uses the detached spike), then two correlation sensors
(:mod:`snn_correlation.sensor`) see the new spikes ``z`` as postsynaptic events:

- the input sensor, array ``(*batch, input, hidden)``, with the input spikes ``x`` as
  presynaptic events;
- the recurrent sensor, array ``(*batch, hidden, hidden)``, with the previous spikes ``z_prev``.

Two ways to run it:

``LIFCorrelation(input_size, hidden_size, p, dt)``
    The reference's module: ``forward(input, input_weights, recurrent_weights, state)`` with the
    weights passed in on every call (they change during learning), both sensors.

``snncore.create("lif_correlation", variant="recurrent_cell" | "recurrent")``
    The registered model.  The core's recurrent modules own ``input_weights`` and
    ``recurrent_weights`` and hand the step only the summed current ``W_in·x + W_rec·z_prev``,
    never ``x`` itself; a sensor on the input synapses needs ``x``, so these variants carry the
    recurrent sensor only (parameters :class:`LIFRecurrentCorrelationParameters`, state
    :class:`LIFRecurrentCorrelationState`).  Their LIF part and recurrent sensor are the very
    step of ``LIFCorrelation``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch
from snn_lif.lif import LIFParameters, LIFState, lif_recurrent_step
from snn_lif.lif import initial_state as lif_initial_state

import snncore
from snn_correlation.sensor import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    correlation_sensor_step,
    initial_sensor_state,
)
from snncore.parameters import ParameterRecord, replace_tensors, tensor_items

_is_sensor_parameters = attrs.validators.instance_of(CorrelationSensorParameters)


@attrs.frozen
class LIFCorrelationParameters(ParameterRecord):
    """LIF parameters and the parameters of the input and the recurrent sensor."""

    lif_parameters: LIFParameters = attrs.field(
        factory=LIFParameters, validator=attrs.validators.instance_of(LIFParameters)
    )
    input_correlation_parameters: CorrelationSensorParameters = attrs.field(
        factory=CorrelationSensorParameters, validator=_is_sensor_parameters
    )
    recurrent_correlation_parameters: CorrelationSensorParameters = attrs.field(
        factory=CorrelationSensorParameters, validator=_is_sensor_parameters
    )


class LIFCorrelationState(NamedTuple):
    """LIF state ``(z, v, i)`` and the two sensor states."""

    lif_state: LIFState
    input_correlation_state: CorrelationSensorState
    recurrent_correlation_state: CorrelationSensorState


@attrs.frozen
class LIFRecurrentCorrelationParameters(ParameterRecord):
    """Parameters of the registered ``lif_correlation`` model: LIF and the recurrent sensor."""

    lif_parameters: LIFParameters = attrs.field(
        factory=LIFParameters, validator=attrs.validators.instance_of(LIFParameters)
    )
    recurrent_correlation_parameters: CorrelationSensorParameters = attrs.field(
        factory=CorrelationSensorParameters, validator=_is_sensor_parameters
    )


class LIFRecurrentCorrelationState(NamedTuple):
    """State of the registered model: LIF state and the recurrent sensor's state."""

    lif_state: LIFState
    recurrent_correlation_state: CorrelationSensorState


def lif_correlation_step(
    input_tensor: torch.Tensor,
    state: LIFCorrelationState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFCorrelationParameters = LIFCorrelationParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFCorrelationState]:
    """One step of ``LIFCorrelation`` (the reference's functional signature).

    ``input_tensor`` is ``(*batch, input)``, the weights ``(hidden, input)`` and
    ``(hidden, hidden)``; the LIF state ``(*batch, hidden)`` and the sensors
    ``(*batch, input, hidden)`` and ``(*batch, hidden, hidden)``.
    """
    _check_lif_state(input_tensor, state, recurrent_weights)
    lif = state.lif_state
    current = torch.nn.functional.linear(input_tensor, input_weights) + torch.nn.functional.linear(
        lif.z, recurrent_weights
    )
    z, lif_new = lif_recurrent_step(current, lif, p.lif_parameters, dt)
    input_sensor = correlation_sensor_step(
        input_tensor, z, state.input_correlation_state, p.input_correlation_parameters, dt
    )
    recurrent_sensor = correlation_sensor_step(
        lif.z, z, state.recurrent_correlation_state, p.recurrent_correlation_parameters, dt
    )
    return z, LIFCorrelationState(lif_new, input_sensor, recurrent_sensor)


def _check_lif_state(
    input_tensor: torch.Tensor, state: Any, recurrent_weights: torch.Tensor
) -> None:
    """The LIF part of a ``LIFCorrelationState`` must fit the input's batch and the weights
    (the sensors check themselves in :func:`correlation_sensor_step`)."""
    if not isinstance(getattr(state, "lif_state", None), tuple) or not hasattr(
        state, "input_correlation_state"
    ):
        raise TypeError(
            f"LIFCorrelation: state must be a LIFCorrelationState, got {type(state).__name__}"
        )
    expected = (*input_tensor.shape[:-1], recurrent_weights.shape[0])
    lif = state.lif_state
    if tuple(lif.z.shape) != expected:
        raise ValueError(
            f"LIFCorrelation: the state's spikes z must have shape (*batch, hidden) = "
            f"{expected} for input {tuple(input_tensor.shape)}, got {tuple(lif.z.shape)}"
        )
    for name in ("v", "i"):  # broadcast to z's shape (the reference starts with v = v_leak, 0-d)
        shape = tuple(getattr(lif, name).shape)
        fits = len(shape) <= len(expected) and all(
            a in (1, b) for a, b in zip(reversed(shape), reversed(expected), strict=False)
        )
        if not fits:
            raise ValueError(
                f"LIFCorrelation: the state's {name} of shape {shape} does not fit "
                f"the neurons' shape {expected}"
            )


def lif_recurrent_correlation_step(
    input_current: torch.Tensor,
    state: LIFRecurrentCorrelationState,
    p: LIFRecurrentCorrelationParameters = LIFRecurrentCorrelationParameters(),
    dt: float = 0.001,
) -> tuple[torch.Tensor, LIFRecurrentCorrelationState]:
    """The registered model's step: ``input_current = W_in·x + W_rec·z_prev`` (from the core)."""
    lif = state.lif_state
    z, lif_new = lif_recurrent_step(input_current, lif, p.lif_parameters, dt)
    sensor = correlation_sensor_step(
        lif.z, z, state.recurrent_correlation_state, p.recurrent_correlation_parameters, dt
    )
    return z, LIFRecurrentCorrelationState(lif_new, sensor)


def initial_correlation_state(
    p: LIFCorrelationParameters,
    batch_size: int,
    input_size: int,
    hidden_size: int,
    device: Any = None,
    dtype: Any = None,
) -> LIFCorrelationState:
    """``z = 0``, ``v = v_leak``, ``i = 0``; both sensors empty."""
    lif = lif_initial_state(p.lif_parameters, (batch_size, hidden_size), device, dtype)
    return LIFCorrelationState(
        lif,
        initial_sensor_state((batch_size, input_size, hidden_size), device, dtype),
        initial_sensor_state((batch_size, hidden_size, hidden_size), device, dtype),
    )


def initial_state(
    p: LIFRecurrentCorrelationParameters, shape: Any, device: Any = None, dtype: Any = None
) -> LIFRecurrentCorrelationState:
    """For neurons of ``shape = (*batch, hidden)``: LIF at rest, recurrent sensor empty."""
    shape = tuple(shape)
    lif = lif_initial_state(p.lif_parameters, shape, device, dtype)
    sensor = initial_sensor_state((*shape, shape[-1]), device, dtype)
    return LIFRecurrentCorrelationState(lif, sensor)


def _last_spikes(state: LIFRecurrentCorrelationState) -> torch.Tensor:
    return state.lif_state.z


LIF_CORRELATION_MODEL = snncore.NeuronModel(
    name="lif_correlation",
    family="correlation",
    summary="recurrent LIF with a correlation sensor on its recurrent synapses",
    parameters=LIFRecurrentCorrelationParameters,
    recurrent_step=lif_recurrent_correlation_step,
    state=LIFRecurrentCorrelationState,
    initial_state=initial_state,
    last_spikes=_last_spikes,
    equations=(
        "LIF (recurrent): i1 = i + W_in*x + W_rec*z_prev;  v1 = v + dt*tau_mem_inv*((v_leak - v)"
        " + i1);  i' = i1 - dt*tau_syn_inv*i1;  z = H(v1 - v_th);  v' = (1 - sg(z))*v1 + "
        "sg(z)*v_reset\n"
        "sensor on W_rec (pre = z_prev, post = z), per synapse: C1 = C - (1 - pp)*dt*tau_c_inv*C;"
        "  A1 = A - pp*dt*tau_ac_inv*A;\n"
        "  pp' = H(pp + post - pre);  C' = C1 + eta_p*pre;  A' = A1 + eta_m*post\n"
        "(the input-synapse sensor needs the raw input: snn_correlation.LIFCorrelation)"
    ),
    units={
        "lif_state": "z spikes (0/1), v V, i A (model units)",
        "recurrent_correlation_state": "post_pre (0/1), traces (counts), (batch, hidden, hidden)",
    },
    reference="Friedmann et al., IEEE Trans. Biomed. Circuits Syst. 11(1) 2017 (sensor)",
    class_names={
        "recurrent_cell": "LIFRecurrentCorrelationCell",
        "recurrent": "LIFRecurrentCorrelation",
    },
)

LIFRecurrentCorrelationCell, LIFRecurrentCorrelation = snncore.module_classes(LIF_CORRELATION_MODEL)


def _check_tensor(name: str, value: Any, shape: tuple[int, ...], dtype: Any = None) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"LIFCorrelation: {name} must be a tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(
            f"LIFCorrelation: {name} must be floating point, got {value.dtype} (use .float())"
        )
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"LIFCorrelation: {name} is {value.dtype} but the input is {dtype}")
    if tuple(value.shape) != shape:
        raise ValueError(
            f"LIFCorrelation: {name} must have shape {shape}, got {tuple(value.shape)}"
        )


class LIFCorrelation(torch.nn.Module):
    """Recurrent LIF with correlation sensors on the input and the recurrent synapses.

    The reference's module: it owns no weights; ``forward(input, input_weights,
    recurrent_weights, state=None)`` takes ``input (batch, input_size)`` spikes, weights of
    shape ``(hidden, input)`` and ``(hidden, hidden)``, and returns ``(z, LIFCorrelationState)``
    after one step.  ``state=None`` starts at rest with empty sensors.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFCorrelationParameters = LIFCorrelationParameters(),
        dt: float = 0.001,
    ):
        super().__init__()
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                raise ValueError(f"{name} must be a positive integer, got {size!r}")
        if not isinstance(p, LIFCorrelationParameters):
            raise TypeError(f"p must be LIFCorrelationParameters, got {type(p).__name__}")
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        snncore.get_surrogate(p.lif_parameters.method)  # an unknown surrogate fails here
        self.input_size, self.hidden_size, self.p, self.dt = input_size, hidden_size, p, float(dt)
        self._moved: tuple[Any, Any, LIFCorrelationParameters] | None = None

    def _parameters_for(self, device: Any, dtype: Any) -> LIFCorrelationParameters:
        """``self.p`` with its tensors on ``device``/``dtype``; cached, as ``p`` is immutable
        (not when a tensor requires grad: an optimiser changes those in place, and a cached
        converted copy would not follow)."""
        key = (device, dtype)
        if self._moved is not None and self._moved[0] is self.p and self._moved[1] == key:
            return self._moved[2]
        tensors = dict(tensor_items(self.p))
        moved = replace_tensors(
            self.p, {k: v.to(device=device, dtype=dtype) for k, v in tensors.items()}
        )
        if not any(v.requires_grad for v in tensors.values()):
            self._moved = (self.p, key, moved)
        return moved

    def forward(
        self,
        input_tensor: torch.Tensor,
        input_weights: torch.Tensor,
        recurrent_weights: torch.Tensor,
        state: LIFCorrelationState | None = None,
    ) -> tuple[torch.Tensor, LIFCorrelationState]:
        if not isinstance(input_tensor, torch.Tensor) or input_tensor.dim() != 2:
            raise ValueError(
                "LIFCorrelation expects input of shape (batch, input_size="
                f"{self.input_size}), got {getattr(input_tensor, 'shape', input_tensor)!r}"
            )
        _check_tensor("input", input_tensor, (input_tensor.shape[0], self.input_size))
        device, dtype = input_tensor.device, input_tensor.dtype
        _check_tensor("input_weights", input_weights, (self.hidden_size, self.input_size), dtype)
        _check_tensor(
            "recurrent_weights", recurrent_weights, (self.hidden_size, self.hidden_size), dtype
        )
        p = self._parameters_for(device, dtype)
        if state is None:
            state = initial_correlation_state(
                p, input_tensor.shape[0], self.input_size, self.hidden_size, device, dtype
            )
        return lif_correlation_step(
            input_tensor, state, input_weights, recurrent_weights, p, self.dt
        )

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, dt={self.dt}"
