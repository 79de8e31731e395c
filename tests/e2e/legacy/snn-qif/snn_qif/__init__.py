"""snn-qif: the quadratic integrate-and-fire neuron as an snncore plugin (a worked example).

Use it through the registry, ``snncore.create("qif", variant="layer")``, or by its classes::

    from snn_qif import QIFCell, QIFParameters

    cell = QIFCell(p=QIFParameters(v_th=1.0), dt=0.001)
    z, state = cell(x)
"""

from snn_qif.qif import (
    QIF,
    QIF_MODEL,
    QIFCell,
    QIFFeedForwardState,
    QIFParameters,
    QIFRecurrent,
    QIFRecurrentCell,
    QIFState,
    qif_feed_forward_step,
    qif_recurrent_step,
)

__version__ = "0.1.0"

__all__ = [
    "QIF",
    "QIF_MODEL",
    "QIFCell",
    "QIFFeedForwardState",
    "QIFParameters",
    "QIFRecurrent",
    "QIFRecurrentCell",
    "QIFState",
    "qif_feed_forward_step",
    "qif_recurrent_step",
]
