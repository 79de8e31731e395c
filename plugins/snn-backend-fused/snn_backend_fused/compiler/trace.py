"""Tracing a model's step function into the compiler's IR (:mod:`.ir`).

The step is run once under ``make_fx`` (at ATen level; in-place ops become new values) on small example
tensors: the input current, every state field, and every tensor parameter (a scalar, or one
value per neuron).  Each surrogate in the parameter record is replaced by a tracing surrogate
that records a ``spike`` op, and each surrogate's derivative is traced the same way.  Every ATen
op must map to an elementwise IR op, or the step is refused with the reason (the fused backend
then runs the model eagerly and says why): control flow on tensor values, reductions, matrix
products, integer arithmetic, ops without a rule here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree

from snn_backend_fused.compiler.ir import Arg, Const, Graph
from snncore.parameters import method_items, replace_tensors, tensor_items
from snncore.surrogates import Surrogate, resolve_surrogate


class Untraceable(Exception):
    """The step cannot be expressed in the compiler's IR; the message says why."""


_LIBRARY = torch.library.Library("snnfused_trace", "DEF")
_LIBRARY.define("spike(Tensor x, Tensor alpha, int which) -> Tensor")
_LIBRARY.impl("spike", lambda x, alpha, which: (x > 0).to(x.dtype), "CompositeExplicitAutograd")


class _TracingSurrogate(Surrogate):
    """Stands for surrogate number ``which`` while a step is traced."""

    def __call__(self, x: torch.Tensor, alpha: Any = 100.0) -> torch.Tensor:
        alpha = torch.as_tensor(alpha, dtype=x.dtype)
        return torch.ops.snnfused_trace.spike(x, alpha, int(self.formula))


@attrs.frozen
class Traced:
    """A step as IR: inputs ``x``, the state fields, the parameters (in that order); outputs the
    step's output and the new state fields."""

    graph: Graph
    state_fields: tuple[str, ...]
    parameters: tuple[str, ...]
    #: Per parameter: ``"scalar"`` or ``"neuron"`` (one value per neuron).
    kinds: tuple[str, ...]
    surrogates: tuple[Surrogate, ...]
    derivatives: tuple[Graph, ...]
    state_template: Any
    dt: float
    #: ``dt`` is the last parameter input (one kernel for every dt), else a constant in it
    dt_input: bool = False

    def key(self) -> str:
        return "|".join(
            [self.graph.key(), ",".join(self.kinds)] + [d.key() for d in self.derivatives]
        )


_UNARY = {
    "neg": "neg",
    "exp": "exp",
    "log": "log",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "abs": "abs",
    "sqrt": "sqrt",
    "reciprocal": "reciprocal",
    "relu": "relu",
    "square": "square",
    "expm1": "expm1",
    "log1p": "log1p",
    "sin": "sin",
    "cos": "cos",
    "sign": "sign",
    "logical_not": "not",
}
_BINARY = {
    "add": "add",
    "sub": "sub",
    "mul": "mul",
    "div": "div",
    "maximum": "maximum",
    "minimum": "minimum",
    "pow": "pow",
    "gt": "gt",
    "ge": "ge",
    "lt": "lt",
    "le": "le",
    "eq": "eq",
    "ne": "ne",
    "logical_and": "and",
    "logical_or": "or",
    "bitwise_and": "and",
    "bitwise_or": "or",
}
_IDENTITY = {"alias", "clone", "lift_fresh_copy", "contiguous", "expand", "_to_copy"}


def _convert(
    gm: torch.fx.GraphModule, input_count: int, dtype: torch.dtype
) -> tuple[Graph, list[Arg]]:
    """The fx graph of a functionalised trace -> IR (inputs first, in placeholder order)."""
    graph = Graph()
    values: dict[torch.fx.Node, Any] = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != input_count:
        raise Untraceable(f"expected {input_count} inputs, traced {len(placeholders)}")
    for node in placeholders:
        values[node] = graph.add("input", attr=node.name)

    def arg(value: Any) -> Arg | None:
        if value is None:
            return None
        if isinstance(value, torch.fx.Node):
            return values[value]
        if isinstance(value, bool):
            return Const(float(value))
        if isinstance(value, (int, float)):
            return Const(float(value))
        raise Untraceable(f"an argument of type {type(value).__name__} ({value!r})")

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            outputs = _pytree.tree_leaves(node.args[0])
            return graph, [arg(o) for o in outputs]  # type: ignore[misc]
        if node.op == "get_attr":
            constant = getattr(gm, node.target)
            if not isinstance(constant, torch.Tensor) or constant.numel() != 1:
                raise Untraceable(f"a tensor constant of shape {tuple(constant.shape)}")
            values[node] = Const(float(constant.item()))
            continue
        if node.op != "call_function":
            raise Untraceable(f"an fx node of kind {node.op}")
        if node.target is operator.getitem:
            raise Untraceable("an op with several results")
        values[node] = _op(graph, node, arg, dtype)
        if _in_place(node) and isinstance(node.args[0], torch.fx.Node):
            values[node.args[0]] = values[node]  # later uses of the mutated tensor see the result
    raise Untraceable("the trace has no output")


