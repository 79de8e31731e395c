"""Staged steps: a recurrent step cut where it is not elementwise.

Some steps are not elementwise throughout: multi-compartment LIF couples its neurons' voltages
(``v' = v_lif + dt·g_coupling·v_lif``), a conductance-based neuron's input comes in two channels
(excitatory and inhibitory, side by side along the last dimension), and a correlation sensor
keeps one value per synapse.  The tracer records the first as ``matvec`` nodes (a neuron vector
times a module tensor), the second as one input node per channel and the third as per-synapse
state fields read through ``pre``/``post`` views of neuron values.  A ``matvec`` needs every
neuron's argument before any neuron can use its result, so the step is cut into **stages**: a
node's level is the number of matrix products on its longest path from the inputs, and stage
``k`` holds the elementwise nodes of level ``k``; the per-synapse nodes form a last stage of
their own.  Values that cross a stage boundary, and the step's results, live in row buffers
("rows") of one value per neuron.  :func:`analyse` makes the cut; :mod:`.staged_cpp` emits the
C++ and :mod:`.staged_kernel` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from snn_backend_fused.compiler.cpp import _live
from snn_backend_fused.compiler.ir import Arg, Const, Graph, differentiate
from snn_backend_fused.compiler.trace import Traced, Untraceable

#: Where a value of the step comes from: ``("x", c)``, ``("state", k)``, ``("param", j)``,
#: ``("row", r)`` or ``("const", value)``.
Source = tuple[str, Any]


@attrs.frozen
class Stage:
    """The elementwise nodes of one level, as a graph of their own.

    Inputs: the channels, the state fields, the parameters, then the rows it reads
    (``row_ins``); outputs: the rows it computes (``row_outs``).  ``backward`` is the same
    graph plus one seed input per output and their vector-Jacobian product; ``grads`` are the
    gradients of the channels, the state fields and the rows read, in that order (``None``
    where none flows)."""

    forward: Graph
    backward: Graph
    row_ins: tuple[int, ...]
    row_outs: tuple[int, ...]
    grads: tuple[Arg | None, ...]


@attrs.frozen
class Product:
    """``rows[row] = A·a`` before stage ``level``: ``A`` is module tensor ``matrix`` (``a @ Mᵀ``
    in the step, ``transposed``) or its transpose (``a @ M``); ``a`` comes from ``source``."""

    row: int
    level: int
    matrix: int
    transposed: bool
    source: Source


@attrs.frozen
class SynapseStage:
    """The per-synapse nodes, the last stage: for each presynaptic neuron ``i`` and vector of
    postsynaptic neurons ``j``.

    Inputs: the per-synapse state fields, the neuron values they see (``views``: ``pre`` ones as
    ``v[i]`` for the whole row, ``post`` ones as ``v[j]``), the parameters (scalars only);
    outputs: the new per-synapse state fields.  ``grads``: of the synapse fields, then of the
    views."""

    forward: Graph
    backward: Graph
    views: tuple[tuple[str, Source], ...]
    grads: tuple[Arg | None, ...]


@attrs.frozen
class Staging:
    stages: tuple[Stage, ...]
    #: node (of the traced graph) held in each row buffer, and whether it is a mask
    rows: tuple[int, ...]
    masks: tuple[bool, ...]
    products: tuple[Product, ...]
    #: where the step's output and each new state field come from (``("synapse", k)``: the
    #: synapse stage's output ``k``)
    outputs: tuple[Source, ...]
    synapse: SynapseStage | None = None


def analyse(traced: Traced) -> Staging:
    """Cut ``traced``'s graph into stages at its matrix products."""
    graph = traced.graph
    channels, ns = traced.channels, len(traced.state_fields)
    inputs = graph.inputs()
    origin: dict[int, Source] = {}
    for position, node in enumerate(inputs):
        if position < channels:
            origin[node] = ("x", position)
        elif position < channels + ns:
            origin[node] = ("state", position - channels)
        else:
            origin[node] = ("param", position - channels - ns)
    synapse_fields = set(traced.synapse_fields)
    outputs = list(graph.outputs)
    neuron_outputs = [o for k, o in enumerate(outputs) if k == 0 or k - 1 not in synapse_fields]
    synapse_outputs = [o for k, o in enumerate(outputs) if k > 0 and k - 1 in synapse_fields]
    domain = _domains(traced, origin)
    for o in neuron_outputs:
        if isinstance(o, int) and domain[o] not in ("neuron", "scalar"):
            raise Untraceable("a per-neuron output computed from a per-synapse value")
    views = [
        i for i in sorted(_live(graph, synapse_outputs)) if graph.nodes[i].op in ("pre", "post")
    ]
    view_args = [graph.nodes[v].args[0] for v in views]
    live = _live(graph, neuron_outputs + view_args)
    level: dict[int, int] = {}
    for i, node in graph:
        if node.op == "input":
            level[i] = 0
            continue
        base = max((level[a] for a in node.args if isinstance(a, int)), default=0)
        level[i] = base + 1 if node.op == "matvec" else base
    crossing: set[int] = set()
    for i, node in graph:
        if i not in live or node.op == "input":
            continue
        if node.op == "matvec":
            crossing.add(i)
        for a in node.args:
            if (
                isinstance(a, int)
                and a not in origin
                and (level[a] < level[i] or node.op == "matvec")
            ):
                crossing.add(a)
    crossing.update(o for o in neuron_outputs if isinstance(o, int) and o not in origin)
    crossing.update(a for a in view_args if isinstance(a, int) and a not in origin)
    rows = tuple(sorted(crossing))
    row_of = {node: r for r, node in enumerate(rows)}

    def source(arg: Arg) -> Source:
        if isinstance(arg, Const):
            return ("const", arg.value)
        return origin[arg] if arg in origin else ("row", row_of[arg])

    products = []
    for r, node in enumerate(rows):
        if graph.nodes[node].op != "matvec":
            continue
        matrix, transposed = graph.nodes[node].attr
        where = source(graph.nodes[node].args[0])
        if where[0] not in ("x", "state", "row"):
            raise Untraceable("a matrix product of a parameter or a constant")
        products.append(Product(r, level[node], matrix, transposed, where))
    top = max((level[i] for i in live), default=0)
    stages = tuple(
        _stage(traced, k, [i for i in sorted(live) if level[i] == k], origin, row_of, level)
        for k in range(top + 1)
    )
    masks = tuple(graph.nodes[node].is_mask for node in rows)
    synapse = None
    if synapse_fields:
        synapse = _synapse_stage(traced, synapse_outputs, views, domain, source)
    ordinal = {field: n for n, field in enumerate(sorted(synapse_fields))}
    sources = [source(outputs[0])] + [
        ("synapse", ordinal[k]) if k in synapse_fields else source(o)
        for k, o in enumerate(outputs[1:])
    ]
    return Staging(stages, rows, masks, tuple(products), tuple(sources), synapse)


