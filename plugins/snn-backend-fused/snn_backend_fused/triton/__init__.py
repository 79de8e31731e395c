"""The CUDA kernels of the fused backend, written in Triton.

The hand-written kernels' contract (:mod:`snn_backend_fused.kernels`): one
:class:`~snn_backend_fused.kernels.KernelSpec` per model, the whole time loop inside one kernel,
each program owning a block of neurons with their state in registers, forward and a hand-written
backward (no per-step graph), the surrogate a compile-time number (one kernel source, not one per
surrogate), parameters scalar or per neuron, and the calls that would not be exact declined by
the same rules (``kernels.check``).  Computation is in float32 for float16/bfloat16/float32
inputs and in float64 for float64; outputs are stored in the input's dtype.

Nothing here imports Triton until a CUDA tensor (or the interpreter) asks for it: importing the
backend does not need Triton, and without it the backend refuses CUDA requests with the reason
(:func:`unavailable`).  Under Triton's interpreter (``TRITON_INTERPRET=1`` in the environment
*before* Triton is imported) :func:`run` also runs on CPU tensors -- how the tests check the
kernels on a machine without a GPU; ``backend="fused"`` never takes this path on the CPU.

Files: ``common.py`` (parameter loads, spike, surrogates), ``lif.py`` (LIF, LI), ``lsnn.py``,
``adex.py`` (LIFEx, LIFAdEx), ``refrac.py`` (LIFRefrac), ``launch.py`` (arguments, the autograd
function, the launches).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch

from snn_backend_fused.kernels import KernelSpec

__all__ = ["interpreting", "run", "unavailable"]


@functools.cache
def unavailable() -> str | None:
    """``None`` where Triton imports, else why not (checked once per process)."""
    try:
        import triton
        import triton.language  # noqa: F401
    except Exception as exc:  # ImportError, or a broken installation
        return f"Triton is not importable ({type(exc).__name__}: {exc})"
    return None


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (``TRITON_INTERPRET``, read as Triton reads
    it: the kernels are decorated for the interpreter only if it was set before the import)."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


def run(
    spec: KernelSpec, x: torch.Tensor, state: Any, p: Any, dt: float
) -> tuple[torch.Tensor, Any] | None:
    """All ``T`` steps of ``spec``'s model through its Triton kernel, or ``None`` where the
    kernel does not apply exactly (the caller then takes the eager loop).  CUDA tensors; CPU
    tensors only under the interpreter."""
    if unavailable() is not None:
        return None
    from snn_backend_fused.triton import launch

    return launch.run(spec, x, state, p, dt)
