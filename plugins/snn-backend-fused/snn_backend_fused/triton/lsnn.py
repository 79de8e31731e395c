"""LSNN (snn_lsnn/lsnn.py ``lsnn_feed_forward_step``): LIF with an adaptive threshold, the
formulas of csrc/lsnn.cpp.

Parameters: 0 a = dt·tau_mem_inv, 1 c = dt·tau_syn_inv, 2 d = dt·tau_adapt_inv, 3 v_leak,
4 v_th, 5 v_reset, 6 beta, 7 alpha.  State rows: 0 v, 1 i, 2 b.  One step, in the PyTorch
step's order (the input is added last):

    v1 = v + a·((v_leak − v) + i);  i1 = i − c·i;  b1 = b + d·(v_th − b)
    z = Θ(v1 − b1);  v' = (1 − z)·v1 + z·v_reset;  i' = i1 + x;  b' = b1 + z·beta

Backward, per step from the last (σ' the surrogate at v1 − b1), recomputing v1 and b1 for each
K-step segment from its checkpoint into ``scratch`` (rows 0 v1, 1 b1):

    gz = g_out + g_v'·(v_reset − v1) + g_b'·beta;  gs = gz·σ'
    g_v1 = g_v'·(1 − z) + gs;  g_b1 = g_b' − gs;  g_x = g_i'
    g_v = g_v1·(1 − a);  g_i = g_v1·a + g_i'·(1 − c);  g_b = g_b1·(1 − d)
"""

from __future__ import annotations

import triton
import triton.language as tl

from snn_backend_fused.triton.common import (
    NOT_SPECIALIZED,
    device,
    heaviside,
    load_row,
    neurons,
    param,
    store_row,
    surrogate,
)


@device
def _step(x_t, v, i, b, a, c, d, v_leak, v_th, v_reset, beta):
    """One LSNN step: ``(z, v1, b1, v', i', b')``."""
    v1 = v + a * ((v_leak - v) + i)
    i1 = i - c * i
    b1 = b + d * (v_th - b)
    z = heaviside(v1 - b1)
    return z, v1, b1, (1.0 - z) * v1 + z * v_reset, i1 + x_t, b1 + z * beta


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lsnn_forward(
    x, out, state, saved, params, T, M, K,
    PER_NEURON: tl.constexpr, SAVE: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a = param(params, 0, offs, mask, M, PER_NEURON)
    c = param(params, 1, offs, mask, M, PER_NEURON)
    d = param(params, 2, offs, mask, M, PER_NEURON)
    v_leak = param(params, 3, offs, mask, M, PER_NEURON)
    v_th = param(params, 4, offs, mask, M, PER_NEURON)
    v_reset = param(params, 5, offs, mask, M, PER_NEURON)
    beta = param(params, 6, offs, mask, M, PER_NEURON)
    M64 = M.to(tl.int64)
    v = load_row(state + offs, mask, CDT)
    i = load_row(state + M64 + offs, mask, CDT)
    b = load_row(state + 2 * M64 + offs, mask, CDT)
    x_t, out_t, ckpt = x + offs, out + offs, saved + offs
    for t0 in range(0, T, K):  # segments of K steps
        if SAVE:  # the state before steps 0, K, 2K, ...
            store_row(ckpt, v, mask)
            store_row(ckpt + M64, i, mask)
            store_row(ckpt + 2 * M64, b, mask)
            ckpt += 3 * M64
        for _u in range(0, tl.minimum(T - t0, K)):
            x_v = load_row(x_t, mask, CDT)
            z, _v1, _b1, v, i, b = _step(x_v, v, i, b, a, c, d, v_leak, v_th, v_reset, beta)
            store_row(out_t, z, mask)
            x_t += M64
            out_t += M64
    store_row(state + offs, v, mask)
    store_row(state + M64 + offs, i, mask)
    store_row(state + 2 * M64 + offs, b, mask)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lsnn_backward(
    x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
    HAS_G: tl.constexpr, PER_NEURON: tl.constexpr, SURROGATE: tl.constexpr,
    CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a = param(params, 0, offs, mask, M, PER_NEURON)
    c = param(params, 1, offs, mask, M, PER_NEURON)
    d = param(params, 2, offs, mask, M, PER_NEURON)
    v_leak = param(params, 3, offs, mask, M, PER_NEURON)
    v_th = param(params, 4, offs, mask, M, PER_NEURON)
    v_reset = param(params, 5, offs, mask, M, PER_NEURON)
    beta = param(params, 6, offs, mask, M, PER_NEURON)
    alpha = param(params, 7, offs, mask, M, PER_NEURON)
    one_a, one_c, one_d = 1.0 - a, 1.0 - c, 1.0 - d
    M64, g_st64 = M.to(tl.int64), g_st.to(tl.int64)
    gv = load_row(grad_state + offs, mask, CDT)
    gi = load_row(grad_state + M64 + offs, mask, CDT)
    gb = load_row(grad_state + 2 * M64 + offs, mask, CDT)
    segments = (T + K - 1) // K
    x_seg = x + (segments - 1) * K * M64 + offs  # the first row of the last segment
    ckpt = saved + (segments - 1) * 3 * M64 + offs
    gx_t, g_t = grad_x + (T - 1) * M64 + offs, g + (T - 1) * g_st64 + offs * g_sn
    for back in range(0, segments):  # the segments from the last
        n = tl.minimum(T - (segments - 1 - back) * K, K)
        v = load_row(ckpt, mask, CDT)
        i = load_row(ckpt + M64, mask, CDT)
        b = load_row(ckpt + 2 * M64, mask, CDT)
        x_t, sc = x_seg, scratch + offs
        for _u in range(0, n):  # recompute the segment: v1, b1 per step
            x_v = load_row(x_t, mask, CDT)
            _z, v1, b1, v, i, b = _step(x_v, v, i, b, a, c, d, v_leak, v_th, v_reset, beta)
            store_row(sc, v1, mask)
            store_row(sc + M64, b1, mask)
            x_t += M64
            sc += 2 * M64
        tl.debug_barrier()
        for _back_u in range(0, n):  # and walk it backwards
            sc -= 2 * M64
            v1 = load_row(sc, mask, CDT)
            b1 = load_row(sc + M64, mask, CDT)
            s = v1 - b1
            z = heaviside(s)
            gz = gv * (v_reset - v1)
            if HAS_G:
                gz = load_row(g_t, mask, CDT) + gz
                g_t -= g_st64
            gz = gz + gb * beta
            gs = gz * surrogate(s, alpha, SURROGATE)
            gv1 = gv * (1.0 - z) + gs
            gb1 = gb - gs
            store_row(gx_t, gi, mask)
            gx_t -= M64
            gi = gv1 * a + gi * one_c
            gv = gv1 * one_a
            gb = gb1 * one_d
        tl.debug_barrier()  # before the next segment overwrites the scratch
        x_seg -= K * M64
        ckpt -= 3 * M64
    store_row(grad_state + offs, gv, mask)
    store_row(grad_state + M64 + offs, gi, mask)
    store_row(grad_state + 2 * M64 + offs, gb, mask)