def _domains(traced: Traced, origin: dict[int, Source]) -> dict[int, str]:
    """Per node: ``neuron`` (one value per neuron), ``scalar``, ``syn`` (one per synapse), or
    ``pre``/``post`` (a neuron value broadcast along a synapse array's rows or columns)."""
    graph = traced.graph
    synapse_ordinals = set(traced.synapse_fields)
    domain: dict[int, str] = {}
    for i, node in graph:
        if node.op == "input":
            kind, index = origin[i]
            if kind == "state":
                domain[i] = "syn" if index in synapse_ordinals else "neuron"
            elif kind == "param":
                domain[i] = "scalar" if traced.kinds[index] == "scalar" else "neuron"
            else:
                domain[i] = "neuron"
            continue
        found = {domain[a] for a in node.args if isinstance(a, int)} - {"scalar"}
        if node.op in ("pre", "post"):
            if found - {"neuron"}:
                raise Untraceable(f"a {node.op}synaptic view of a per-synapse value")
            domain[i] = node.op
        elif not found:
            domain[i] = "scalar"
        elif len(found) == 1:
            domain[i] = found.pop()
        elif "neuron" in found:
            raise Untraceable("a per-neuron value combined with a per-synapse one")
        else:
            domain[i] = "syn"  # pre with post, or either with a synapse value
        if node.op == "matvec" and domain[i] != "neuron":
            raise Untraceable("a matrix product of a per-synapse value")
    return domain


