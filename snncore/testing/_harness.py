"""The conformance checks' tools: seeded modules and inputs, a drive that makes a model spike,
flattened states, comparisons that say where two runs differ, and the check's own exceptions.

A check raises :class:`CheckFailure` with what went wrong; the suite prefixes the model, variant
and check (``[lif/layer] state threading: ...``).  Everything is seeded and leaves the global
random state as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from snncore.modules import build_module
from snncore.parameters import replace_tensors, tensor_items
from snncore.protocols import NeuronModel

RECURRENT = ("recurrent_cell", "recurrent")
LOOPS = ("layer", "recurrent")
#: Default sizes: batch, feed-forward neuron shape, recurrent input and hidden size, time steps.
BATCH, FEATURES, INPUT_SIZE, HIDDEN_SIZE, STEPS = 2, (3,), 2, 3, 8
#: Input scales tried (smallest first) until a model spikes at a moderate rate.
LADDER = (*(m * 10.0**k for k in range(-2, 4) for m in (1.0, 2.0, 5.0)), 1e4)


class CheckFailure(AssertionError):
    """A conformance check failed; the message says what, the suite adds model and check."""


class CheckSkipped(Exception):
    """A check cannot run here (e.g. no C compiler for ``torch.compile``); the message says why."""


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator for the block and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def leaves(state: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted name, value)`` of every field of a (possibly nested) NamedTuple state."""
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        found = []
        for name, value in zip(state._fields, state, strict=True):
            found += leaves(value, f"{prefix}{name}.")
        return found
    return [(prefix.rstrip("."), state)]


def tensor_leaves(state: Any) -> list[tuple[str, torch.Tensor]]:
    return [(n, v) for n, v in leaves(state) if isinstance(v, torch.Tensor)]


def tensor_fields(p: Any) -> dict[str, torch.Tensor]:
    """The parameter record's tensor fields by dotted name."""
    return dict(tensor_items(p))


def method_paths(p: Any, prefix: str = "") -> list[str]:
    """Dotted names of the surrogate ``method`` fields of a (possibly nested) parameter record."""
    import attrs

    found = []
    for f in attrs.fields(type(p)):
        value = getattr(p, f.name)
        if f.name == "method" and isinstance(value, str):
            found.append(prefix + f.name)
        elif attrs.has(type(value)):
            found += method_paths(value, prefix + f.name + ".")
    return found


def get_path(p: Any, path: str) -> Any:
    for part in path.split("."):
        p = getattr(p, part)
    return p


def evolve_path(p: Any, path: str, value: Any) -> Any:
    """A copy of ``p`` with the (dotted) field replaced; works for any field type."""
    import attrs

    head, _, rest = path.partition(".")
    if not rest:
        return attrs.evolve(p, **{head: value})
    return attrs.evolve(p, **{head: evolve_path(getattr(p, head), rest, value)})


def scaled_parameters(p: Any, factor: float | torch.Tensor) -> Any:
    """``p`` with every scalar tensor field multiplied by ``factor`` (a number or a vector)."""
    return replace_tensors(
        p, {n: v * factor for n, v in tensor_fields(p).items() if v.numel() == 1}
    )


