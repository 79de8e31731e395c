"""Correlation sensor: an idealised version of the synapse-array sensor on BrainScaleS-2.

Every synapse (pre ``i``, post ``j``) of an array holds three values: ``post_pre`` (1 when the
last event at that synapse was a postsynaptic spike), a correlation trace ``C`` that grows with
presynaptic spikes and an anti-correlation trace ``A`` that grows with postsynaptic spikes.  With
the masks ``pre_mask[i, j] = z_pre[i]`` and ``post_mask[i, j] = z_post[j]``, one Euler step is

    C1 = C − (1 − post_pre)·dt·tau_c_inv·C        C decays while the last event was a pre spike
    A1 = A − post_pre·dt·tau_ac_inv·A             A decays while the last event was a post spike
    post_pre' = H(post_pre + post_mask − pre_mask)
    C' = C1 + eta_p·pre_mask
    A' = A1 + eta_m·post_mask

State tensors have shape ``(*batch, pre, post)``; ``z_pre`` is ``(*batch, pre)`` and ``z_post``
``(*batch, post)``.  ``H`` is the Heaviside step (``H(0) = 0``) and carries no gradient; gradients
of ``z_post`` reach ``A`` through ``eta_m·post_mask``, as in the reference.

Deliberate difference: the reference (norse 1.1.0) broadcasts the spike vectors against the
array without inserting the pre/post axes, which is only right for a batch of one: a larger
batch fails unless ``batch == pre == post``, and is then silently wrong (entry ``b``'s mask at
synapse ``(i, j)`` is the spike of neuron ``i`` in batch entry ``j``).  Here each batch entry
gets its own masks; for batch 1 the numbers are the reference's.

Friedmann et al., "Demonstrating hybrid learning in a flexible neuromorphic hardware system",
IEEE Trans. Biomed. Circuits Syst. 11(1), 2017.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import torch

from snncore import tensor_field
from snncore.parameters import ParameterRecord, finite, positive_finite


@attrs.frozen
class CorrelationSensorParameters(ParameterRecord):
    """Parameters of a correlation sensor; each a scalar or a tensor broadcasting to the array."""

    eta_p: torch.Tensor = tensor_field(
        1.0, "", "increment of C per presynaptic spike", validator=finite
    )
    eta_m: torch.Tensor = tensor_field(
        1.0, "", "increment of A per postsynaptic spike", validator=finite
    )
    tau_ac_inv: torch.Tensor = tensor_field(
        10.0,
        "1/s",
        "inverse time constant of the anti-correlation trace A",
        validator=positive_finite,
    )
    tau_c_inv: torch.Tensor = tensor_field(
        10.0, "1/s", "inverse time constant of the correlation trace C", validator=positive_finite
    )


class CorrelationSensorState(NamedTuple):
    """Per synapse ``(*batch, pre, post)``: last-event flag and the two traces."""

    post_pre: torch.Tensor
    correlation_trace: torch.Tensor
    anti_correlation_trace: torch.Tensor


def correlation_sensor_step(
    z_pre: torch.Tensor,
    z_post: torch.Tensor,
    state: CorrelationSensorState,
    p: CorrelationSensorParameters = CorrelationSensorParameters(),
    dt: float = 0.001,
) -> CorrelationSensorState:
    """One Euler step of the sensor for presynaptic ``z_pre`` and postsynaptic ``z_post``.

    ``state`` tensors are ``(*batch, pre, post)``, ``z_pre`` must be ``(*batch, pre)`` and
    ``z_post`` ``(*batch, post)``; anything else is a ``ValueError`` naming the shapes.
    """
    _check_sensor_inputs(z_pre, z_post, state)
    post_pre = state.post_pre
    correlation = state.correlation_trace + (1 - post_pre) * (
        dt * p.tau_c_inv * (-state.correlation_trace)
    )
    anti_correlation = state.anti_correlation_trace + post_pre * (
        dt * p.tau_ac_inv * (-state.anti_correlation_trace)
    )
    pre_mask = z_pre.unsqueeze(-1)  # (*batch, pre, 1): row i carries z_pre[i]
    post_mask = z_post.unsqueeze(-2)  # (*batch, 1, post): column j carries z_post[j]
    flag = post_pre + post_mask - pre_mask
    return CorrelationSensorState(
        post_pre=torch.gt(flag, 0).to(flag.dtype).detach(),
        correlation_trace=correlation + p.eta_p * pre_mask,
        anti_correlation_trace=anti_correlation + p.eta_m * post_mask,
    )


def _check_sensor_inputs(z_pre: Any, z_post: Any, state: Any) -> None:
    """Shapes and dtypes of one sensor step; cheap (no tensor values are read)."""
    fields = CorrelationSensorState._fields
    if not all(isinstance(getattr(state, f, None), torch.Tensor) for f in fields):
        raise TypeError(
            "correlation_sensor_step: state must be a CorrelationSensorState of tensors "
            f"{fields}, got {type(state).__name__}"
        )
    shape = tuple(state.post_pre.shape)
    for f in fields:
        value = getattr(state, f)
        if tuple(value.shape) != shape or value.dim() < 2 or not value.is_floating_point():
            raise ValueError(
                "correlation_sensor_step: the state's tensors must be floating point and share "
                f"one shape (*batch, pre, post); got {f} of {value.dtype} {tuple(value.shape)} "
                f"(post_pre {tuple(shape)})"
            )
    expected = {"z_pre": shape[:-1], "z_post": (*shape[:-2], shape[-1])}
    for name, value in (("z_pre", z_pre), ("z_post", z_post)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(
                f"correlation_sensor_step: {name} must be a floating-point tensor of spikes, "
                f"got {getattr(value, 'dtype', type(value).__name__)}"
            )
        if tuple(value.shape) != expected[name]:
            what = "(*batch, pre)" if name == "z_pre" else "(*batch, post)"
            raise ValueError(
                f"correlation_sensor_step: {name} must have shape {what} = {expected[name]} "
                f"for a sensor state of shape (*batch, pre, post) = {shape}, got "
                f"{tuple(value.shape)}"
            )


def initial_sensor_state(
    shape: Any, device: Any = None, dtype: Any = None
) -> CorrelationSensorState:
    """Zeros of ``shape = (*batch, pre, post)``: no event yet, empty traces."""
    zeros = torch.zeros(tuple(shape), device=device, dtype=dtype)
    return CorrelationSensorState(zeros, zeros.clone(), zeros.clone())


def _check_every(step: int, every: int) -> None:
    if not (isinstance(every, int) and not isinstance(every, bool) and every > 0):
        raise ValueError(f"the update interval must be a positive integer, got {every!r}")
    if not isinstance(step, int) or isinstance(step, bool):
        raise TypeError(f"the step index must be an int, got {type(step).__name__}")


def correlation_weight_update(
    step: int,
    update: torch.nn.Module,
    weights: torch.Tensor,
    state: CorrelationSensorState,
    learning_rate: float,
    every: int,
) -> tuple[torch.Tensor, CorrelationSensorState]:
    """Every ``every`` steps (when ``step % every == 0``), a weight change from the traces.

    ``update`` maps ``[C.flatten(), A.flatten()]`` (length ``2·pre·post``, per batch entry, as
    a ``(batch, 2·pre·post)`` tensor) to a weight change of ``pre·post`` values; its output is
    detached, averaged over the batch and reshaped to ``weights``' shape ``(post, pre)`` (hidden ×
    input, like ``input_weights``): ``weights' = weights + learning_rate·dw``.  Both traces
    are then reset to zero (``post_pre`` is kept).  Returns ``(weights, state)``; on other steps
    both come back unchanged.  Pure: nothing is modified in place.
    """
    _check_every(step, every)
    if step % every != 0:
        return weights, state
    pre, post = state.correlation_trace.shape[-2:]
    if tuple(weights.shape) != (post, pre):
        raise ValueError(
            f"weights must have shape (post, pre) = ({post}, {pre}) (hidden × input, like "
            f"input_weights) for a sensor of shape (*batch, pre, post) = "
            f"{tuple(state.correlation_trace.shape)}, got {tuple(weights.shape)}"
        )
    traces = torch.cat(
        (
            state.correlation_trace.reshape(-1, pre * post),
            state.anti_correlation_trace.reshape(-1, pre * post),
        ),
        dim=-1,
    )
    out = update(traces).detach()
    if out.numel() != traces.shape[0] * pre * post:
        raise ValueError(
            f"the update module must map each entry's {2 * pre * post} trace values to "
            f"{pre * post} weight changes; it returned {tuple(out.shape)} for input "
            f"{tuple(traces.shape)}"
        )
    dw = out.reshape(traces.shape[0], pre * post).mean(dim=0)
    new_weights = weights + learning_rate * dw.reshape(post, pre)
    reset = state._replace(
        correlation_trace=torch.zeros_like(state.correlation_trace),
        anti_correlation_trace=torch.zeros_like(state.anti_correlation_trace),
    )
    return new_weights, reset


def correlation_based_update(
    ts: int,
    linear_update: torch.nn.Module,
    weights: torch.Tensor,
    correlation_state: CorrelationSensorState,
    learning_rate: float,
    ts_frequency: int,
) -> torch.Tensor:
    """The reference's helper, for ported code: returns the new weights and, on update steps,
    zeroes the state's two traces **in place** (as the reference does).  New code should use
    :func:`correlation_weight_update`, which returns the reset state instead."""
    new_weights, _ = correlation_weight_update(
        ts, linear_update, weights, correlation_state, learning_rate, ts_frequency
    )
    if ts % ts_frequency == 0:
        correlation_state.correlation_trace.zero_()
        correlation_state.anti_correlation_trace.zero_()
    return new_weights
