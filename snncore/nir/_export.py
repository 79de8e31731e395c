"""``to_nir``: a chain of snncore and torch modules becomes a ``nir.NIRGraph``.

The walk reads ``SequentialState`` and ``torch.nn.Sequential`` (nested ones too) as chains,
``Lift(m)`` as ``m`` on one step, and maps each element to NIR nodes:

- ``torch.nn.Linear`` → ``Affine`` (``Linear`` without bias); ``Conv1d``/``Conv2d`` → the node of
  that name; ``Flatten`` → ``Flatten``; ``AvgPool2d`` → ``AvgPool2d``; ``MaxPool2d`` on spikes →
  ``SumPool2d`` then ``Threshold(0.5)`` (equal on 0/1 input; refused elsewhere);
- a neuron module (any variant of a registered model) → its plugin's ``to_node``; a recurrent
  variant becomes ``Linear(input_weights)`` → neuron, with a cycle neuron → ``Linear(
  recurrent_weights)`` → neuron (one step of delay, as NIR readers run cycles);
- a module with a ``to_nir(shape, dt)`` method (what ``from_nir`` builds) → that node.

``convention`` (:data:`~snncore.nir.EXPORT_CONVENTIONS`) picks how neuron nodes are written:
"nir" (the default) or "snntorch", the same network in the parametrisation snnTorch 1.0's
importer accepts (it needs ``dt = 1e-4``).  The model's mapping writes it (``to_node(...,
convention=...)``, for mappings that list the convention); a ``to_nir`` method that takes a
``convention`` keyword gets it, others write their node as is.

Shapes come from running ``sample_input`` (or zeros of the first layer's input size) through the
chain once, element by element.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from snncore.containers import Lift, SequentialState
from snncore.modules import NeuronModule
from snncore.nir._mapping import (
    EXPORT_CONVENTIONS,
    SNNTORCH_DT,
    NIRError,
    exporter_for,
    no_equivalent,
    require_nir,
)

#: Node types whose output is 0/1 spikes.
SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")


def keys_node(made: list[tuple[str, Any]]) -> Any:
    """The neuron node among a neuron's nodes."""
    return dict(made)["neuron"]


def _elements(module: torch.nn.Module, lead: int) -> list[tuple[torch.nn.Module, int]]:
    """``(element, leading dims)``: 2 for ``(T, B, ...)`` children, 1 inside ``Lift``."""
    if isinstance(module, (SequentialState, torch.nn.Sequential)):
        return [item for child in module for item in _elements(child, lead)]
    if isinstance(module, Lift):
        return _elements(module.lifted_module, 1)
    return [(module, lead)]


def _run(element: torch.nn.Module, x: torch.Tensor, lead: int) -> torch.Tensor:
    """The element's output on ``x`` laid out with ``lead`` leading dims."""
    from snncore.containers import is_stateful

    if lead == 1 and x.dim() >= 2 and not isinstance(element, NeuronModule):
        x = x[0]  # one step of (T, B, ...)
        out = element(x, None)[0] if is_stateful(element) else element(x)
        return out.unsqueeze(0)
    if isinstance(element, NeuronModule) and element.variant in ("cell", "recurrent_cell"):
        return element(x[0])[0].unsqueeze(0)
    return element(x, None)[0] if is_stateful(element) else element(x)


