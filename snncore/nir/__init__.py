"""Exchange networks with other simulators and neuromorphic hardware through NIR.

``to_nir(module, sample_input=None, dt=0.001, convention="nir") -> nir.NIRGraph`` and
``from_nir(graph_or_path, dt=0.001, convention="nir") -> NIRGraphModule`` (time-major,
``(x (T, B, ...), state) -> (out, state)``).  The conventions (dt, units, ``r`` and ``w_in``,
reset, spike condition) and the peers' readings are in docs/nir.md.  Models state their own
mapping through the ``register_nir`` hook (:class:`NIRMapping`).  ``nir`` is an optional extra
(``pip install 'snncore[nir]'``), imported only when a function here runs.
"""

from __future__ import annotations

from snncore.nir._export import to_nir
from snncore.nir._import import NIRGraphModule, from_nir, read_graph
from snncore.nir._mapping import (
    CONVENTIONS,
    EXPORT_CONVENTIONS,
    NIR_NEURON_NODES,
    NIRError,
    NIRMapping,
    NIRUnavailableError,
    require_nir,
)
from snncore.nir._neurons import (
    NIRIFNeuron,
    NIRIntegrator,
    NIRLIFNeuron,
    NIRLINeuron,
    Scale,
    SumPool2d,
    Threshold,
    as_tensor,
    inverse,
)

__all__ = [
    "CONVENTIONS",
    "EXPORT_CONVENTIONS",
    "NIR_NEURON_NODES",
    "NIRError",
    "NIRGraphModule",
    "NIRIFNeuron",
    "NIRIntegrator",
    "NIRLIFNeuron",
    "NIRLINeuron",
    "NIRMapping",
    "NIRUnavailableError",
    "Scale",
    "SumPool2d",
    "Threshold",
    "as_tensor",
    "from_nir",
    "inverse",
    "read_graph",
    "require_nir",
    "to_nir",
]