def _synapse_stage(
    traced: Traced,
    outputs: Sequence[Arg],
    views: Sequence[int],
    domain: dict[int, str],
    source: Any,
) -> SynapseStage:
    graph = traced.graph
    channels, ns = traced.channels, len(traced.state_fields)
    inputs = graph.inputs()
    forward = Graph()
    mapping: dict[int, Arg] = {}
    for k in traced.synapse_fields:
        mapping[inputs[channels + k]] = forward.add("input", attr=f"y{k}")
    for n, view in enumerate(views):
        mapping[view] = forward.add("input", attr=f"view{n}")
    for j in range(len(traced.kinds)):
        mapping[inputs[channels + ns + j]] = forward.add("input", attr=f"p{j}")
    needed: set[int] = set()
    pending = [o for o in outputs if isinstance(o, int)]
    while pending:  # the nodes the outputs need, down to the stage's inputs (views included)
        i = pending.pop()
        if i not in needed and i not in mapping:
            needed.add(i)
            pending.extend(a for a in graph.nodes[i].args if isinstance(a, int))
    for i in sorted(needed):
        node = graph.nodes[i]
        if node.op == "input" or domain[i] == "neuron":
            raise Untraceable("a per-synapse value computed from a per-neuron one")
        for a in node.args:
            if isinstance(a, int) and graph.nodes[a].op == "input" and domain[a] == "neuron":
                raise Untraceable("a per-neuron parameter in a per-synapse expression")
        args = tuple(mapping[a] if isinstance(a, int) else a for a in node.args)
        mapping[i] = forward.add(node.op, *args, attr=node.attr)
    if any(not isinstance(o, int) for o in outputs):
        raise Untraceable("a per-synapse state field set to a constant")
    forward.outputs = [mapping[o] for o in outputs]  # type: ignore[index]
    backward = Graph(list(forward.nodes), list(forward.outputs))
    seeds = [backward.add("input", attr=f"gy{k}") for k in range(len(outputs))]
    wanted = forward.inputs()[: len(traced.synapse_fields) + len(views)]
    grads = differentiate(backward, wanted, seeds, traced.derivatives)
    described = []
    for view in views:
        where = source(graph.nodes[view].args[0])
        if where[0] not in ("x", "state", "row"):
            raise Untraceable("a synaptic view of a parameter or a constant")
        described.append((graph.nodes[view].op, where))
    return SynapseStage(forward, backward, tuple(described), tuple(grads))


def _stage(
    traced: Traced,
    k: int,
    members: Sequence[int],
    origin: dict[int, Source],
    row_of: dict[int, int],
    level: dict[int, int],
) -> Stage:
    graph = traced.graph
    members = [i for i in members if graph.nodes[i].op not in ("input", "matvec")]
    forward = Graph()
    mapping: dict[int, Arg] = {}
    for node in graph.inputs():
        mapping[node] = forward.add("input", attr=graph.nodes[node].attr)
    row_ins = sorted(
        {
            row_of[a]
            for i in members
            for a in graph.nodes[i].args
            if isinstance(a, int) and a not in origin and (level[a] < k or a not in members)
        }
    )
    for r in row_ins:
        mapping[_node_of(row_of, r)] = forward.add("input", attr=f"r{r}")
    for i in members:
        node = graph.nodes[i]
        args = tuple(mapping[a] if isinstance(a, int) else a for a in node.args)
        mapping[i] = forward.add(node.op, *args, attr=node.attr)
    row_outs = sorted(row_of[i] for i in members if i in row_of)
    forward.outputs = [mapping[_node_of(row_of, r)] for r in row_outs]
    backward = Graph(list(forward.nodes), list(forward.outputs))
    seeds = [backward.add("input", attr=f"g{r}") for r in row_outs]
    wrt = forward.inputs()
    channels, ns = traced.channels, len(traced.state_fields)
    wanted = wrt[: channels + ns] + wrt[len(graph.inputs()) :]
    grads = differentiate(backward, wanted, seeds, traced.derivatives)
    return Stage(forward, backward, tuple(row_ins), tuple(row_outs), tuple(grads))


def _node_of(row_of: dict[int, int], r: int) -> int:
    return next(node for node, row in row_of.items() if row == r)