def _first_input_shape(element: torch.nn.Module) -> tuple[int, ...]:
    if isinstance(element, torch.nn.Linear):
        return (element.in_features,)
    if isinstance(element, NeuronModule) and hasattr(element, "input_size"):
        return (element.input_size,)
    raise NIRError(
        f"cannot tell the input shape of a network starting with {type(element).__name__}: "
        "give sample_input (time, batch, ...)"
    )


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _neuron_nodes(
    element: NeuronModule, shape: tuple[int, ...], dt: float, convention: str = "nir"
) -> list[tuple[str, Any]]:
    nir = require_nir()
    model = element.model.name
    mapping = exporter_for(model)
    if mapping is None:
        raise no_equivalent(model)
    if abs(element.dt - dt) > 1e-12 * dt:
        raise NIRError(
            f"{model} module runs at dt={element.dt} s but to_nir was given dt={dt} s: pass "
            f"dt={element.dt}"
        )
    if convention == "nir":
        node = mapping.to_node(element.parameters_now(), shape, dt)
    elif convention in mapping.conventions:
        node = mapping.to_node(element.parameters_now(), shape, dt, convention=convention)
    else:
        raise NIRError(
            f"{model}'s NIR mapping writes only the conventions {', '.join(mapping.conventions)}, "
            f"not {convention!r}"
        )
    if element.variant in ("cell", "layer"):
        weights = getattr(element, "input_weights", None)  # e.g. LILinearCell: i1 = i + W·x
        if weights is None:
            return [("neuron", node)]
        return [("input_weights", nir.Linear(weight=_array(weights))), ("neuron", node)]
    return [
        ("input_weights", nir.Linear(weight=_array(element.input_weights))),
        ("neuron", node),
        ("recurrent_weights", nir.Linear(weight=_array(element.recurrent_weights))),
    ]


def _pool_args(module: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def pair(v: Any) -> np.ndarray:
        return np.array(
            np.broadcast_to(np.asarray(v if v is not None else 0), (2,)), dtype=np.int64
        )

    stride = module.stride if module.stride is not None else module.kernel_size
    return pair(module.kernel_size), pair(stride), pair(module.padding)


def _stateless_nodes(
    element: torch.nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
    lead: int, spiking_input: bool, dt: float, convention: str = "nir",
) -> list[tuple[str, Any]]:  # fmt: skip
    nir = require_nir()
    name = type(element).__name__
    if hasattr(element, "to_nir"):
        if convention != "nir" and "convention" in inspect.signature(element.to_nir).parameters:
            return [(name, element.to_nir(out_shape, dt, convention=convention))]
        return [(name, element.to_nir(out_shape, dt))]
    if isinstance(element, torch.nn.Linear):
        if element.bias is None:
            return [(name, nir.Linear(weight=_array(element.weight)))]
        return [(name, nir.Affine(weight=_array(element.weight), bias=_array(element.bias)))]
    if isinstance(element, (torch.nn.Conv1d, torch.nn.Conv2d)):
        if element.padding_mode != "zeros":
            raise NIRError(f"{name} with padding_mode={element.padding_mode!r} has no NIR node")
        node_class = nir.Conv1d if isinstance(element, torch.nn.Conv1d) else nir.Conv2d
        spatial = in_shape[1:]
        bias = element.bias if element.bias is not None else torch.zeros(element.out_channels)
        single = isinstance(element, torch.nn.Conv1d)
        return [(name, node_class(
            input_shape=spatial[0] if single else tuple(spatial),
            weight=_array(element.weight),
            stride=element.stride[0] if single else element.stride,
            padding=element.padding if isinstance(element.padding, str) else (element.padding[0] if single else element.padding),
            dilation=element.dilation[0] if single else element.dilation,
            groups=element.groups,
            bias=_array(bias),
        ))]  # fmt: skip
    if isinstance(element, torch.nn.Flatten):
        full = len(in_shape) + lead
        start = element.start_dim % full - lead
        end = element.end_dim % full - lead
        if start < 0:
            raise NIRError("Flatten may not flatten the time or batch dimension for NIR")
        return [
            (
                name,
                nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end),
            )
        ]
    if isinstance(element, torch.nn.AvgPool2d):
        if not element.count_include_pad or element.ceil_mode or element.divisor_override:
            raise NIRError(
                "AvgPool2d maps to NIR only with the defaults count_include_pad=True, ceil_mode=False"
            )
        return [(name, nir.AvgPool2d(*_pool_args(element)))]
    if isinstance(element, torch.nn.MaxPool2d):
        if not spiking_input or element.dilation not in (1, (1, 1)) or element.ceil_mode:
            raise no_equivalent(
                "MaxPool2d (NIR has SumPool2d and AvgPool2d; max-pooling of 0/1 spikes is "
                "written as SumPool2d + Threshold)"
            )
        return [
            ("SumPool2d", nir.SumPool2d(*_pool_args(element))),
            ("Threshold", nir.Threshold(threshold=np.full(out_shape, 0.5))),
        ]
    raise no_equivalent(f"module {name}")


