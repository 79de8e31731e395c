"""Large output tensors from the kernels' own block cache (see ``csrc/pool.cpp``).

``empty(shape, dtype)`` returns an uninitialised contiguous CPU tensor.  From 2 MiB up it comes
from the library's cache of 2 MiB-aligned, huge-page advised blocks, wrapped as a DLPack tensor
whose deleter gives the block back; smaller ones come from ``torch.empty``.  The cache keeps at
most 1 GiB of freed blocks (``$SNN_FUSED_CACHE_LIMIT_MB`` or :func:`set_cache_limit` to change,
:func:`empty_cache` to hand everything back to the system).
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

from snn_backend_fused import build

POOLED_MIN_BYTES = 2 << 20
_BITS = {torch.float32: 32, torch.float64: 64}

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor (from the block cache when large)."""
    numel = 1
    for n in shape:
        numel *= n
    bits = _BITS.get(dtype)
    if bits is None or numel * bits // 8 < POOLED_MIN_BYTES:
        return torch.empty(shape, dtype=dtype)
    library = build.load()
    dims = (ctypes.c_int64 * len(shape))(*shape)
    managed = library.snnf_empty(len(shape), dims, bits)
    if not managed:
        return torch.empty(shape, dtype=dtype)
    try:
        capsule = _capsule_new(managed, b"dltensor", None)
    except Exception:
        library.snnf_discard(managed)
        raise
    return torch.utils.dlpack.from_dlpack(capsule)


def cache_stats() -> dict[str, int]:
    """``cached_bytes``, ``limit_bytes``, ``hits`` and ``misses`` of the block cache."""
    values = (ctypes.c_int64 * 4)()
    build.load().snnf_pool_stats(values)
    return dict(zip(("cached_bytes", "limit_bytes", "hits", "misses"), values, strict=True))


def set_cache_limit(limit_bytes: int) -> int:
    """Keep at most ``limit_bytes`` of freed blocks (0: none); returns the previous limit."""
    if limit_bytes < 0:
        raise ValueError(f"the cache limit must be >= 0 bytes, got {limit_bytes}")
    return int(build.load().snnf_pool_limit(int(limit_bytes)))


def empty_cache() -> int:
    """Return every cached block to the system; returns the bytes released."""
    if not build.loaded():
        return 0
    return int(build.load().snnf_pool_release())


def data_pointer(tensor: Any) -> int | None:
    return None if tensor is None else tensor.data_ptr()
