"""Tracing a model's step function into the compiler's IR (:mod:`.ir`).

The step is run once under a dispatch mode that records every ATen op (in-place ops become
new values) on small example
tensors: the input current, every state field, and every tensor parameter (a scalar, or one
value per neuron).  Each surrogate in the parameter record is replaced by a tracing surrogate
that records a ``spike`` op, and each surrogate's derivative is traced the same way.  Every ATen
op must map to an elementwise IR op, or the step is refused with the reason (the fused backend
then runs the model eagerly and says why): control flow on tensor values, reductions, matrix
products, integer arithmetic, ops without a rule here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch
from torch.utils import _pytree
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

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
    #: Input channels: the step's input holds ``channels`` blocks of one value per neuron side by
    #: side along its last dimension (a model's ``synaptic_input`` may give two: excitatory and
    #: inhibitory); the graph's first ``channels`` inputs are the blocks.
    channels: int = 1
    #: Module tensors the step multiplies a neuron vector by (``matvec`` nodes), in order.
    matrices: tuple[str, ...] = ()
    #: State fields (flattened indices) with one value per synapse, shape (batch, n, n): the
    #: step reads neuron values in them through ``pre`` (``v.unsqueeze(-1)``: row ``i`` holds
    #: ``v[i]``) and ``post`` (``v.unsqueeze(-2)``: column ``j`` holds ``v[j]``) nodes.
    synapse_fields: tuple[int, ...] = ()

    @property
    def staged(self) -> bool:
        """Whether the step needs the staged recurrent kernel (matrix products between its
        elementwise parts, or several input channels)."""
        return (
            self.channels > 1
            or bool(self.synapse_fields)
            or any(node.op == "matvec" for _, node in self.graph)
        )

    def key(self) -> str:
        return "|".join(
            [self.graph.key(), ",".join(self.kinds), str(self.channels)]
            + [d.key() for d in self.derivatives]
        )


@attrs.frozen
class _Channels:
    """The step's input while traced with several channels: ``inputs[c]`` is block ``c``."""

    inputs: tuple[int, ...]
    width: int


@attrs.frozen
class _Matrix:
    """A module tensor (number ``index``), transposed ``flips`` times."""

    index: int
    name: str
    transposed: bool = False


_STRUCTURAL = {"split", "split_with_sizes", "slice", "t", "transpose", "permute", "mm", "numpy_T"}

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


