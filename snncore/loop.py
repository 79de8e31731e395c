"""The eager time loop: the one place that runs a model's step over the time axis.

Every backend that runs a model step by step uses these functions (the ``torch`` backend for
everything, the ``fused`` backend for the calls its kernels decline, and its compiled generic
path with a compiled step), so the loop's rules are written once:

- ``x.unbind(0)``, not ``x[t]``: the backward of each index op fills a zero tensor as large as
  all of ``x``, which makes back-propagation through T steps cost O(T²); ``unbind`` has one
  backward for the whole sequence.
- Outputs are collected in a list and stacked once; with ``record_states`` so are the states
  (``(T, ...)`` per field), else the final state is returned.
- Recurrent layers compute the input term ``W_in·x`` (or the model's ``synaptic_input(x,
  W_in)``) for all steps in one matrix product before the loop; each step adds the recurrent
  term from the previous state's spikes (``model.last_spikes(state)``).
- A model's ``feed_forward_sequence`` (all steps in one call, with its own backward) is used
  for feed-forward layers whose states are not recorded, when it accepts the call.
- ``T = 0`` never reaches a step loop (stacking nothing fails): the modules answer it with
  :func:`no_steps`, the same for every model and backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from snncore.protocols import NeuronModel
from snncore.states import stack_states

#: ``recurrent_step_function(model)``'s signature: ``(current_t, state, p, dt,
#: recurrent_weights, module_tensors) -> (out, state)``.
RecurrentStep = Callable[..., tuple[Any, Any]]


def layer_loop(
    step: Callable[..., tuple[Any, Any]],
    x: torch.Tensor,
    state: Any,
    p: Any,
    dt: float,
    record_states: bool,
) -> tuple[torch.Tensor, Any]:
    """``step(x_t, state, p, dt)`` for every ``x_t`` of ``x`` (time-major)."""
    outputs, states = [], []
    for x_t in x.unbind(0):
        out, state = step(x_t, state, p, dt)
        outputs.append(out)
        if record_states:
            states.append(state)
    return torch.stack(outputs), (stack_states(states) if record_states else state)


def recurrent_step_function(model: NeuronModel) -> RecurrentStep:
    """One recurrent step including the recurrent weighting ``W_rec·z_prev``, as one function
    (a backend may compile it)."""
    step, last_spikes = model.recurrent_step, model.last_spikes
    weigh = model.synaptic_input or torch.nn.functional.linear

    def recurrent_step(
        current_t: torch.Tensor,
        state: Any,
        p: Any,
        dt: float,
        recurrent_weights: torch.Tensor,
        module_tensors: Mapping[str, torch.Tensor],
    ) -> tuple[Any, Any]:
        current = current_t + weigh(last_spikes(state), recurrent_weights)
        return step(current, state, p, dt, **module_tensors)

    return recurrent_step


def recurrent_loop(
    step: RecurrentStep,
    model: NeuronModel,
    x: torch.Tensor,
    state: Any,
    p: Any,
    dt: float,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    module_tensors: Mapping[str, torch.Tensor],
    record_states: bool,
) -> tuple[torch.Tensor, Any]:
    """``W_in·x`` for all steps at once, then ``step`` (see :func:`recurrent_step_function`)
    once per time step."""
    weigh = model.synaptic_input or torch.nn.functional.linear
    input_currents = weigh(x, input_weights)
    outputs, states = [], []
    for current_t in input_currents.unbind(0):
        out, state = step(current_t, state, p, dt, recurrent_weights, module_tensors)
        outputs.append(out)
        if record_states:
            states.append(state)
    return torch.stack(outputs), (stack_states(states) if record_states else state)


def _empty_sequence(value: Any) -> Any:
    """``(0, *shape)`` for every tensor of ``value`` (a tensor or a state record, nested)."""
    if isinstance(value, torch.Tensor):
        return value.unsqueeze(0)[:0]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_empty_sequence(v) for v in value))
    return value


def no_steps(
    out: torch.Tensor, stepped: Any, state: Any, record_states: bool
) -> tuple[torch.Tensor, Any]:
    """A run over ``T = 0`` steps: ``(0, *out.shape)`` outputs and the incoming ``state``
    unchanged (with ``record_states``: every field as a ``(0, ...)`` sequence).

    ``out, stepped`` are one step's output and state, computed only for their shapes and
    dtypes, which a model may choose freely (a step may widen or narrow its output), so they
    are taken from the step itself rather than guessed.  Slicing them keeps the empty results
    in the autograd graph of the step's inputs, as a real run's would be.
    """
    return _empty_sequence(out), (_empty_sequence(stepped) if record_states else state)


def layer_route(model: NeuronModel, record_states: bool | None = None) -> tuple[str, str]:
    """``(route, reason)`` of :func:`run_layer` for ``model``: ``sequence`` or ``step-loop``."""
    if model.feed_forward_sequence is None:
        return "step-loop", f"the model's step over time ({_name(model.feed_forward_step)})"
    if record_states:
        return "step-loop", "record_states=True needs every step's state"
    return (
        "sequence",
        f"the model's whole-sequence function ({_name(model.feed_forward_sequence)}), which "
        "may decline a call (then the step loop); the step loop when states are recorded",
    )


def run_layer(
    model: NeuronModel, x: torch.Tensor, state: Any, p: Any, dt: float, record_states: bool
) -> tuple[torch.Tensor, Any]:
    """A feed-forward layer, eagerly: the model's whole-sequence function when it has one and
    accepts the call, else its step over time."""
    if model.feed_forward_sequence is not None and not record_states:
        result = model.feed_forward_sequence(x, state, p, dt)
        if result is not None:
            return result
    return layer_loop(model.feed_forward_step, x, state, p, dt, record_states)


def run_recurrent(model: NeuronModel, *args: Any) -> tuple[torch.Tensor, Any]:
    """A recurrent layer, eagerly: ``args`` are those of :func:`recurrent_loop` after the model
    (``x, state, p, dt, input_weights, recurrent_weights, module_tensors, record_states``)."""
    return recurrent_loop(recurrent_step_function(model), model, *args)


def _name(function: Any) -> str:
    return getattr(function, "__qualname__", None) or type(function).__name__
