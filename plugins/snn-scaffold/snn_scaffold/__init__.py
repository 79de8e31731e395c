"""snn-scaffold: ``snn new-plugin NAME`` writes a new neuron plugin, ready to install and test.

The files are the worked example, examples/snn-qif (the quadratic integrate-and-fire neuron in one
file, with its ``pyproject.toml``, tests and README), carried as package data in
``snn_scaffold/template/`` and written with its names replaced (:mod:`snn_scaffold.scaffold`).
``import snn_scaffold`` stays cheap: nothing here imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"