def _in_place(node: torch.fx.Node) -> bool:
    schema = getattr(node.target, "_schema", None)
    return schema is not None and schema.name.split("::")[-1].endswith("_")


def _op(graph: Graph, node: torch.fx.Node, arg: Callable[[Any], Any], dtype: torch.dtype) -> Arg:
    target = node.target
    if target is torch.ops.snnfused_trace.spike.default:
        x, alpha, which = node.args
        return graph.add("spike", arg(x), arg(alpha), attr=int(which))
    name = getattr(target, "_schema", None)
    if name is None:
        raise Untraceable(f"a call of {target!r}")
    base = target._schema.name.split("::")[-1].removesuffix("_")  # type: ignore[union-attr]
    if base == "copy":  # x.copy_(y): the value is y's
        return arg(node.args[1])
    overload = target._overloadname  # type: ignore[union-attr]
    args, kwargs = list(node.args), dict(node.kwargs)
    value = node.meta.get("val")
    if isinstance(value, torch.Tensor) and value.dtype not in (dtype, torch.bool):
        raise Untraceable(f"{base} computes in {value.dtype}, not {dtype}")
    if base == "detach":
        return graph.add("detach", arg(args[0]))
    if base in _IDENTITY:
        if base == "_to_copy":
            target_dtype = kwargs.get("dtype")
            source = (
                node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
            )
            if isinstance(source, torch.Tensor) and source.dtype == torch.bool:
                return graph.add("float", arg(args[0]))
            if target_dtype not in (None, dtype):
                raise Untraceable(f"a conversion to {target_dtype}")
        if base == "expand" or isinstance(arg(args[0]), Const):
            return arg(args[0])
        return arg(args[0])
    if base in ("full_like", "zeros_like", "ones_like", "scalar_tensor", "full"):
        fill = {"zeros_like": 0.0, "ones_like": 1.0}.get(base)
        if fill is None:
            fill = args[1] if base in ("full_like", "full") else args[0]
        return Const(float(fill))
    if base in _UNARY:
        return graph.add(_UNARY[base], arg(args[0]))
    if base in ("add", "sub") and (kwargs.get("alpha", 1) != 1):
        scaled = graph.add("mul", arg(args[1]), Const(float(kwargs["alpha"])))
        return graph.add(base, arg(args[0]), scaled)
    if base == "rsub":
        return graph.add("sub", arg(args[1]), arg(args[0]))
    if base == "div" and kwargs.get("rounding_mode") is not None:
        raise Untraceable(f"div with rounding_mode={kwargs['rounding_mode']!r}")
    if base == "pow":
        base_is_tensor, exponent_is_tensor = (isinstance(a, torch.fx.Node) for a in args[:2])
        if exponent_is_tensor:
            raise Untraceable("pow with a tensor exponent")
        if not base_is_tensor:
            raise Untraceable("pow of a number to a tensor power")
        return graph.add("pow", arg(args[0]), arg(args[1]))
    if base in _BINARY:
        return graph.add(_BINARY[base], arg(args[0]), arg(args[1]))
    if base in ("clamp", "clamp_min", "clamp_max"):
        low = args[1] if len(args) > 1 else kwargs.get("min")
        high = args[2] if len(args) > 2 else kwargs.get("max")
        if base == "clamp_max":
            low, high = None, low
        return graph.add("clamp", arg(args[0]), arg(low), arg(high))
    if base == "where":
        return graph.add("where", arg(args[0]), arg(args[1]), arg(args[2]))
    raise Untraceable(f"the op aten.{base}.{overload}, which is not elementwise or has no rule")


