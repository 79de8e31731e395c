"""The NIR mapping contract: what a plugin registers through ``register_nir``, and the lookups.

A :class:`NIRMapping` ties one snncore neuron model to NIR (the Neuromorphic Intermediate
Representation, https://neuroir.org): ``to_node`` writes a module's parameters as a NIR neuron
node, ``from_node`` builds a step module from NIR nodes of the types in ``nodes``.  Plugins
register mappings like every other object (``register(NIRMapping(...))``), so the core's graph
walk never names a model.  ``nir`` itself is imported only inside functions (:func:`require_nir`):
``import snncore`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from snncore.plugins import get_manager

#: NIR's neuron node types (nir 1.0.8), named in the error for a model without an equivalent.
NIR_NEURON_NODES = ("LIF", "CubaLIF", "LI", "CubaLI", "IF", "I")
#: How a CubaLIF/CubaLI graph is read: NIR's Euler reading, or the one Norse 1.1's exporter meant.
CONVENTIONS = ("nir", "norse")
#: How ``to_nir`` writes neuron nodes: "nir" (``CubaLIF(r=1, w_in=tau_syn/dt)``) or "snntorch"
#: (the same dynamics under the Euler reading in the parametrisation snnTorch 1.0's importer
#: accepts, ``r = tau_mem/dt``; snnTorch integrates at :data:`SNNTORCH_DT`).
EXPORT_CONVENTIONS = ("nir", "snntorch")
#: The step snnTorch 1.0's exporter and importer assume, in seconds.
SNNTORCH_DT = 1e-4


class NIRUnavailableError(ImportError):
    """``nir`` is not installed: the message names the optional extra that installs it."""


class NIRError(ValueError):
    """A network that NIR cannot express, or a graph snncore cannot run; one-line message."""


def require_nir() -> Any:
    """The ``nir`` module, or :class:`NIRUnavailableError` naming the extra."""
    try:
        import nir
    except ImportError:
        raise NIRUnavailableError(
            "NIR support needs the optional extra: pip install 'snncore[nir]' (installs nir and "
            "nirtorch)"
        ) from None
    return nir


@attrs.frozen
class NIRMapping:
    """How one snncore model maps to NIR; registered with ``register_nir``.

    ``to_node(p, shape, dt) -> nir.NIRNode``: the neuron node for parameters ``p`` (the module's
    current ones, per-neuron tensors included) of a population of ``shape`` at step ``dt``
    seconds; every array of the node must have that shape (``nir.read`` refuses scalars).
    ``conventions``: the :data:`EXPORT_CONVENTIONS` ``to_node`` writes; for any but "nir" it is
    called as ``to_node(p, shape, dt, convention=...)`` (a mapping that lists only "nir" keeps
    the three-argument signature, and ``to_nir(convention=...)`` refuses its model).
    ``from_node(node, dt, convention) -> torch.nn.Module``: a step module
    ``forward(x (batch, *shape), state=None) -> (out, state)`` for a node of one of ``nodes``
    (NIR class names); ``convention`` is one of :data:`CONVENTIONS`.
    """

    name: str
    model: str | None = None
    to_node: Callable[..., Any] | None = None
    nodes: tuple[str, ...] = ()
    from_node: Callable[..., Any] | None = None
    summary: str = ""
    conventions: tuple[str, ...] = ("nir",)


def mappings() -> list[NIRMapping]:
    """Every registered mapping (``PLUGIN:NAME`` conflicts are the registry's to report)."""
    return [e.obj for e in get_manager().registry("nir").entries()]


def exporter_for(model_name: str) -> NIRMapping | None:
    """The mapping that exports ``model_name``, or None."""
    found = [m for m in mappings() if m.model == model_name and m.to_node is not None]
    return found[0] if found else None


def importers_for(node_type: str) -> list[NIRMapping]:
    """The plugin mappings that import NIR nodes of class ``node_type``."""
    return [m for m in mappings() if node_type in m.nodes and m.from_node is not None]


def no_equivalent(what: str) -> NIRError:
    """The error for a model or module NIR has no node for."""
    return NIRError(
        f"{what} has no NIR equivalent; NIR neuron nodes: {', '.join(NIR_NEURON_NODES)} "
        f"(snncore exports the models: {', '.join(sorted(m.model for m in mappings() if m.model)) or 'none'})"
    )
