"""``from_nir``: a NIR graph becomes a time-major module ``(x (T, B, ...), state) -> (out, state)``.

Every node becomes a step module (stateless torch modules for the linear, convolution, pooling,
flatten, scale and threshold nodes; registered :class:`~snncore.nir.NIRMapping` importers for
the neuron nodes, with exact built-in neurons for ``LIF``, ``LI``, ``IF`` and ``I``).  The graph
runs one time step at a time, each node on the sum of its inputs (NIR's rule).  A cycle carries
the previous step's output of the last neuron on it: the edge leaving that neuron is delayed by
one step (zeros before the first step), so a recurrent ``Affine`` adds its bias from step 0, as
the snnTorch networks such graphs come from compute it.  Nested graphs are inlined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from snncore.nir._mapping import CONVENTIONS, NIRError, importers_for, require_nir
from snncore.nir._neurons import NATIVE_NEURONS, Scale, SumPool2d, Threshold, as_tensor
from snncore.nir._neurons import neuron_from_node as native_neuron

STATELESS = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten", "SumPool2d",
             "AvgPool2d", "Threshold")  # fmt: skip


def read_graph(graph_or_path: Any) -> Any:
    """A ``nir.NIRGraph`` from a graph or a file path; a missing or unreadable file is an error."""
    nir = require_nir()
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    path = Path(graph_or_path)
    if not path.is_file():
        raise NIRError(f"no such NIR file: {path}")
    try:
        return nir.read(path)
    except Exception as exc:  # h5py, KeyError, shape assertions: one line naming the file
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NIRError(f"cannot read NIR graph {path}: {detail}") from None


def flatten_graph(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nodes and edges with every nested graph inlined (its nodes named ``outer.inner``)."""
    nir = require_nir()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = flatten_graph(node, full + ".")
            nodes.update(inner_nodes)
            edges += inner_edges
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) == 1:
                entry[full] = f"{full}.{ins[0]}"
            if len(outs) == 1:
                exit_[full] = f"{full}.{outs[0]}"
        else:
            nodes[full] = node
    for source, target in graph.edges:
        source, target = prefix + source, prefix + target
        edges.append((exit_.get(source, source), entry.get(target, target)))
    for source, target in edges:
        for end in (source, target):
            if end not in nodes:
                raise NIRError(f"the graph has an edge to or from {end!r}, which is not a node")
    return nodes, edges


def _shape(types: Any, key: str) -> tuple[int, ...] | None:
    value = (types or {}).get(key)
    if value is None:
        return None
    return tuple(int(s) for s in np.asarray(value).reshape(-1))


def _pair(value: Any) -> Any:
    if isinstance(value, str):
        return value
    array = np.asarray(value).reshape(-1)
    return tuple(int(v) for v in array) if array.size > 1 else int(array[0])


def _conv(node: Any, dims: int) -> torch.nn.Module:
    weight = as_tensor(node.weight)
    conv_class = torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d
    bias = node.bias is not None and np.asarray(node.bias).size > 0
    module = conv_class(
        weight.shape[1] * int(node.groups),
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=_pair(node.stride),
        padding=_pair(node.padding),
        dilation=_pair(node.dilation),
        groups=int(node.groups),
        bias=bias,
    )
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias:
            module.bias.copy_(as_tensor(node.bias))
    return module


class StepFlatten(torch.nn.Module):
    """NIR ``Flatten(start_dim, end_dim)`` (dims of one sample) on ``(batch, ...)``."""

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = self.start_dim + 1 if self.start_dim >= 0 else self.start_dim
        end = self.end_dim + 1 if self.end_dim >= 0 else self.end_dim
        return x.flatten(start, end)


def stateless_module(node: Any) -> torch.nn.Module:
    """The torch module of a stateless NIR node (one time step, batch first)."""
    kind = type(node).__name__
    if kind in ("Affine", "Linear"):
        weight = as_tensor(node.weight)
        module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=kind == "Affine")
        with torch.no_grad():
            module.weight.copy_(weight)
            if kind == "Affine":
                module.bias.copy_(as_tensor(node.bias))
        return module
    if kind == "Scale":
        return Scale(as_tensor(node.scale))
    if kind in ("Conv1d", "Conv2d"):
        return _conv(node, 1 if kind == "Conv1d" else 2)
    if kind == "Flatten":
        return StepFlatten(node.start_dim, node.end_dim)
    if kind == "SumPool2d":
        return SumPool2d(node.kernel_size, node.stride, node.padding)
    if kind == "AvgPool2d":
        return torch.nn.AvgPool2d(_pair(node.kernel_size), _pair(node.stride), _pair(node.padding))
    if kind == "Threshold":
        return Threshold(as_tensor(node.threshold))
    raise AssertionError(kind)


