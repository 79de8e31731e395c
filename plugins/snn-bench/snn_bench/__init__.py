"""snn-bench: ``snn bench``, a feed-forward layer on every backend beside the installed peer
libraries (Norse, snnTorch, SpikingJelly), with the memory-bandwidth bound and peak memory.

The benchmark itself is :func:`snn_bench.bench.run_bench`; ``import snn_bench`` stays cheap (torch
is imported only by :mod:`snn_bench.bench`).
"""

from __future__ import annotations

__version__ = "0.1.0"
