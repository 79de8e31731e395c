"""Pieces every Triton kernel of the fused backend shares: parameter loads, state-row loads and
stores, the backward pass's pointers (output gradient, checkpointed segments), the spike, the
surrogates.

Conventions of the kernels:

- ``x``, ``out``, ``grad_x``: (T, M), time-major, ``M`` = batch × features neurons, in the
  input's dtype; ``state``, ``grad_state``: (S, M), one row per state field, in the *compute*
  dtype ``CDT`` (float32 for float16/bfloat16/float32 inputs, float64 for float64), read on entry
  and overwritten on return; ``params``: (P,) or, with ``PER_NEURON``, (P, M), in ``CDT``.
- One program owns ``BLOCK`` neurons and walks them through all ``T`` steps with the state in
  registers.  Offsets are int64 (``T × M`` may pass 2³¹); a row is ``M`` elements further on.
- Values are loaded, cast to ``CDT``, computed with, and cast back to the output's dtype on store.
- Divisions are ``div`` (IEEE-rounded; plain ``/`` is an approximate division in float32 on
  NVIDIA GPUs) and constants that are not exact binary fractions are made with ``_const`` in the
  compute dtype: a float literal bound to a name is typed float32 by the interpreter (and by
  older Triton versions) even in a float64 kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import triton
import triton.language as tl
from triton.language.extra import libdevice

from snn_backend_fused.triton import interpreting

#: libdevice functions compile for a GPU only; the interpreter uses ``tl``'s (numpy's).
_LIBDEVICE: tl.constexpr = tl.constexpr(not interpreting())


def device(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``@triton.jit`` for a device function (one the kernels call); under the interpreter the
    plain Python function.  The interpreter re-patches ``triton.language`` on every call of a
    jitted function (about 0.5 ms), which made a 1000-step kernel with a few calls per step take
    seconds; the plain function runs the same statements under the kernel's patch."""
    return fn if interpreting() else triton.jit(fn)


#: Integer arguments compiled as ordinary (int32/int64) values, never as the constant 1: the
#: kernels widen them to int64 (``M.to(tl.int64)``) and step pointers by them.
NOT_SPECIALIZED = ("T", "M", "K", "g_st", "g_sn")

# The surrogates, numbered as kernels.SURROGATES.
SUPER: tl.constexpr = tl.constexpr(0)
HEAVISIDE: tl.constexpr = tl.constexpr(1)
TRIANGLE: tl.constexpr = tl.constexpr(2)
TANH: tl.constexpr = tl.constexpr(3)
CIRC: tl.constexpr = tl.constexpr(4)
HEAVI_ERFC: tl.constexpr = tl.constexpr(5)
LOGISTIC: tl.constexpr = tl.constexpr(6)
ATAN: tl.constexpr = tl.constexpr(7)


@device
def neurons(M, BLOCK: tl.constexpr):
    """This program's neuron offsets (int64) and the mask of those that exist."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < M


@device
def param(params, j, offs, mask, M, PER_NEURON: tl.constexpr):
    """Parameter ``j`` as a block: one value per neuron, or one for all.  Lanes past the last
    neuron read 1 (never 0: a parameter may divide)."""
    if PER_NEURON:
        value = tl.load(params + j * M.to(tl.int64) + offs, mask=mask, other=1.0)
    else:  # a block of one value: no broadcast per operation
        value = tl.full(offs.shape, tl.load(params + j), params.dtype.element_ty)
    return value


@device
def scalar_param(params, j, M, PER_NEURON: tl.constexpr):
    """Parameter ``j`` when it is always one value (its first element in a (P, M) array)."""
    value = tl.load(params + j * M.to(tl.int64)) if PER_NEURON else tl.load(params + j)
    return value


@device
def load_row(ptr, mask, CDT: tl.constexpr):
    """One row segment, upcast to the compute dtype (lanes past the last neuron are undefined and
    never stored)."""
    return tl.load(ptr, mask=mask).to(CDT)


@device
def store_row(ptr, value, mask):
    """One row segment, cast to the destination's dtype."""
    tl.store(ptr, value.to(ptr.dtype.element_ty), mask=mask)


@device
def load_rows2(ptr, mask, M64, CDT: tl.constexpr):
    """Rows 0 and 1 of an (S, M) array (``ptr``: row 0 at this program's neurons), upcast."""
    return load_row(ptr, mask, CDT), load_row(ptr + M64, mask, CDT)


@device
def load_rows3(ptr, mask, M64, CDT: tl.constexpr):
    """Rows 0, 1 and 2 of an (S, M) array (``ptr``: row 0 at this program's neurons), upcast."""
    first, second = load_rows2(ptr, mask, M64, CDT)
    return first, second, load_row(ptr + 2 * M64, mask, CDT)


@device
def store_rows2(ptr, mask, M64, first, second):
    """``first`` and ``second`` to rows 0 and 1 of an (S, M) array (``ptr`` as ``load_rows2``)."""
    store_row(ptr, first, mask)
    store_row(ptr + M64, second, mask)


