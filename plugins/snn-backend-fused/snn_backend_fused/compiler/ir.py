"""The step compiler's intermediate representation: one neuron's step as a list of elementwise
operations, and its reverse-mode derivative.

A :class:`Graph` is straight-line code over scalars of one floating dtype (or masks, the result
of a comparison).  Node ``i`` is ``(op, args)``; an argument is another node's index (``int``) or
a Python ``float`` constant (wrapped in :class:`Const`).  Inputs come first: the input current
``x``, the state fields, then the parameters (each a scalar or one value per neuron).  A
``spike`` node is ``Θ(a)`` forward and ``g·σ'(a, alpha)`` backward, where ``σ'`` is the
surrogate's derivative, itself traced into a graph (so a third party's surrogate works too).
A ``matvec`` node (attr ``(matrix, transposed)``) multiplies a neuron vector by a module tensor:
it is not elementwise, so graphs holding one are cut into stages (:mod:`.stages`) and
differentiated per stage, never through the ``matvec`` itself.  ``pre(v)`` and ``post(v)`` are
a neuron value seen by a per-synapse array (row ``i`` holds ``v[i]``; column ``j`` holds ``v[j]``);
the per-synapse nodes form the last stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

#: Ops on values, with their arity, and whether the result is a mask.
UNARY = {
    "neg",
    "exp",
    "log",
    "tanh",
    "sigmoid",
    "abs",
    "sqrt",
    "reciprocal",
    "relu",
    "square",
    "expm1",
    "log1p",
    "sin",
    "cos",
    "sign",
}
BINARY = {"add", "sub", "mul", "div", "maximum", "minimum", "pow"}
COMPARE = {"gt", "ge", "lt", "le", "eq", "ne"}
OTHER = {
    "input",
    "where",
    "clamp",
    "spike",
    "detach",
    "float",
    "and",
    "or",
    "not",
    "matvec",
    "pre",
    "post",
}
OPS = UNARY | BINARY | COMPARE | OTHER


@attrs.frozen
class Const:
    """A literal in the step (``dt``, ``1`` in ``1 - z``, a clamp bound)."""

    value: float


Arg = int | Const


@attrs.frozen
class Node:
    op: str
    args: tuple[Any, ...] = ()
    #: For ``input``: its name; for ``spike``: the surrogate's index; for ``clamp``: unused.
    attr: Any = None

    @property
    def is_mask(self) -> bool:
        return self.op in COMPARE or self.op in ("and", "or", "not")


@attrs.define
class Graph:
    """Straight-line elementwise code; ``outputs`` are node indices (or constants)."""

    nodes: list[Node] = attrs.field(factory=list)
    outputs: list[Arg] = attrs.field(factory=list)

    def add(self, op: str, *args: Arg, attr: Any = None) -> int:
        """Append ``op(*args)``; exact rewrites (``a + (−b)`` is ``a − b``, ``(−a)·b`` is
        ``−(a·b)``, ``a·1`` is ``a``, ``a + 0`` is ``a`` up to the sign of a zero) may return
        an existing node or another op instead."""
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}")
        folded = self._fold(op, args)
        if folded is not None:
            return folded
        self.nodes.append(Node(op, tuple(args), attr))
        return len(self.nodes) - 1

    def _negated(self, arg: Any) -> int | None:
        if isinstance(arg, int) and self.nodes[arg].op == "neg":
            return self.nodes[arg].args[0]
        return None

    def _fold(self, op: str, args: tuple[Any, ...]) -> int | None:
        if op == "add":
            a, b = args
            if b == Const(0.0) and isinstance(a, int):
                return a
            if a == Const(0.0) and isinstance(b, int):
                return b
            if self._negated(b) is not None:
                return self.add("sub", a, self._negated(b))
            if self._negated(a) is not None:
                return self.add("sub", b, self._negated(a))
        if op == "mul":
            a, b = args
            if b == Const(1.0) and isinstance(a, int):
                return a
            if a == Const(1.0) and isinstance(b, int):
                return b
            for x, y in ((a, b), (b, a)):
                if self._negated(x) is not None:
                    return self.add("neg", self.add("mul", self._negated(x), y))
        if op == "neg" and self._negated(args[0]) is not None:
            return self._negated(args[0])
        return None

    def inputs(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.op == "input"]

    def __iter__(self) -> Iterator[tuple[int, Node]]:
        return iter(enumerate(self.nodes))

    def key(self) -> str:
        """A stable text of the graph (for cache keys and tests)."""
        lines = [
            f"{i}={n.op}({','.join(map(_text, n.args))}){'' if n.attr is None else n.attr}"
            for i, n in self
        ]
        return ";".join(lines) + "->" + ",".join(map(_text, self.outputs))

    def inline(self, other: Graph, arguments: Sequence[Arg]) -> list[Arg]:
        """Append ``other`` (whose inputs are bound to ``arguments``, in order); returns its
        outputs as arguments of this graph."""
        mapping: dict[int, Arg] = {}
        bound = iter(arguments)
        for i, node in other:
            if node.op == "input":
                mapping[i] = next(bound)
                continue
            args = tuple(mapping[a] if isinstance(a, int) else a for a in node.args)
            mapping[i] = self.add(node.op, *args, attr=node.attr)
        return [mapping[o] if isinstance(o, int) else o for o in other.outputs]


def _text(arg: Arg | None) -> str:
    if arg is None:
        return "_"
    return repr(arg.value) if isinstance(arg, Const) else f"%{arg}"


# -- reverse mode ----------------------------------------------------------------------------------


class _Builder:
    """Emits the backward nodes into the same graph, folding the trivial cases."""

    def __init__(self, graph: Graph):
        self.g = graph

    def op(self, name: str, *args: Arg, attr: Any = None) -> int:
        return self.g.add(name, *args, attr=attr)

    def add(self, a: Arg | None, b: Arg) -> Arg:
        return b if a is None else self.op("add", a, b)

    def mul(self, a: Arg, b: Arg) -> Arg:
        return self.op("mul", a, b)

    def masked(self, mask: Arg, g: Arg) -> Arg:
        return self.op("where", mask, g, Const(0.0))


def differentiate(
    graph: Graph,
    wrt: Sequence[int],
    seeds: Sequence[Arg | None],
    derivatives: Sequence[Graph],
) -> list[Arg | None]:
    """Append to ``graph`` the vector-Jacobian product of its outputs: with ``seeds[k]`` the
    incoming gradient of ``graph.outputs[k]`` (``None``: no gradient), returns the gradient of
    each input node in ``wrt`` (``None`` where none flows).  ``derivatives[i]`` is the traced
    derivative ``σ'(x, alpha)`` of surrogate ``i`` (a graph with inputs ``x``, ``alpha``).

    The rules are PyTorch's derivatives of each op (``tools/autograd/derivatives.yaml``), e.g.
    ``clamp`` passes the gradient where ``min <= a <= max``, ``detach`` stops it."""
    forward_count = len(graph.nodes)
    grads: dict[int, Arg] = {}
    for output, seed in zip(graph.outputs, seeds, strict=True):
        if seed is not None and isinstance(output, int):
            grads[output] = seed if output not in grads else graph.add("add", grads[output], seed)
    b = _Builder(graph)

    def accumulate(target: Arg, value: Arg) -> None:
        if isinstance(target, int) and not graph.nodes[target].is_mask:
            grads[target] = b.add(grads.get(target), value)

    for i in range(forward_count - 1, -1, -1):
        node = graph.nodes[i]
        g = grads.get(i)
        if g is None or node.op in ("input", "detach") or node.is_mask:
            continue
        _vjp(b, node, i, g, accumulate, derivatives)
    return [grads.get(i) for i in wrt]


def _vjp(
    b: _Builder,
    node: Node,
    out: int,
    g: Arg,
    accumulate: Callable[[Arg, Arg], None],
    derivatives: Sequence[Graph],
) -> None:
    op, args = node.op, node.args
    a = args[0] if args else None
    if op == "add":
        accumulate(args[0], g)
        accumulate(args[1], g)
    elif op == "sub":
        accumulate(args[0], g)
        accumulate(args[1], b.op("neg", g))
    elif op == "mul":
        accumulate(args[0], b.mul(g, args[1]))
        accumulate(args[1], b.mul(g, args[0]))
    elif op == "div":
        accumulate(args[0], b.op("div", g, args[1]))
        # ∂(a/b)/∂b = −a/b²: PyTorch computes −g·a/(b·b)
        accumulate(
            args[1],
            b.op("div", b.op("mul", b.op("neg", g), args[0]), b.op("mul", args[1], args[1])),
        )
    elif op == "neg":
        accumulate(a, b.op("neg", g))
    elif op == "exp":
        accumulate(a, b.mul(g, out))
    elif op == "expm1":
        accumulate(a, b.mul(g, b.op("add", out, Const(1.0))))
    elif op == "log":
        accumulate(a, b.op("div", g, a))
    elif op == "log1p":
        accumulate(a, b.op("div", g, b.op("add", a, Const(1.0))))
    elif op == "tanh":
        accumulate(a, b.mul(g, b.op("sub", Const(1.0), b.op("mul", out, out))))
    elif op == "sigmoid":
        accumulate(a, b.mul(g, b.op("mul", b.op("sub", Const(1.0), out), out)))
    elif op == "abs":
        accumulate(a, b.mul(g, b.op("sign", a)))
    elif op == "sign":
        pass
    elif op == "sqrt":
        accumulate(a, b.op("div", g, b.op("mul", Const(2.0), out)))
    elif op == "reciprocal":
        accumulate(a, b.mul(g, b.op("neg", b.op("mul", out, out))))
    elif op == "square":
        accumulate(a, b.mul(g, b.op("mul", a, Const(2.0))))
    elif op == "sin":
        accumulate(a, b.mul(g, b.op("cos", a)))
    elif op == "cos":
        accumulate(a, b.mul(g, b.op("neg", b.op("sin", a))))
    elif op == "relu":
        accumulate(a, b.masked(b.op("gt", out, Const(0.0)), g))
    elif op == "pow":
        exponent = args[1]
        if not isinstance(exponent, Const):
            raise NotImplementedError("pow with a tensor exponent")
        e = exponent.value
        if e != 0.0:
            power = b.op("pow", a, Const(e - 1.0))
            accumulate(a, b.mul(b.mul(g, Const(e)), power))
    elif op in ("maximum", "minimum"):
        # PyTorch splits the gradient evenly where the two are equal.
        pick = "gt" if op == "maximum" else "lt"
        half = b.mul(g, Const(0.5))
        first = b.op(
            "where", b.op("eq", args[0], args[1]), half, b.masked(b.op(pick, args[0], args[1]), g)
        )
        second = b.op(
            "where", b.op("eq", args[0], args[1]), half, b.masked(b.op(pick, args[1], args[0]), g)
        )
        accumulate(args[0], first)
        accumulate(args[1], second)
    elif op == "clamp":
        low, high = args[1], args[2]
        mask: Arg | None = None
        if low is not None:
            mask = b.op("ge", a, low)
        if high is not None:
            upper = b.op("le", a, high)
            mask = upper if mask is None else b.op("and", mask, upper)
        accumulate(a, g if mask is None else b.masked(mask, g))
    elif op == "where":
        accumulate(args[1], b.masked(args[0], g))
        accumulate(args[2], b.op("where", args[0], Const(0.0), g))
    elif op == "float":
        accumulate(a, g)
    elif op == "spike":
        alpha = args[1]
        (derivative,) = b.g.inline(derivatives[node.attr], [a, alpha])
        accumulate(a, b.mul(g, derivative))
    else:
        raise NotImplementedError(f"no derivative for {op!r}")
