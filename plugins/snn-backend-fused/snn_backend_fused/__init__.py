"""snn-backend-fused: whole-sequence kernels for snncore layers, registered as backend ``fused``.

On the CPU, every model's feed-forward layer runs a C++ kernel generated from its step function
(:mod:`snn_backend_fused.compiler`: the whole time loop in one call, forward and backward, built
on first use per step and ISA), and so does the recurrent layer of every model whose recurrent
input is a plain weighted sum.  The C++ compiles on first use and is cached per user (see
:mod:`snn_backend_fused.build`).  On CUDA every model's feed-forward layer runs Triton
generated from the same step (:mod:`snn_backend_fused.compiler.triton_emit`; Triton is imported
only when a kernel is loaded; checked through Triton's interpreter and compiled for sm_90, never
run on a GPU).  Every other request runs through the generic path (its step, compiled by
``torch.compile`` once that pays).  ``backend="auto"`` chooses ``fused`` where a kernel runs the request;
``backend="fused"`` runs every model.  Design and measurements: docs/backend-fused.md.
"""

from snn_backend_fused.backend import FusedBackend, FusedUnavailableWarning
from snn_backend_fused.buffers import cache_stats, empty_cache, set_cache_limit
from snn_backend_fused.build import FusedBuildError
from snn_backend_fused.generic import GenericPathWarning, generic_mode, set_generic_mode

__version__ = "0.1.0"

__all__ = [
    "FusedBackend",
    "FusedBuildError",
    "FusedUnavailableWarning",
    "GenericPathWarning",
    "cache_stats",
    "empty_cache",
    "generic_mode",
    "set_cache_limit",
    "set_generic_mode",
]
