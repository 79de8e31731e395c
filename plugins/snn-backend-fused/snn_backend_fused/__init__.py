"""snn-backend-fused: whole-sequence CPU kernels for snncore layers, registered as backend ``fused``.

Hand-written C++ kernels run the whole time loop of a feed-forward ``lif``, ``li``, ``lsnn``,
``lif_ex``, ``lif_adex`` and ``lif_refrac`` layer in one call, forward and backward; every other
model runs through the generic path (its step, compiled by ``torch.compile`` once that pays).
The C++ kernels compile on first use and are cached per user (see :mod:`snn_backend_fused.build`).
On CUDA the same layers run Triton kernels (:mod:`snn_backend_fused.triton`, imported only when a
CUDA tensor arrives; verified through Triton's interpreter only).
``backend="auto"`` chooses ``fused`` where a kernel runs the request; ``backend="fused"`` runs
every model.  Design and measurements: docs/backend-fused.md.
"""

from snn_backend_fused.backend import FusedBackend, FusedUnavailableWarning
from snn_backend_fused.buffers import cache_stats, empty_cache, set_cache_limit
from snn_backend_fused.build import FusedBuildError
from snn_backend_fused.generic import GenericPathWarning, generic_mode, set_generic_mode
from snn_backend_fused.kernels import KERNELS, SURROGATES

__version__ = "0.1.0"

__all__ = [
    "KERNELS",
    "SURROGATES",
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