def _known_types() -> list[str]:
    from snncore.nir._mapping import mappings

    plugged = {t for m in mappings() if m.from_node is not None for t in m.nodes}
    return sorted({"Input", "Output", "Identity", *STATELESS, *NATIVE_NEURONS, *plugged})


def node_module(name: str, node: Any, dt: float, convention: str) -> tuple[torch.nn.Module, bool]:
    """``(step module, stateful)`` for one node."""
    kind = type(node).__name__
    importers = importers_for(kind)
    if len(importers) > 1:
        names = ", ".join(m.name for m in importers)
        raise NIRError(f"NIR node type {kind} is imported by more than one mapping: {names}")
    if importers:
        return importers[0].from_node(node, dt, convention), True
    if kind in NATIVE_NEURONS:
        return native_neuron(node, dt, convention), True
    if kind in STATELESS:
        return stateless_module(node), False
    raise NIRError(
        f"unknown NIR node type {kind} (node {name!r}); snncore reads: {', '.join(_known_types())}"
    )


def _cut_edges(
    order: list[str], edges: list[tuple[str, str]], stateful: set[str]
) -> set[tuple[str, str]]:
    """The edges that carry the previous step: on each cycle, the one leaving its last neuron."""
    successors: dict[str, list[str]] = {n: [] for n in order}
    for s, t in edges:
        successors[s].append(t)
    cut: set[tuple[str, str]] = set()
    colour: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        colour[node] = 1
        path.append(node)
        for target in successors[node]:
            if (node, target) in cut:
                continue
            if colour.get(target) == 1:  # a back edge closes the cycle path[i:] -> target
                cycle = path[path.index(target) :]
                neurons = [i for i, n in enumerate(cycle) if n in stateful]
                if not neurons:
                    raise NIRError(
                        f"the graph has a cycle without a neuron ({' -> '.join(cycle)} -> "
                        f"{target}): it cannot be run step by step"
                    )
                last = neurons[-1]
                after = cycle[last + 1] if last + 1 < len(cycle) else target
                cut.add((cycle[last], after))
            elif colour.get(target) is None:
                visit(target, path)
        path.pop()
        colour[node] = 2

    for node in order:
        if node not in colour:
            visit(node, [])
    return cut


