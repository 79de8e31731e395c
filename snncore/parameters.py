"""Helpers for a model's parameter class: immutable attrs records of tensors, with units.

    @attrs.frozen
    class LIFParameters:
        tau_mem_inv: torch.Tensor = tensor_field(100.0, "1/s", "inverse membrane time constant")
        method: str = method_field()
        alpha: torch.Tensor = tensor_field(100.0, "", "surrogate sharpness")

Numbers given for a tensor field become tensors (scalars or any shape that broadcasts against the
state, e.g. one value per neuron).  ``snn info`` shows each field's default and unit.

Validators (``tensor_field(..., validator=positive_finite)``) refuse a value when the record is
made, naming the field and the offending value: a NaN, an infinite value or a non-positive
inverse time constant would otherwise run silently and produce NaN or nonsense spikes many steps
later.  A module checks its parameters once, when it is built; the record it rebuilds on every
forward from its own tensors is not validated again (:func:`replace_tensors` with
``validate=False``; a check would cost a device synchronisation per field per call), except the
learnable fields (:func:`validate_fields`), whose values training may move out of range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import torch


class _Fields:
    """``cls._fields`` and ``p._fields``: the attrs field names, in order (as a NamedTuple's)."""

    def __get__(self, instance: Any, owner: type) -> tuple[str, ...]:
        return tuple(f.name for f in attrs.fields(owner))


class ParameterRecord:
    """The NamedTuple protocol for an attrs parameter record: ``_fields``, ``_replace``,
    ``_asdict``, ``len``, indexing, iteration and unpacking (``tau_syn_inv, *rest = p``).

    Parameter records are attrs classes (validators, units, per-field documentation), but code
    written for the reference library treats them as NamedTuples; inheriting this makes both
    work.  Equality and hashing stay attrs'.
    """

    __slots__ = ()
    _fields = _Fields()

    def _replace(self, **changes: Any) -> Any:
        """A copy with the named fields replaced (validated, like the constructor)."""
        return attrs.evolve(self, **changes)  # type: ignore[misc]

    def _asdict(self) -> dict[str, Any]:
        """``{field: value}`` in field order (nested records stay records)."""
        return {name: getattr(self, name) for name in self._fields}

    def __iter__(self) -> Iterator[Any]:
        return (getattr(self, name) for name in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, index: int | slice) -> Any:
        return tuple(self)[index]


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


def _number(value: torch.Tensor) -> str:
    """The shortest text that gives ``value`` back in its dtype (``-0.2``, not float32's
    ``-0.20000000298023224``)."""
    number = float(value.item())
    text = repr(number)
    if value.is_floating_point() and value.dtype != torch.float64 and math.isfinite(number):
        for digits in range(1, 18):
            text = f"{number:.{digits}g}"
            if torch.tensor(float(text), dtype=value.dtype).item() == number:
                break
        if not any(c in text for c in ".en"):
            text += ".0"
    return text


def _refuse(
    instance: Any, attribute: attrs.Attribute, value: torch.Tensor, ok: Any, rule: str
) -> None:
    """Raise naming the field, the rule and the first value that breaks it (and its index)."""
    ok = torch.as_tensor(ok)
    if bool(ok.all()):
        return
    bad = value.detach()
    if bad.dim() == 0:
        shown = _number(bad)
    else:
        index = tuple(int(k) for k in torch.nonzero(~ok.expand(bad.shape))[0])
        shown = f"{_number(bad[index])} at index {index} (of a tensor of shape {tuple(bad.shape)})"
    raise ValueError(f"{type(instance).__name__}.{attribute.name} must be {rule}, got {shown}")


def positive(instance: Any, attribute: attrs.Attribute, value: torch.Tensor) -> None:
    """Validator: every element > 0 (NaN is refused too)."""
    _refuse(instance, attribute, value, value > 0, "> 0")


def finite(instance: Any, attribute: attrs.Attribute, value: torch.Tensor) -> None:
    """Validator: every element finite (no NaN, no ±inf)."""
    _refuse(instance, attribute, value, torch.isfinite(value), "finite")


def positive_finite(instance: Any, attribute: attrs.Attribute, value: torch.Tensor) -> None:
    """Validator: every element > 0 and finite (inverse time constants, rates)."""
    _refuse(instance, attribute, value, (value > 0) & torch.isfinite(value), "> 0 and finite")


def non_negative_finite(instance: Any, attribute: attrs.Attribute, value: torch.Tensor) -> None:
    """Validator: every element >= 0 and finite (a surrogate's sharpness ``alpha``)."""
    _refuse(instance, attribute, value, (value >= 0) & torch.isfinite(value), ">= 0 and finite")


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


def validate_fields(p: Any, names: Iterable[str]) -> None:
    """Run the validators of the (dotted) fields ``names`` of ``p`` on their current values."""
    for name in names:
        owner, _, field = name.rpartition(".")
        record = p
        for part in owner.split(".") if owner else ():
            record = getattr(record, part)
        attribute = attrs.fields_dict(type(record))[field]
        if attribute.validator is not None:
            attribute.validator(record, attribute, getattr(record, field))


def tensor_items(p: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """``(dotted_name, tensor)`` for every tensor field, descending into nested records."""
    for f in attrs.fields(type(p)):
        value = getattr(p, f.name)
        if isinstance(value, torch.Tensor):
            yield prefix + f.name, value
        elif attrs.has(type(value)):
            yield from tensor_items(value, prefix + f.name + ".")


def replace_tensors(p: Any, tensors: dict[str, Any], validate: bool = True) -> Any:
    """A copy of ``p`` with the fields named (dotted for nested records) replaced.

    ``validate=False`` skips the fields' converters and validators: for values that are already
    tensors of a record validated before (a module's buffers and parameters on every forward).
    """
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        head, dot, rest = name.partition(".")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            changes[head] = value
    for head, inner in nested.items():
        changes[head] = replace_tensors(getattr(p, head), inner, validate)
    if validate:
        return attrs.evolve(p, **changes)
    cls = type(p)
    new = object.__new__(cls)
    for f in attrs.fields(cls):  # frozen: attrs itself sets fields this way
        object.__setattr__(
            new, f.name, changes[f.name] if f.name in changes else getattr(p, f.name)
        )
    return new
