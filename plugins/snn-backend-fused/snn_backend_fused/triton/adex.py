"""LIFEx and LIFAdEx (snn_adex/ex.py, snn_adex/adex.py): LIF with the exponential term
e(v) = delta_T·exp(min((v − v_th)/delta_T, ceiling)) (snn_adex/exponential.py; ``ceiling`` =
ln(max float)/2 of the *input's* dtype, passed in), the formulas of csrc/adex.cpp.

LIFEx parameters: 0 a = dt·tau_mem_inv, 1 b = dt·tau_syn_inv, 2 v_leak, 3 v_th, 4 v_reset,
5 delta_T, 6 ceiling, 7 alpha.  State rows: 0 v, 1 i.

    i1 = i + x;  v1 = v + a·(((v_leak − v) + e(v)) + i1);  i' = i1 − b·i1
    z = Θ(v1 − v_th);  v' = (1 − z)·v1 + z·v_reset

LIFAdEx parameters: 0 a, 1 b, 2 c = dt·tau_ada_inv, 3 v_leak, 4 v_th, 5 v_reset, 6 delta_T,
7 adaptation_current, 8 adaptation_spike, 9 ceiling, 10 alpha.  State rows: 0 v, 1 i, 2 w (the
model's adaptation current ``a``).

    i1 = i + x;  v1 = v + a·((((v_leak − v) + e(v)) + i1) − w);  i' = i1 − b·i1
    w1 = w + c·(adaptation_current·(v − v_leak) − w);  z = Θ(v1 − v_th)
    v' = (1 − z)·v1 + z·v_reset;  w' = w1 + z·adaptation_spike

Backward (e'(v) = exp of the argument where it is not clamped, else 0; σ' at v1 − v_th),
recomputing v and v1 per K-step segment into ``scratch`` (rows 0 v, 1 v1):

    gz = g_out + g_v'·(v_reset − v1) [+ g_w'·adaptation_spike];  g_v1 = g_v'·(1 − z) + gz·σ'
    gd = a·g_v1;  g_v = g_v1 + gd·(e'(v) − 1) [+ g_w'·c·adaptation_current]
    [g_w = g_w'·(1 − c) − gd];  g_x = g_i = gd + g_i'·(1 − b)

The exponential is CUDA's (libdevice) on a GPU, numpy's under the interpreter: either may differ
from PyTorch's in the last bits, so the voltage can differ by ulps from the eager step's.
"""

from __future__ import annotations

import triton
import triton.language as tl

from snn_backend_fused.triton.common import (
    NOT_SPECIALIZED,
    add_grad_out,
    device,
    div,
    exp,
    heaviside,
    last_step,
    load_row,
    load_rows2,
    load_rows3,
    neurons,
    param,
    scalar_param,
    segment,
    store_row,
    store_rows2,
    store_rows3,
    surrogate,
)


@device
def exp_term(v, v_th, delta_T, ceiling):
    """delta_T · exp(min((v − v_th)/delta_T, ceiling))."""
    argument = div(v - v_th, delta_T)
    return delta_T * exp(tl.minimum(argument, ceiling))


@device
def exp_term_grad(v, v_th, delta_T, ceiling):
    """d e / d v, as autograd computes it through the clamp (0 where the argument is clamped)."""
    argument = div(v - v_th, delta_T)
    return tl.where(argument <= ceiling, div(delta_T * exp(argument), delta_T), 0.0)


@device
def _ex_params(params, offs, mask, M, PER_NEURON: tl.constexpr):
    """LIFEx's parameters, in the order above."""
    a = param(params, 0, offs, mask, M, PER_NEURON)
    b = param(params, 1, offs, mask, M, PER_NEURON)
    v_leak = param(params, 2, offs, mask, M, PER_NEURON)
    v_th = param(params, 3, offs, mask, M, PER_NEURON)
    v_reset = param(params, 4, offs, mask, M, PER_NEURON)
    delta_T = param(params, 5, offs, mask, M, PER_NEURON)
    ceiling = scalar_param(params, 6, M, PER_NEURON)
    alpha = param(params, 7, offs, mask, M, PER_NEURON)
    return a, b, v_leak, v_th, v_reset, delta_T, ceiling, alpha