class Subject:
    """One model under test: builds its modules and inputs, and remembers its drive."""

    def __init__(self, model: NeuronModel):
        self.model = model
        self._drive: dict[str, float] = {}

    # -- modules --------------------------------------------------------------------------------
    def build(
        self,
        variant: str,
        *,
        dtype: torch.dtype = torch.float64,
        seed: int = 0,
        input_size: int = INPUT_SIZE,
        hidden_size: int = HIDDEN_SIZE,
        **kwargs: Any,
    ) -> torch.nn.Module:
        """``variant`` of the model with seeded weights (recurrent: positive input weights of
        mean ~1/input_size, mixed-sign recurrent weights), converted to ``dtype``.  Layers run
        on the eager ``torch`` backend unless ``backend=`` says otherwise."""
        if variant in ("layer", "recurrent"):
            kwargs.setdefault("backend", "torch")  # the reference; others: the backends check
        with seeded(seed):
            if variant in RECURRENT:
                gen = torch.Generator().manual_seed(seed + 1)
                kwargs.setdefault(
                    "input_weights",
                    (0.5 + torch.rand(hidden_size, input_size, generator=gen)) / input_size,
                )
                kwargs.setdefault(
                    "recurrent_weights",
                    torch.randn(hidden_size, hidden_size, generator=gen) / math.sqrt(hidden_size),
                )
                module = build_module(self.model, variant, input_size, hidden_size, **kwargs)
            else:
                module = build_module(self.model, variant, **kwargs)
        return module.to(dtype)

    def partner(self, module: torch.nn.Module, variant: str, **kwargs: Any) -> torch.nn.Module:
        """The loop variant (layer/recurrent) for a cell, with the cell's weights and tensors."""
        loop = "recurrent" if variant in RECURRENT else "layer"
        sizes = {}
        if variant in RECURRENT:
            sizes = {"input_size": module.input_size, "hidden_size": module.hidden_size}
        other = self.build(loop, dtype=_dtype_of(module), p=module.p, **sizes, **kwargs)
        other.load_state_dict(module.state_dict())
        return other

    # -- inputs ---------------------------------------------------------------------------------
    def inputs(
        self,
        variant: str,
        steps: int | None = STEPS,
        *,
        batch: int = BATCH,
        features: tuple[int, ...] = FEATURES,
        input_size: int = INPUT_SIZE,
        dtype: torch.dtype = torch.float64,
        seed: int = 0,
        scale: float | None = None,
    ) -> torch.Tensor:
        """Positive input ``scale·(0.5 + U[0, 1))`` of the variant's shape (no time axis for a
        cell when ``steps`` is None); ``scale`` defaults to the model's calibrated drive."""
        if scale is None:
            scale = self.drive(variant)
        per_step = (batch, input_size) if variant in RECURRENT else (batch, *features)
        shape = per_step if steps is None else (steps, *per_step)
        gen = torch.Generator().manual_seed(1000 + seed)
        return (scale * (0.5 + torch.rand(shape, generator=gen, dtype=torch.float64))).to(dtype)

    def drive(self, variant: str) -> float:
        """An input scale at which the model spikes early and moderately (in 10–50 % of the first
        STEPS/2 steps), so that the checks exercise resets and spike-driven jumps; found once per
        kind (feed-forward, recurrent) on the seeded modules.  1 for a model whose output is not
        spikes; the closest scale to 25 % for one that never gets into the range."""
        kind = "recurrent" if variant in RECURRENT else "layer"
        if kind not in self._drive:
            self._drive[kind] = self._calibrate(kind)
        return self._drive[kind]

    def _calibrate(self, loop: str) -> float:
        if self.model.output != "spikes" or loop not in self.model.variants:
            return 1.0
        module = self.build(loop)
        best, best_distance = 1.0, math.inf
        with torch.no_grad():
            for scale in LADDER:
                out, _ = module(self.inputs(loop, STEPS, scale=scale))
                rate = float(out[: STEPS // 2].mean())  # spikes early in the checks' runs
                if 0.1 <= rate <= 0.5:
                    return scale
                if rate > 0 and abs(math.log(rate / 0.25)) < best_distance:
                    best, best_distance = scale, abs(math.log(rate / 0.25))
        return best


def _dtype_of(module: torch.nn.Module) -> torch.dtype:
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def run(module: torch.nn.Module, x: torch.Tensor, state: Any = None) -> tuple[Any, Any]:
    return module(x, state) if state is not None else module(x)


def loop_cell(module: torch.nn.Module, x: torch.Tensor, state: Any = None) -> tuple[Any, Any]:
    """Step a cell over the time axis of ``x``, threading its state."""
    outs = []
    for x_t in x.unbind(0):
        out, state = run(module, x_t, state)
        outs.append(out)
    return torch.stack(outs), state


# -- comparisons ------------------------------------------------------------------------------
def describe_difference(actual: torch.Tensor, expected: torch.Tensor) -> str:
    diff = (actual.double() - expected.double()).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff)
    index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    where = f" at index {index}" if index else ""
    return (
        f"max |difference| {float(diff.max()):.3g}{where}: got {actual[index].item()!r}, "
        f"expected {expected[index].item()!r}"
    )


def assert_close(
    what: str,
    actual: Any,
    expected: Any,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> None:
    if not isinstance(actual, torch.Tensor) or not isinstance(expected, torch.Tensor):
        if actual is not expected and actual != expected:
            raise CheckFailure(f"{what}: got {actual!r}, expected {expected!r}")
        return
    if actual.shape != expected.shape:
        raise CheckFailure(f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    a, e = actual.detach().double(), expected.detach().double()
    if not torch.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
        raise CheckFailure(f"{what} differ: {describe_difference(a, e)}")


def assert_states_close(
    what: str, actual: Any, expected: Any, rtol: float = 1e-9, atol: float = 1e-12
) -> None:
    if type(actual) is not type(expected):
        raise CheckFailure(
            f"{what}: state of type {type(actual).__name__}, expected {type(expected).__name__}"
        )
    got, want = leaves(actual), leaves(expected)
    if [n for n, _ in got] != [n for n, _ in want]:
        raise CheckFailure(
            f"{what}: state fields {[n for n, _ in got]}, expected {[n for n, _ in want]}"
        )
    for (name, a), (_, e) in zip(got, want, strict=True):
        assert_close(f"{what}: state field {name!r}", a, e, rtol, atol)


def check_finite(what: str, value: Any) -> None:
    for name, t in tensor_leaves(value) if not isinstance(value, torch.Tensor) else [("", value)]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            kind = "NaN" if bool(torch.isnan(t).any()) else "inf"
            field = f" (state field {name!r})" if name else ""
            raise CheckFailure(
                f"{what}{field}: {bad} of {t.numel()} values are not finite ({kind})"
            )