class _Recorder(TorchDispatchMode):
    """Runs a function on example tensors and records every ATen op it executes, as IR.

    Inputs are marked first; every tensor an op returns is mapped to its IR value, so later ops
    refer to it; an in-place op rebinds its tensor to the new value.  A one-element tensor that
    no op made (a constant created in the step, ``torch.tensor(0.5)``) becomes a constant.
    """

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.graph = Graph()
        self.dtype = dtype
        self.values: dict[int, Any] = {}
        self.alive: list[torch.Tensor] = []  # keeps the ids of mapped tensors unique

    def bind(self, tensor: torch.Tensor, value: Any) -> None:
        self.values[id(tensor)] = value
        self.alive.append(tensor)

    def arg(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            found = self.values.get(id(value))
            if found is not None:
                return found
            if value.numel() == 1 and value.dtype.is_floating_point | (value.dtype == torch.bool):
                return Const(float(value.item()))
            raise Untraceable(
                f"a tensor of shape {tuple(value.shape)} that is neither an input nor made from one"
            )
        if value is None or isinstance(value, (torch.dtype, torch.device, torch.layout, str)):
            return value
        if isinstance(value, bool):
            return Const(float(value))
        if isinstance(value, (int, float)):
            return Const(float(value))
        if isinstance(value, (list, tuple)):
            return type(value)(self.arg(v) for v in value)
        raise Untraceable(f"an argument of type {type(value).__name__} ({value!r})")

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = func._schema.name.split("::")[-1]
        if name in ("_local_scalar_dense", "is_nonzero", "item", "equal"):
            raise Untraceable(f"control flow on tensor values (aten.{name})")
        out = func(*args, **kwargs)
        mapped = [self.arg(a) for a in args]
        mapped_kwargs = {k: self.arg(v) for k, v in kwargs.items()}
        if any(isinstance(a, (_Channels, _Matrix)) for a in [*mapped, *mapped_kwargs.values()]):
            self._structural(name, mapped, out)
            return out
        if not isinstance(out, torch.Tensor):
            raise Untraceable(f"the op aten.{name}, which does not return one tensor")
        sources = [a.dtype if isinstance(a, torch.Tensor) else None for a in args]
        value = _op(self.graph, func, mapped, mapped_kwargs, sources, out, self.dtype)
        self.bind(out, value)
        if name.endswith("_") and args and isinstance(args[0], torch.Tensor):
            self.bind(args[0], value)  # later uses of the mutated tensor see the result
        return out

    def _structural(self, name: str, args: list[Any], out: Any) -> None:
        """An op on the input's channels or on a module tensor: splitting the input into its
        channels, transposing a matrix, multiplying a neuron vector by one."""
        base = name.removesuffix("_")
        first = args[0]
        if isinstance(first, _Channels) and base in ("split", "split_with_sizes", "slice"):
            self._split(base, first, [_number(a) for a in args[1:]], out)
            return
        if isinstance(first, _Matrix) and base in ("t", "transpose", "permute", "numpy_T"):
            self.bind(out, attrs.evolve(first, transposed=not first.transposed))
            return
        if base == "mm" and isinstance(args[1], _Matrix) and isinstance(first, int):
            # a @ M: one value per neuron, times a module tensor (or its transpose)
            matrix = args[1]
            self.bind(out, self.graph.add("matvec", first, attr=(matrix.index, matrix.transposed)))
            return
        what = "the input's channels" if isinstance(first, _Channels) else "a module tensor"
        raise Untraceable(f"{what} used in aten.{base}, which has no rule")

    def _split(self, base: str, channels: _Channels, args: list[Any], out: Any) -> None:
        """``split``/``slice`` of the input along its last dimension into whole channels."""
        width, count = channels.width, len(channels.inputs)
        if base == "slice":
            dim, start, end = [*args, None, None, None][:3]
            start = start or 0
            end = count * width if end is None else min(end, count * width)
            if dim not in (-1, 1) or start % width or end - start != width:
                raise Untraceable("a slice of the input that is not one whole channel")
            self.bind(out, channels.inputs[start // width])
            return
        sizes, dim = args[0], (args[1] if len(args) > 1 else 0)
        sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes] * count
        if dim not in (-1, 1) or any(size != width for size in sizes) or len(out) != count:
            raise Untraceable("a split of the input that is not into its channels")
        for tensor, value in zip(out, channels.inputs, strict=True):
            self.bind(tensor, value)


def _number(value: Any) -> Any:
    if isinstance(value, Const):
        return int(value.value)
    if isinstance(value, (list, tuple)):
        return [_number(v) for v in value]
    return value


def _record(
    function: Callable[..., Any],
    inputs: Sequence[torch.Tensor],
    dtype: torch.dtype,
    channels: int = 1,
    matrices: Sequence[tuple[str, torch.Tensor]] = (),
) -> tuple[Graph, list[Arg]]:
    """``function(*inputs, **matrices)`` as IR: one input node per input (the first input as
    ``channels`` nodes, one per block of its last dimension), outputs = its returned tensors;
    the module tensors ``matrices`` become ``matvec`` nodes where a neuron vector is multiplied
    by them."""
    recorder = _Recorder(dtype)
    for k, tensor in enumerate(inputs):
        if k == 0 and channels > 1:
            blocks = tuple(recorder.graph.add("input", attr=f"x{c}") for c in range(channels))
            recorder.bind(tensor, _Channels(blocks, tensor.shape[-1] // channels))  # type: ignore[arg-type]
            continue
        recorder.bind(tensor, recorder.graph.add("input", attr=f"in{k}"))
    for k, (name, tensor) in enumerate(matrices):
        recorder.bind(tensor, _Matrix(k, name))  # type: ignore[arg-type]
    named = {name: tensor for name, tensor in matrices}
    with torch.no_grad(), recorder:
        results = function(*inputs, **named)
    outputs = []
    for result in _pytree.tree_leaves(results):
        if not isinstance(result, torch.Tensor):
            raise Untraceable(f"the step returns a {type(result).__name__}")
        outputs.append(recorder.arg(result))
    return recorder.graph, outputs


def _op(
    graph: Graph,
    func: Any,
    args: list[Any],
    kwargs: dict[str, Any],
    sources: list[Any],
    out: torch.Tensor,
    dtype: torch.dtype,
) -> Arg:
    """The IR of one recorded ATen op (``args`` already mapped to IR values)."""
    if func is torch.ops.snnfused_trace.spike.default:
        x, alpha, which = args
        return graph.add("spike", x, alpha, attr=int(which.value))
    base = func._schema.name.split("::")[-1].removesuffix("_")
    overload = func._overloadname
    if base == "copy":  # x.copy_(y): the value is y's
        return args[1]
    if out.dtype not in (dtype, torch.bool):
        raise Untraceable(f"{base} computes in {out.dtype}, not {dtype}")
    if base == "detach":
        return graph.add("detach", args[0]) if isinstance(args[0], int) else args[0]
    if base in _IDENTITY:
        if base == "_to_copy":
            if sources[0] == torch.bool:
                return graph.add("float", args[0])
            if kwargs.get("dtype") not in (None, dtype):
                raise Untraceable(f"a conversion to {kwargs.get('dtype')}")
        return args[0]
    if base in ("full_like", "zeros_like", "ones_like", "scalar_tensor", "full"):
        fill = {"zeros_like": Const(0.0), "ones_like": Const(1.0)}.get(base)
        if fill is None:
            fill = args[1] if base in ("full_like", "full") else args[0]
        return fill
    if base == "unsqueeze":
        return _view(graph, args, out)
    if base in _UNARY:
        return graph.add(_UNARY[base], args[0])
    if base in ("add", "sub") and kwargs.get("alpha", Const(1.0)) != Const(1.0):
        scaled = graph.add("mul", args[1], kwargs["alpha"])
        return graph.add(base, args[0], scaled)
    if base == "rsub":
        return graph.add("sub", args[1], args[0])
    if base == "div" and kwargs.get("rounding_mode") is not None:
        raise Untraceable(f"div with rounding_mode={kwargs['rounding_mode']!r}")
    if base == "pow":
        if isinstance(args[1], int):
            raise Untraceable("pow with a tensor exponent")
        if not isinstance(args[0], int):
            raise Untraceable("pow of a number to a tensor power")
        return graph.add("pow", args[0], args[1])
    if base in _BINARY:
        return graph.add(_BINARY[base], args[0], args[1])
    if base in ("clamp", "clamp_min", "clamp_max"):
        low = args[1] if len(args) > 1 else kwargs.get("min")
        high = args[2] if len(args) > 2 else kwargs.get("max")
        if base == "clamp_max":
            low, high = None, low
        return graph.add("clamp", args[0], low, high)
    if base == "where":
        return graph.add("where", args[0], args[1], args[2])
    raise Untraceable(f"the op aten.{base}.{overload}, which is not elementwise or has no rule")


def _view(graph: Graph, args: list[Any], out: torch.Tensor) -> Arg:
    """``v.unsqueeze(-1)`` / ``v.unsqueeze(-2)`` of a (batch, n) value, against a per-synapse
    array (batch, n, n): ``pre`` (row ``i`` holds ``v[i]``) or ``post`` (column ``j``)."""
    value, dim = args[0], args[1]
    dim = int(dim.value) if isinstance(dim, Const) else dim
    if out.dim() != 3 or not isinstance(value, int):
        raise Untraceable(f"an unsqueeze to shape {tuple(out.shape)} (no per-synapse array)")
    if dim in (-1, 2):
        return graph.add("pre", value)
    if dim in (-2, 1):
        return graph.add("post", value)
    raise Untraceable(f"an unsqueeze at dimension {dim}")


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
    channels: int = 1,
    matrices: Sequence[tuple[str, torch.Tensor]] = (),
) -> Traced:
    """Trace ``step(x, state, p, dt, **matrices)`` for neurons of shape ``features`` (a batch
    of 2); the input has ``channels`` blocks of ``features[-1]`` values along its last
    dimension, and ``matrices`` are the module tensors the step takes (by name)."""
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
    x = torch.rand((*shape[:-1], channels * shape[-1]), generator=generator, dtype=dtype)
    examples_m = [
        (name, torch.rand(tuple(m.shape), generator=generator, dtype=dtype)) for name, m in matrices
    ]
    # a state field of shape (batch, n, n) for n neurons holds one value per synapse
    synapse_shape = (*shape, features[-1]) if len(features) == 1 else None
    synapses = tuple(
        k for k, f in enumerate(flat_state) if synapse_shape and tuple(f.shape) == synapse_shape
    )
    states = [
        torch.rand(synapse_shape if k in synapses else shape, generator=generator, dtype=dtype)
        for k in range(len(flat_state))
    ]
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

    def flat_step(x: torch.Tensor, *args: torch.Tensor, **module: torch.Tensor) -> list[Any]:
        state_now = _pytree.tree_unflatten(list(args[: len(flat_state)]), tree)
        values = args[len(flat_state) : len(flat_state) + len(names)]
        fields: dict[str, Any] = dict(zip(names, values, strict=True))
        fields.update(tracing)
        # the record's own checks (validators, an attrs __attrs_post_init__ comparing two
        # parameters) run on the example values, outside the recording: they are not the step
        with attrs.validators.disabled(), _disable_current_modes():
            p_now = replace_tensors(p, fields)
        step_dt = args[-1] if len(args) > len(flat_state) + len(names) else dt
        out, new_state = step(x, state_now, p_now, step_dt, **module)
        new_flat, new_tree = _pytree.tree_flatten(new_state)
        if new_tree != tree:
            raise Untraceable("the step returns a state of another structure")
        return [out, *new_flat]

    # dt as an input (one kernel serves every dt), unless the step needs it as a number
    attempts: list[tuple[torch.Tensor, ...]] = [(torch.tensor(dt, dtype=dtype),), ()]
    failure: Exception | None = None
    for extra in attempts:
        try:
            graph, outputs = _record(
                flat_step, [x, *states, *examples, *extra], dtype, channels, examples_m
            )
        except Untraceable as exc:
            failure = exc
            continue
        except Exception as exc:  # data-dependent control flow, unsupported ops, ...
            failure = Untraceable(f"tracing failed: {type(exc).__name__}: {_first_line(exc)}")
            continue
        graph.outputs = outputs
        if surrogates and not any(node.op == "spike" for _, node in graph):
            # a spike through a surrogate other than p's (or none) would lose its gradient
            raise Untraceable(
                "its parameters name a surrogate, but its step never spikes through it"
            )
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
            channels=channels,
            matrices=tuple(name for name, _ in matrices),
            synapse_fields=synapses,
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
        graph, outputs = _record(derivative, [x, alpha], dtype)
    except Exception as exc:
        raise Untraceable(
            f"the derivative of surrogate {surrogate.name!r} does not trace: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from None
    graph.outputs = outputs
    return graph


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