def _topological(nodes: list[str], edges: list[tuple[str, str]]) -> list[str]:
    incoming = {n: 0 for n in nodes}
    for _, t in edges:
        incoming[t] += 1
    ready = [n for n in nodes if incoming[n] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for s, t in edges:
            if s == node:
                incoming[t] -= 1
                if incoming[t] == 0:
                    ready.append(t)
    if len(order) != len(nodes):
        raise NIRError("the graph has a cycle that no neuron breaks; it cannot be run step by step")
    return order


class NIRGraphModule(torch.nn.Module):
    """A NIR graph run step by step: ``forward(x (T, B, *input_shape), state=None)``.

    Returns ``(output (T, B, *output_shape), state)``; with several ``Input`` (``Output``) nodes,
    ``x`` (the output) is a dict keyed by node name.  ``state`` is a dict: each neuron's state and
    each delayed value, passed back to continue where the last call stopped.
    """

    def __init__(self, graph: Any, dt: float = 0.001, convention: str = "nir") -> None:
        super().__init__()
        if convention not in CONVENTIONS:
            raise NIRError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        nir = require_nir()
        nodes, edges = flatten_graph(graph)
        self.dt, self.convention = float(dt), convention
        self.inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
        self.outputs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
        if not self.inputs or not self.outputs:
            raise NIRError("the graph needs at least one Input and one Output node")
        self.input_shapes = {n: _shape(nodes[n].input_type, "input") for n in self.inputs}
        self.node_modules = torch.nn.ModuleList()
        self.index: dict[str, int] = {}
        self.stateful: set[str] = set()
        self.kinds = {n: type(v).__name__ for n, v in nodes.items()}
        self.out_shapes = {
            n: _shape(getattr(v, "output_type", None), "output") for n, v in nodes.items()
        }
        for name, node in nodes.items():
            if isinstance(node, (nir.Input, nir.Output)) or type(node).__name__ == "Identity":
                continue
            module, is_stateful = node_module(name, node, dt, convention)
            self.index[name] = len(self.node_modules)
            self.node_modules.append(module)
            if is_stateful:
                self.stateful.add(name)
        order = list(nodes)
        self.cut = _cut_edges(
            self.inputs + [n for n in order if n not in self.inputs], edges, self.stateful
        )
        kept = [e for e in edges if e not in self.cut]
        self.order = _topological(order, kept)
        self.sources = {n: [s for s, t in kept if t == n] for n in self.order}
        self.delayed = {n: [s for s, t in self.cut if t == n] for n in self.order}

    @property
    def recurrent(self) -> bool:
        return bool(self.cut)

    def _zeros(self, source: str, batch: int, like: torch.Tensor) -> torch.Tensor:
        shape = self.out_shapes.get(source)
        if shape is None:
            raise NIRError(f"node {source!r} feeds a cycle but its output shape is unknown")
        return like.new_zeros((batch, *shape))

    def _step(
        self, inputs: dict[str, torch.Tensor], state: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {}
        batch = next(iter(inputs.values())).shape[0]
        like = next(iter(inputs.values()))
        for name in self.order:
            if name in inputs:
                values[name] = inputs[name]
                continue
            terms = [values[s] for s in self.sources[name]]
            for s in self.delayed[name]:
                previous = state["delayed"].get(s)
                terms.append(self._zeros(s, batch, like) if previous is None else previous)
            if not terms:
                raise NIRError(f"node {name!r} ({self.kinds[name]}) has no input")
            x = terms[0]
            try:
                for term in terms[1:]:
                    x = x + term
                if name not in self.index:  # Output, Identity
                    values[name] = x
                    continue
                module = self.node_modules[self.index[name]]
                if name in self.stateful:
                    values[name], state["nodes"][name] = module(x, state["nodes"].get(name))
                else:
                    values[name] = module(x)
            except RuntimeError as exc:
                detail = str(exc).splitlines()[0]
                raise NIRError(
                    f"node {name!r} ({self.kinds[name]}) cannot take input of shape "
                    f"{tuple(x.shape[1:])}: {detail}"
                ) from None
        for s, _ in self.cut:
            state["delayed"][s] = values[s]
        return values

    def forward(self, x: Any, state: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        given = x if isinstance(x, dict) else {self.inputs[0]: x}
        if not isinstance(x, dict) and len(self.inputs) > 1:
            raise NIRError(f"the graph has inputs {self.inputs}: pass a dict of tensors")
        for name, tensor in given.items():
            if name not in self.input_shapes:
                raise NIRError(f"no Input node {name!r}; the graph's inputs: {self.inputs}")
            want = self.input_shapes[name]
            if tensor.dim() < 2 or (want is not None and tuple(tensor.shape[2:]) != want):
                raise NIRError(
                    f"input {name!r} must have shape (time, batch, *{want}), got {tuple(tensor.shape)}"
                )
        state = {"nodes": {}, "delayed": {}} if state is None else {
            "nodes": dict(state["nodes"]), "delayed": dict(state["delayed"])}  # fmt: skip
        steps = next(iter(given.values())).shape[0]
        collected: dict[str, list[torch.Tensor]] = {n: [] for n in self.outputs}
        for t in range(steps):
            values = self._step({n: v[t] for n, v in given.items()}, state)
            for name in self.outputs:
                collected[name].append(values[name])
        out = {n: torch.stack(v) for n, v in collected.items()}
        return (out[self.outputs[0]] if len(self.outputs) == 1 else out), state


def from_nir(graph_or_path: Any, dt: float = 0.001, convention: str = "nir") -> NIRGraphModule:
    """The NIR graph (or ``.nir`` file) as a time-major module; see :class:`NIRGraphModule`.

    ``dt`` (seconds) is the step the graph is integrated at (NIR stores none).  ``convention``:
    ``"nir"`` reads ``CubaLIF``/``CubaLI`` as Euler on NIR's equations (as snnTorch's exporter
    writes them and snncore's too); ``"norse"`` as Norse 1.1's exporter meant them (docs/nir.md).
    """
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise NIRError(f"dt must be a positive number of seconds, got {dt!r}")
    module = NIRGraphModule(read_graph(graph_or_path), dt, convention)
    probe = {}
    for name, shape in module.input_shapes.items():
        if shape is None:
            return module
        probe[name] = torch.zeros((1, 1, *shape))
    with torch.no_grad():  # one step on zeros: wrong shapes fail here, naming the node
        module(probe if len(probe) > 1 else next(iter(probe.values())))
    return module
