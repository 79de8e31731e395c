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
    add_grad_out,
    device,
    heaviside,
    last_step,
    load_row,
    load_rows2,
    load_rows3,
    neurons,
    param,
    segment,
    store_row,
    store_rows2,
    store_rows3,
    surrogate,
)


@device
def _params(params, offs, mask, M, PER_NEURON: tl.constexpr):
    """The parameters, in the order above."""
    a = param(params, 0, offs, mask, M, PER_NEURON)
    c = param(params, 1, offs, mask, M, PER_NEURON)
    d = param(params, 2, offs, mask, M, PER_NEURON)
    v_leak = param(params, 3, offs, mask, M, PER_NEURON)
    v_th = param(params, 4, offs, mask, M, PER_NEURON)
    v_reset = param(params, 5, offs, mask, M, PER_NEURON)
    beta = param(params, 6, offs, mask, M, PER_NEURON)
    alpha = param(params, 7, offs, mask, M, PER_NEURON)
    return a, c, d, v_leak, v_th, v_reset, beta, alpha


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
    a, c, d, v_leak, v_th, v_reset, beta, _alpha = _params(params, offs, mask, M, PER_NEURON)
    M64 = M.to(tl.int64)
    v, i, b = load_rows3(state + offs, mask, M64, CDT)
    x_t, out_t, ckpt = x + offs, out + offs, saved + offs
    for t0 in range(0, T, K):  # segments of K steps
        if SAVE:  # the state before steps 0, K, 2K, ...
            store_rows3(ckpt, mask, M64, v, i, b)
            ckpt += 3 * M64
        for _u in range(0, tl.minimum(T - t0, K)):
            x_v = load_row(x_t, mask, CDT)
            z, _v1, _b1, v, i, b = _step(x_v, v, i, b, a, c, d, v_leak, v_th, v_reset, beta)
            store_row(out_t, z, mask)
            x_t += M64
            out_t += M64
    store_rows3(state + offs, mask, M64, v, i, b)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lsnn_backward(
    x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
    HAS_G: tl.constexpr, PER_NEURON: tl.constexpr, SURROGATE: tl.constexpr,
    CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, c, d, v_leak, v_th, v_reset, beta, alpha = _params(params, offs, mask, M, PER_NEURON)
    one_a, one_c, one_d = 1.0 - a, 1.0 - c, 1.0 - d
    M64, g_st64 = M.to(tl.int64), g_st.to(tl.int64)
    gv, gi, gb = load_rows3(grad_state + offs, mask, M64, CDT)
    gx_t, g_t = last_step(grad_x, g, offs, T, M64, g_st64, g_sn)
    segments = (T + K - 1) // K
    for back in range(0, segments):  # the segments from the last
        n, x_t, ckpt = segment(segments - 1 - back, T, K, M64, x, saved, offs, 3)
        v, i, b = load_rows3(ckpt, mask, M64, CDT)
        sc = scratch + offs
        for _u in range(0, n):  # recompute the segment: v1, b1 per step
            x_v = load_row(x_t, mask, CDT)
            _z, v1, b1, v, i, b = _step(x_v, v, i, b, a, c, d, v_leak, v_th, v_reset, beta)
            store_rows2(sc, mask, M64, v1, b1)
            x_t += M64
            sc += 2 * M64
        tl.debug_barrier()
        for _back_u in range(0, n):  # and walk it backwards
            sc -= 2 * M64
            v1, b1 = load_rows2(sc, mask, M64, CDT)
            s = v1 - b1
            z = heaviside(s)
            gz = gv * (v_reset - v1)
            gz, g_t = add_grad_out(gz, g_t, g_st64, mask, HAS_G, CDT)
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
    store_rows3(grad_state + offs, mask, M64, gv, gi, gb)