def _example(value: torch.Tensor, features: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A traced stand-in for a parameter: a scalar, or one value per neuron."""
    if value.numel() == 1:
        return value.detach().reshape(()).to(dtype)
    return value.detach().to(dtype).expand(features).clone()


def parameter_kind(value: torch.Tensor, features: tuple[int, ...]) -> str | None:
    """``"scalar"``, ``"neuron"`` (one value per neuron of ``features``), or ``None``."""
    if value.numel() == 1:
        return "scalar"
    shape = tuple(value.shape)
    while shape and shape[0] == 1 and len(shape) > len(features):
        shape = shape[1:]
    return "neuron" if shape == tuple(features) else None


def trace_step(
    step: Callable[..., Any],
    state: Any,
    p: Any,
    dt: float,
    features: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    kinds: Sequence[str] | None = None,
) -> Traced:
    """Trace ``step(x, state, p, dt)`` for neurons of shape ``features`` (a batch of 2)."""
    tensors = dict(tensor_items(p))
    names = tuple(tensors)
    if kinds is None:
        found = {n: parameter_kind(v, features) for n, v in tensors.items()}
        odd = [n for n, k in found.items() if k is None]
        if odd:
            raise Untraceable(f"parameter(s) {odd} are neither scalars nor one per neuron")
        kinds = tuple(found[n] for n in names)
    surrogates = tuple(resolve_surrogate(v) for _, v in method_items(p))
    flat_state, tree = _pytree.tree_flatten(state)
    if not all(isinstance(s, torch.Tensor) for s in flat_state):
        raise Untraceable("a state field that is not a tensor")
    generator = torch.Generator().manual_seed(0)
    shape = (2, *features)
    x = torch.rand(shape, generator=generator, dtype=dtype)
    states = [torch.rand(shape, generator=generator, dtype=dtype) for _ in flat_state]
    examples = [
        _example(v, features, dtype)
        if k == "neuron" or v.numel() != 1
        else v.detach().reshape(()).to(dtype)
        for v, k in zip(tensors.values(), kinds, strict=True)
    ]
    tracing = {
        field: _TracingSurrogate(f"traced{k}", None, str(k))
        for k, (field, _) in enumerate(method_items(p))
    }

    def flat_step(x: torch.Tensor, *args: torch.Tensor) -> list[torch.Tensor]:
        state_now = _pytree.tree_unflatten(list(args[: len(flat_state)]), tree)
        values = args[len(flat_state) : len(flat_state) + len(names)]
        fields: dict[str, Any] = dict(zip(names, values, strict=True))
        fields.update(tracing)
        with attrs.validators.disabled():
            p_now = replace_tensors(p, fields)
        step_dt = args[-1] if len(args) > len(flat_state) + len(names) else dt
        out, new_state = step(x, state_now, p_now, step_dt)
        new_flat, new_tree = _pytree.tree_flatten(new_state)
        if new_tree != tree:
            raise Untraceable("the step returns a state of another structure")
        return [out, *new_flat]

    # dt as an input (one kernel serves every dt), unless the step needs it as a number
    attempts: list[tuple[torch.Tensor, ...]] = [(torch.tensor(dt, dtype=dtype),), ()]
    failure: Exception | None = None
    for extra in attempts:
        try:
            gm = make_fx(flat_step)(x, *states, *examples, *extra)
            graph, outputs = _convert(gm, 1 + len(states) + len(examples) + len(extra), dtype)
        except Untraceable as exc:
            failure = exc
            continue
        except Exception as exc:  # data-dependent control flow, unsupported ops, ...
            failure = Untraceable(f"tracing failed: {type(exc).__name__}: {_first_line(exc)}")
            continue
        graph.outputs = outputs
        return Traced(
            graph,
            tuple(f"s{i}" for i in range(len(flat_state))),
            names + (("dt",) if extra else ()),
            tuple(kinds) + (("scalar",) if extra else ()),
            surrogates,
            tuple(trace_derivative(s, dtype) for s in surrogates),
            state,
            dt,
            dt_input=bool(extra),
        )
    assert failure is not None
    raise failure


def trace_derivative(surrogate: Surrogate, dtype: torch.dtype = torch.float64) -> Graph:
    """The surrogate's ``derivative(x, alpha)`` as a graph with inputs ``x``, ``alpha``."""
    x = torch.linspace(-1, 1, 5, dtype=dtype)
    alpha = torch.tensor(3.0, dtype=dtype)

    def derivative(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return surrogate.derivative(x, alpha) + torch.zeros_like(x)

    try:
        gm = make_fx(derivative)(x, alpha)
    except Exception as exc:
        raise Untraceable(
            f"the derivative of surrogate {surrogate.name!r} does not trace: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from None
    graph, outputs = _convert(gm, 2, dtype)
    graph.outputs = outputs
    return graph


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