def to_nir(
    module: torch.nn.Module,
    sample_input: torch.Tensor | None = None,
    dt: float = 0.001,
    convention: str = "nir",
) -> Any:
    """``module`` (time-major, see the module doc) as a ``nir.NIRGraph``; ``dt`` in seconds is
    the step the neuron nodes' parameters are written for (e.g. ``CubaLIF.w_in = tau_syn/dt``).

    ``convention="snntorch"`` writes the same network so that snnTorch 1.0's ``import_from_nir``
    accepts it (``CubaLIF(r = tau_mem/dt, w_in = tau_syn/tau_mem)``); snnTorch integrates at
    ``dt = 1e-4`` only, so the network must run at that step.  ``from_nir`` reads either exactly.
    """
    nir = require_nir()
    if convention not in EXPORT_CONVENTIONS:
        raise NIRError(f"convention must be one of {EXPORT_CONVENTIONS}, got {convention!r}")
    if convention == "snntorch" and abs(dt - SNNTORCH_DT) > 1e-12 * SNNTORCH_DT:
        raise NIRError(
            f"convention='snntorch' needs dt={SNNTORCH_DT} (snnTorch's importer integrates at "
            f"that step only), got dt={dt}: build the network with dt={SNNTORCH_DT}"
        )
    elements = _elements(module, 2)
    if sample_input is None:
        sample_input = torch.zeros((1, 1, *_first_input_shape(elements[0][0])))
    x = sample_input[:1].detach()
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(x.shape[2:])})}
    edges: list[tuple[str, str]] = []
    last, spiking, counts = "input", False, {}

    def add(kind: str, node: Any) -> str:
        kind = kind.lower()
        counts[kind] = counts.get(kind, 0) + 1
        key = f"{kind}{counts[kind]}"
        nodes[key] = node
        return key

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for element, lead in elements:
                in_shape = tuple(x.shape[2:])
                y = _run(element, x, 2 if isinstance(element, NeuronModule) else lead)
                out_shape = tuple(y.shape[2:])
                if isinstance(element, NeuronModule):
                    made = _neuron_nodes(element, out_shape, dt, convention)
                    keys = {
                        role: add(element.model.name if role == "neuron" else "linear", node)
                        for role, node in made
                    }
                    if "recurrent_weights" in keys:
                        edges += [(last, keys["input_weights"]), (keys["input_weights"], keys["neuron"]),
                                  (keys["neuron"], keys["recurrent_weights"]), (keys["recurrent_weights"], keys["neuron"])]  # fmt: skip
                    elif "input_weights" in keys:
                        edges += [
                            (last, keys["input_weights"]),
                            (keys["input_weights"], keys["neuron"]),
                        ]
                    else:
                        edges.append((last, keys["neuron"]))
                    last = keys["neuron"]
                    spiking = type(keys_node(made)).__name__ in SPIKING
                else:
                    made = _stateless_nodes(
                        element, in_shape, out_shape, lead, spiking, dt, convention
                    )
                    for _, node in made:
                        key = add(type(node).__name__, node)
                        edges.append((last, key))
                        last = key
                    kept = spiking and isinstance(element, (torch.nn.Flatten, torch.nn.Dropout))
                    spiking = kept or type(made[-1][1]).__name__ in SPIKING
                x = y
    finally:
        module.train(was_training)
    nodes["output"] = nir.Output(output_type={"output": np.array(x.shape[2:])})
    edges.append((last, "output"))
    try:
        return nir.NIRGraph(
            nodes=nodes,
            edges=edges,
            metadata={"exporter": "snncore", "dt": dt, "convention": convention},
        )
    except Exception as exc:
        raise NIRError(f"NIR refused the exported graph: {str(exc).splitlines()[0]}") from None
