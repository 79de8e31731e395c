"""Helpers for a model's parameter class: immutable attrs records of tensors, with units.

    @attrs.frozen
    class LIFParameters:
        tau_mem_inv: torch.Tensor = tensor_field(100.0, "1/s", "inverse membrane time constant")
        method: str = method_field()
        alpha: torch.Tensor = tensor_field(100.0, "", "surrogate sharpness")

Numbers given for a tensor field become tensors (scalars or any shape that broadcasts against the
state, e.g. one value per neuron).  ``snn info`` shows each field's default and unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch


def as_parameter_tensor(value: Any) -> torch.Tensor:
    """A tensor for a parameter field: tensors pass through untouched (gradients kept)."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value, dtype=torch.get_default_dtype())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"a parameter must be a number or a tensor, got {value!r}") from exc


def tensor_field(
    default: float,
    unit: str = "",
    doc: str = "",
    validator: Callable[[Any, attrs.Attribute, Any], None] | None = None,
) -> Any:
    """An attrs field holding a tensor; every instance gets its own default tensor."""
    return attrs.field(
        factory=lambda: torch.as_tensor(default, dtype=torch.get_default_dtype()),
        converter=as_parameter_tensor,
        validator=validator,
        metadata={"unit": unit, "doc": doc, "default": default},
    )


def _surrogate_like(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    # A name, or (inside a module, which resolves names once) the snncore.Surrogate itself.
    if not (isinstance(value, str) or callable(value)):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be a surrogate name such as "
            f"'super', got {value!r}"
        )


def method_field(default: str = "super") -> Any:
    """The name of the surrogate gradient used when the model spikes."""
    return attrs.field(
        default=default,
        validator=_surrogate_like,
        metadata={
            "unit": "",
            "doc": "surrogate gradient (see `snn list-surrogates`)",
            "default": default,
            "surrogate": True,
        },
    )


def method_items(p: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted_name, value)`` of every surrogate field (a ``method_field``, or a field named
    ``method``), descending into nested records."""
    for f in attrs.fields(type(p)):
        value = getattr(p, f.name)
        if f.metadata.get("surrogate") or (
            f.name == "method" and (isinstance(value, str) or callable(value))
        ):  # a name, or the Surrogate a module resolved it to
            yield prefix + f.name, value
        elif attrs.has(type(value)):
            yield from method_items(value, prefix + f.name + ".")


def positive(instance: Any, attribute: attrs.Attribute, value: torch.Tensor) -> None:
    """Validator: every element > 0."""
    if not bool((value > 0).all()):
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be > 0, got {value}")


def describe_parameters(cls: type) -> list[dict[str, Any]]:
    """Name, default, unit and description of each field (nested parameter records flattened)."""
    rows = []
    for f in attrs.fields(cls):
        if attrs.has(f.type) if isinstance(f.type, type) else False:
            rows += [{**r, "name": f"{f.name}.{r['name']}"} for r in describe_parameters(f.type)]
            continue
        default = f.metadata.get("default", f.default)
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if attrs.has(type(default)):
            rows += [
                {**r, "name": f"{f.name}.{r['name']}"} for r in describe_parameters(type(default))
            ]
            continue
        if isinstance(default, torch.Tensor):
            default = default.tolist()
        rows.append(
            {
                "name": f.name,
                "default": default,
                "unit": f.metadata.get("unit", ""),
                "doc": f.metadata.get("doc", ""),
            }
        )
    return rows


def tensor_items(p: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """``(dotted_name, tensor)`` for every tensor field, descending into nested records."""
    for f in attrs.fields(type(p)):
        value = getattr(p, f.name)
        if isinstance(value, torch.Tensor):
            yield prefix + f.name, value
        elif attrs.has(type(value)):
            yield from tensor_items(value, prefix + f.name + ".")


def replace_tensors(p: Any, tensors: dict[str, Any]) -> Any:
    """A copy of ``p`` with the fields named (dotted for nested records) replaced."""
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        head, dot, rest = name.partition(".")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            changes[head] = value
    for head, inner in nested.items():
        changes[head] = replace_tensors(getattr(p, head), inner)
    return attrs.evolve(p, **changes)