@device
def _ex_step(x_t, v, i, a, b, v_leak, v_th, v_reset, delta_T, ceiling):
    """One LIFEx step: ``(z, v1, v', i')``."""
    i1 = i + x_t
    v1 = v + a * (((v_leak - v) + exp_term(v, v_th, delta_T, ceiling)) + i1)
    z = heaviside(v1 - v_th)
    return z, v1, (1.0 - z) * v1 + z * v_reset, i1 - b * i1


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_ex_forward(
    x, out, state, saved, params, T, M, K,
    PER_NEURON: tl.constexpr, SAVE: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, v_leak, v_th, v_reset, delta_T, ceiling, _alpha = _ex_params(
        params, offs, mask, M, PER_NEURON
    )
    M64 = M.to(tl.int64)
    v, i = load_rows2(state + offs, mask, M64, CDT)
    x_t, out_t, ckpt = x + offs, out + offs, saved + offs
    for t0 in range(0, T, K):  # segments of K steps
        if SAVE:  # the state before steps 0, K, 2K, ...
            store_rows2(ckpt, mask, M64, v, i)
            ckpt += 2 * M64
        for _u in range(0, tl.minimum(T - t0, K)):
            x_v = load_row(x_t, mask, CDT)
            z, _v1, v, i = _ex_step(x_v, v, i, a, b, v_leak, v_th, v_reset, delta_T, ceiling)
            store_row(out_t, z, mask)
            x_t += M64
            out_t += M64
    store_rows2(state + offs, mask, M64, v, i)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_ex_backward(
    x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
    HAS_G: tl.constexpr, PER_NEURON: tl.constexpr, SURROGATE: tl.constexpr,
    CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, v_leak, v_th, v_reset, delta_T, ceiling, alpha = _ex_params(
        params, offs, mask, M, PER_NEURON
    )
    one_b = 1.0 - b
    M64, g_st64 = M.to(tl.int64), g_st.to(tl.int64)
    gv, gi = load_rows2(grad_state + offs, mask, M64, CDT)
    gx_t, g_t = last_step(grad_x, g, offs, T, M64, g_st64, g_sn)
    segments = (T + K - 1) // K
    for back in range(0, segments):  # the segments from the last
        n, x_t, ckpt = segment(segments - 1 - back, T, K, M64, x, saved, offs, 2)
        v, i = load_rows2(ckpt, mask, M64, CDT)
        sc = scratch + offs
        for _u in range(0, n):  # recompute the segment: v, v1 per step
            x_v = load_row(x_t, mask, CDT)
            v0 = v
            _z, v1, v, i = _ex_step(x_v, v0, i, a, b, v_leak, v_th, v_reset, delta_T, ceiling)
            store_rows2(sc, mask, M64, v0, v1)
            x_t += M64
            sc += 2 * M64
        tl.debug_barrier()
        for _back_u in range(0, n):  # and walk it backwards
            sc -= 2 * M64
            v0, v1 = load_rows2(sc, mask, M64, CDT)
            s = v1 - v_th
            z = heaviside(s)
            gz = gv * (v_reset - v1)
            gz, g_t = add_grad_out(gz, g_t, g_st64, mask, HAS_G, CDT)
            gv1 = gv * (1.0 - z) + gz * surrogate(s, alpha, SURROGATE)
            gd = a * gv1
            gv = gv1 + gd * (exp_term_grad(v0, v_th, delta_T, ceiling) - 1.0)
            gi = gd + gi * one_b
            store_row(gx_t, gi, mask)
            gx_t -= M64
        tl.debug_barrier()  # before the next segment overwrites the scratch
    store_rows2(grad_state + offs, mask, M64, gv, gi)


@device
def _adex_params(params, offs, mask, M, PER_NEURON: tl.constexpr):
    """LIFAdEx's parameters, in the order above (adaptation_current as ``a_cur``,
    adaptation_spike as ``a_spike``)."""
    a = param(params, 0, offs, mask, M, PER_NEURON)
    b = param(params, 1, offs, mask, M, PER_NEURON)
    c = param(params, 2, offs, mask, M, PER_NEURON)
    v_leak = param(params, 3, offs, mask, M, PER_NEURON)
    v_th = param(params, 4, offs, mask, M, PER_NEURON)
    v_reset = param(params, 5, offs, mask, M, PER_NEURON)
    delta_T = param(params, 6, offs, mask, M, PER_NEURON)
    a_cur = param(params, 7, offs, mask, M, PER_NEURON)
    a_spike = param(params, 8, offs, mask, M, PER_NEURON)
    ceiling = scalar_param(params, 9, M, PER_NEURON)
    alpha = param(params, 10, offs, mask, M, PER_NEURON)
    return a, b, c, v_leak, v_th, v_reset, delta_T, a_cur, a_spike, ceiling, alpha


@device
def _adex_step(x_t, v, i, w, a, b, c, v_leak, v_th, v_reset, delta_T, a_cur, a_spike, ceiling):
    """One LIFAdEx step: ``(z, v1, v', i', w')``."""
    i1 = i + x_t
    drive = (((v_leak - v) + exp_term(v, v_th, delta_T, ceiling)) + i1) - w
    v1 = v + a * drive
    w1 = w + c * (a_cur * (v - v_leak) - w)
    z = heaviside(v1 - v_th)
    return z, v1, (1.0 - z) * v1 + z * v_reset, i1 - b * i1, w1 + z * a_spike


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_adex_forward(
    x, out, state, saved, params, T, M, K,
    PER_NEURON: tl.constexpr, SAVE: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, c, v_leak, v_th, v_reset, delta_T, a_cur, a_spike, ceiling, _alpha = _adex_params(
        params, offs, mask, M, PER_NEURON
    )
    M64 = M.to(tl.int64)
    v, i, w = load_rows3(state + offs, mask, M64, CDT)
    x_t, out_t, ckpt = x + offs, out + offs, saved + offs
    for t0 in range(0, T, K):  # segments of K steps
        if SAVE:  # the state before steps 0, K, 2K, ...
            store_rows3(ckpt, mask, M64, v, i, w)
            ckpt += 3 * M64
        for _u in range(0, tl.minimum(T - t0, K)):
            x_v = load_row(x_t, mask, CDT)
            z, _v1, v, i, w = _adex_step(
                x_v, v, i, w, a, b, c, v_leak, v_th, v_reset, delta_T, a_cur, a_spike, ceiling
            )
            store_row(out_t, z, mask)
            x_t += M64
            out_t += M64
    store_rows3(state + offs, mask, M64, v, i, w)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_adex_backward(
    x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
    HAS_G: tl.constexpr, PER_NEURON: tl.constexpr, SURROGATE: tl.constexpr,
    CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, c, v_leak, v_th, v_reset, delta_T, a_cur, a_spike, ceiling, alpha = _adex_params(
        params, offs, mask, M, PER_NEURON
    )
    one_b, one_c = 1.0 - b, 1.0 - c
    M64, g_st64 = M.to(tl.int64), g_st.to(tl.int64)
    gv, gi, gw = load_rows3(grad_state + offs, mask, M64, CDT)
    gx_t, g_t = last_step(grad_x, g, offs, T, M64, g_st64, g_sn)
    segments = (T + K - 1) // K
    for back in range(0, segments):  # the segments from the last
        n, x_t, ckpt = segment(segments - 1 - back, T, K, M64, x, saved, offs, 3)
        v, i, w = load_rows3(ckpt, mask, M64, CDT)
        sc = scratch + offs
        for _u in range(0, n):  # recompute the segment: v, v1 per step
            x_v = load_row(x_t, mask, CDT)
            v0 = v
            _z, v1, v, i, w = _adex_step(
                x_v, v0, i, w, a, b, c, v_leak, v_th, v_reset, delta_T, a_cur, a_spike, ceiling
            )
            store_rows2(sc, mask, M64, v0, v1)
            x_t += M64
            sc += 2 * M64
        tl.debug_barrier()
        for _back_u in range(0, n):  # and walk it backwards
            sc -= 2 * M64
            v0, v1 = load_rows2(sc, mask, M64, CDT)
            s = v1 - v_th
            z = heaviside(s)
            gz = gv * (v_reset - v1)
            gz, g_t = add_grad_out(gz, g_t, g_st64, mask, HAS_G, CDT)
            gz = gz + gw * a_spike
            gv1 = gv * (1.0 - z) + gz * surrogate(s, alpha, SURROGATE)
            gd = a * gv1
            gv = gv1 + gd * (exp_term_grad(v0, v_th, delta_T, ceiling) - 1.0) + gw * c * a_cur
            gw = gw * one_c - gd
            gi = gd + gi * one_b
            store_row(gx_t, gi, mask)
            gx_t -= M64
        tl.debug_barrier()  # before the next segment overwrites the scratch
    store_rows3(grad_state + offs, mask, M64, gv, gi, gw)