@device
def store_rows3(ptr, mask, M64, first, second, third):
    """``first``, ``second``, ``third`` to rows 0, 1, 2 of an (S, M) array."""
    store_rows2(ptr, mask, M64, first, second)
    store_row(ptr + 2 * M64, third, mask)


@device
def last_step(grad_x, g, offs, T, M64, g_st64, g_sn):
    """Where a backward pass starts: step ``T − 1`` of ``grad_x`` (T, M) and of the output's
    gradient ``g`` (strides ``g_st``, ``g_sn``)."""
    return grad_x + (T - 1) * M64 + offs, g + (T - 1) * g_st64 + offs * g_sn


@device
def add_grad_out(grad, g_t, g_st64, mask, HAS_G: tl.constexpr, CDT: tl.constexpr):
    """``g_out + grad`` with the output's gradient ``g_out`` at ``g_t`` (``grad`` itself when none
    reaches the output), and ``g_t`` moved to the step before."""
    if HAS_G:
        grad = load_row(g_t, mask, CDT) + grad
        g_t -= g_st64
    return grad, g_t


@device
def segment(seg, T, K, M64, x, saved, offs, S: tl.constexpr):
    """Segment ``seg`` of a run checkpointed every ``K`` steps (steps seg·K, ...): its length, its
    first row of ``x`` (T, M), and its checkpoint in ``saved`` (C, S, M), at this program's
    neurons."""
    n = tl.minimum(T - seg * K, K)
    return n, x + seg * K * M64 + offs, saved + seg * S * M64 + offs


@device
def _const(value: tl.constexpr, like):
    """``value`` in ``like``'s dtype, rounded once (to float32 in a float32 kernel)."""
    return tl.full([], value, like.dtype)


@device
def div(a, b):
    """a / b, IEEE-rounded: ``tl.div_rn`` in float32 (plain ``/`` is approximate there on NVIDIA
    GPUs), ``/`` in float64 (already IEEE; ``div_rn`` takes float32 only)."""
    result = a / b if a.dtype == tl.float64 else tl.div_rn(a, b)
    return result


@device
def sqrt(a):
    """√a, IEEE-rounded (``tl.sqrt_rn`` takes float32 only; float64 ``sqrt`` is IEEE)."""
    result = tl.sqrt(a) if a.dtype == tl.float64 else tl.sqrt_rn(a)
    return result


@device
def heaviside(s):
    """Θ(s) = 1[s > 0] in ``s``'s dtype."""
    return (s > 0).to(s.dtype)


@device
def exp(x):
    """The exponential: on a GPU CUDA's ``expf``/``exp`` (libdevice), the function PyTorch's CUDA
    kernels call (``tl.exp`` is a faster approximation in float32); numpy's under the interpreter,
    which has no libdevice."""
    result = libdevice.exp(x) if _LIBDEVICE else tl.exp(x)
    return result


@device
def tanh(x):
    """tanh(x) = sign(x)·(1 − e)/(1 + e) with e = exp(−2|x|): no overflow, and the same formula
    on a GPU and under the interpreter (``tl`` has no tanh)."""
    e = exp(-2.0 * tl.abs(x))
    t = div(1.0 - e, 1.0 + e)
    return tl.where(x < 0.0, -t, t)


@device
def surrogate(s, alpha, KIND: tl.constexpr):
    """The pseudo-derivative of the spike at distance ``s``, written as snncore/surrogates.py
    computes it (csrc/common.h ``surrogate``); ``KIND`` picks it at compile time."""
    one = _const(1.0, s)
    if KIND == SUPER:  # 1 / (alpha·|s| + 1)²
        d = tl.abs(s) * alpha + one
        result = div(one, d * d)
    elif KIND == HEAVISIDE:  # 0
        result = tl.zeros_like(s)
    elif KIND == TRIANGLE:  # alpha · max(0, 1 − |s|)
        result = tl.maximum(one - tl.abs(s), 0.0) * alpha
    elif KIND == TANH:  # 1 − tanh²(alpha·s)
        t = tanh(alpha * s)
        result = one - t * t
    elif KIND == CIRC:  # alpha³ / (alpha² + s²)^(3/2)
        q = alpha * alpha + s * s
        result = div(alpha * alpha * alpha, q * sqrt(q))
    elif KIND == HEAVI_ERFC:  # 2/√π · exp(−(alpha·s)²)
        a = alpha * s
        result = _const(1.1283791670955126, s) * exp(-(a * a))
    elif KIND == LOGISTIC:  # alpha · σ(alpha·s) · (1 − σ(alpha·s))
        sig = div(one, one + exp(-(alpha * s)))
        result = alpha * sig * (one - sig)
    else:  # ATAN: alpha / (2·(1 + (π/2·alpha·s)²))
        u = _const(1.5707963267948966, s) * alpha * s
        result = div(alpha, _const(2.0, s) * (one + u * u))
    return result
