"""State records: building a model's default initial state, stacking states over time.

A model's states are ``NamedTuple``s of tensors.  When a model names no initial-state function,
the core builds one from the state's fields: every field starts at zero, except those the model
maps in ``initial_values`` to a parameter (``{"v": "v_leak"}``: the voltage starts at each
neuron's leak potential) or to a number (``{"w": 0.1}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def state_fields(state_class: type) -> tuple[str, ...]:
    """The field names of a ``NamedTuple`` state class (empty for anything else)."""
    fields = getattr(state_class, "_fields", None)
    return tuple(fields) if isinstance(fields, tuple) else ()


def parameter_value(p: Any, dotted: str) -> Any:
    """``p.a.b`` for ``"a.b"``: a (possibly nested) field of a parameter record."""
    value = p
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def default_initial_state(
    state_class: type,
    initial_values: Mapping[str, str | float],
    p: Any,
    shape: Any,
    device: Any = None,
    dtype: Any = None,
) -> Any:
    """A ``state_class`` for neurons of ``shape``: zeros, or the start value named per field.

    A parameter's value is detached (the initial state is where a sequence starts, not a path
    for the parameter's gradient) and broadcast to ``shape``, so per-neuron parameters give
    per-neuron start values.
    """
    zeros = torch.zeros(shape, device=device, dtype=dtype)
    values = []
    for field in state_fields(state_class):
        start = initial_values.get(field)
        if start is None:
            values.append(zeros)
        elif isinstance(start, str):
            value = torch.as_tensor(parameter_value(p, start)).detach()
            values.append(zeros + value.to(device=zeros.device, dtype=zeros.dtype))
        else:
            values.append(torch.full_like(zeros, float(start)))
    return state_class(*values)


def stack_states(states: list[Any]) -> Any:
    """Per-step state records -> one record of time-stacked tensors (nested records too)."""
    first = states[0]
    return type(first)(*(_stack_field([s[k] for s in states]) for k in range(len(first))))


def _stack_field(values: list[Any]) -> Any:
    if isinstance(values[0], torch.Tensor):
        return torch.stack(values)
    if isinstance(values[0], tuple) and hasattr(values[0], "_fields"):
        return stack_states(values)
    return values
