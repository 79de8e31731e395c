"""Eager backend: calls the model's step function once per time step, in PyTorch.

Runs every model, variant, device and floating dtype.  The loop walks ``x.unbind(0)`` rather than
indexing ``x[t]``: the backward of each index op fills a zero tensor as large as all of ``x``,
which makes back-propagation through T steps cost O(T²); ``unbind`` has one backward for the
whole sequence.  A model may supply ``feed_forward_sequence`` (all steps in one call, with its
own backward); it is used when states are not recorded and the model accepts.  For recurrent
layers ``W_in·x`` is one matrix product over all steps before the loop (or the model's
``synaptic_input(x, W_in)``, likewise over all steps).  Outputs are collected in a list and
stacked once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from snncore.protocols import NeuronModel


def _stack_states(states: list[Any]) -> Any:
    """A list of per-step state records -> one record of time-stacked tensors."""
    first = states[0]
    return type(first)(*(_stack_field([s[k] for s in states]) for k in range(len(first))))


def _stack_field(values: list[Any]) -> Any:
    if isinstance(values[0], torch.Tensor):
        return torch.stack(values)
    if isinstance(values[0], tuple) and hasattr(values[0], "_fields"):
        return _stack_states(values)
    return values


class TorchBackend:
    """Eager PyTorch: every model, CPU and CUDA, float16/bfloat16/float32/float64."""

    name = "torch"
    priority = 0
    summary = "eager PyTorch time loop; runs every model on any device"

    def supports(
        self, model: NeuronModel, variant: str, device: Any = None, dtype: Any = None
    ) -> str | None:
        if variant not in model.variants:
            return f"model {model.name!r} has no {variant!r} variant"
        if dtype is not None and not dtype.is_floating_point:
            return f"dtype {dtype} is not floating point"
        return None

    def run_layer(
        self,
        model: NeuronModel,
        x: torch.Tensor,
        state: Any,
        p: Any,
        dt: float,
        record_states: bool,
    ) -> tuple[torch.Tensor, Any]:
        if model.feed_forward_sequence is not None and not record_states:
            result = model.feed_forward_sequence(x, state, p, dt)
            if result is not None:
                return result
        step = model.feed_forward_step
        outputs, states = [], []
        for x_t in x.unbind(0):
            out, state = step(x_t, state, p, dt)
            outputs.append(out)
            if record_states:
                states.append(state)
        return torch.stack(outputs), (_stack_states(states) if record_states else state)

    def run_recurrent(
        self,
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
        step, last_spikes = model.recurrent_step, model.last_spikes
        weigh = model.synaptic_input or torch.nn.functional.linear
        input_currents = weigh(x, input_weights)
        outputs, states = [], []
        for current_t in input_currents.unbind(0):
            current = current_t + weigh(last_spikes(state), recurrent_weights)
            out, state = step(current, state, p, dt, **module_tensors)
            outputs.append(out)
            if record_states:
                states.append(state)
        return torch.stack(outputs), (_stack_states(states) if record_states else state)
