"""LIFRefrac (snn_refrac/refrac.py ``lif_refrac_feed_forward_step``): a LIF step, then the
refractory update with the counter rho (in steps); the formulas of csrc/refrac.cpp.

Parameters: 0 a = dt·tau_mem_inv, 1 b = dt·tau_syn_inv, 2 v_leak, 3 v_th, 4 v_reset,
5 rho_reset, 6 alpha (of ``p.lif``, for both the spike and the refractory mask).  State rows:
0 v (lif.v), 1 i (lif.i), 2 rho.  One step, in the PyTorch step's order:

    i1 = i + x;  v1 = v + a·((v_leak − v) + i1);  i' = i1 − b·i1
    zl = Θ(v1 − v_th);  vl = (1 − zl)·v1 + zl·v_reset                  (the LIF step)
    m = Θ(rho);  v' = (1 − m)·vl + m·v;  z' = (1 − m)·zl
    rho' = (1 − z')·relu(rho − m) + z'·rho_reset

Backward, per step from the last (σ'_s at v1 − v_th, σ'_m at rho, q = rho − m), recomputing v,
v1 and rho per K-step segment into ``scratch`` (rows 0 v, 1 v1, 2 rho):

    gz' = g_out + g_rho'·(rho_reset − relu(q));  gq = g_rho'·(1 − z')·[q > 0]
    gm = −gz'·zl + g_v'·(v − vl) − gq;  g_rho = gq + gm·σ'_m
    g_vl = g_v'·(1 − m);  g_zl = gz'·(1 − m) + g_vl·(v_reset − v1)
    g_v1 = g_vl·(1 − zl) + g_zl·σ'_s;  g_v = g_v'·m + g_v1·(1 − a)
    g_x = g_i = g_i'·(1 − b) + g_v1·a
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
    load_rows3,
    neurons,
    param,
    segment,
    store_row,
    store_rows3,
    surrogate,
)


@device
def _params(params, offs, mask, M, PER_NEURON: tl.constexpr):
    """The parameters, in the order above."""
    a = param(params, 0, offs, mask, M, PER_NEURON)
    b = param(params, 1, offs, mask, M, PER_NEURON)
    v_leak = param(params, 2, offs, mask, M, PER_NEURON)
    v_th = param(params, 3, offs, mask, M, PER_NEURON)
    v_reset = param(params, 4, offs, mask, M, PER_NEURON)
    rho_reset = param(params, 5, offs, mask, M, PER_NEURON)
    alpha = param(params, 6, offs, mask, M, PER_NEURON)
    return a, b, v_leak, v_th, v_reset, rho_reset, alpha


@device
def _step(x_t, v, i, rho, a, b, v_leak, v_th, v_reset, rho_reset):
    """One LIFRefrac step: ``(z', v1, v', i', rho')``."""
    i1 = i + x_t
    v1 = v + a * ((v_leak - v) + i1)
    zl = heaviside(v1 - v_th)
    vl = (1.0 - zl) * v1 + zl * v_reset
    m = heaviside(rho)
    z = (1.0 - m) * zl
    q = rho - m
    v_new = (1.0 - m) * vl + m * v
    rho_new = (1.0 - z) * tl.maximum(q, 0.0) + z * rho_reset
    return z, v1, v_new, i1 - b * i1, rho_new


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_refrac_forward(
    x, out, state, saved, params, T, M, K,
    PER_NEURON: tl.constexpr, SAVE: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, v_leak, v_th, v_reset, rho_reset, _alpha = _params(params, offs, mask, M, PER_NEURON)
    M64 = M.to(tl.int64)
    v, i, rho = load_rows3(state + offs, mask, M64, CDT)
    x_t, out_t, ckpt = x + offs, out + offs, saved + offs
    for t0 in range(0, T, K):  # segments of K steps
        if SAVE:  # the state before steps 0, K, 2K, ...
            store_rows3(ckpt, mask, M64, v, i, rho)
            ckpt += 3 * M64
        for _u in range(0, tl.minimum(T - t0, K)):
            x_v = load_row(x_t, mask, CDT)
            z, _v1, v, i, rho = _step(x_v, v, i, rho, a, b, v_leak, v_th, v_reset, rho_reset)
            store_row(out_t, z, mask)
            x_t += M64
            out_t += M64
    store_rows3(state + offs, mask, M64, v, i, rho)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_refrac_backward(
    x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
    HAS_G: tl.constexpr, PER_NEURON: tl.constexpr, SURROGATE: tl.constexpr,
    CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, v_leak, v_th, v_reset, rho_reset, alpha = _params(params, offs, mask, M, PER_NEURON)
    one_a, one_b = 1.0 - a, 1.0 - b
    M64, g_st64 = M.to(tl.int64), g_st.to(tl.int64)
    gv, gi, grho = load_rows3(grad_state + offs, mask, M64, CDT)
    gx_t, g_t = last_step(grad_x, g, offs, T, M64, g_st64, g_sn)
    segments = (T + K - 1) // K
    for back in range(0, segments):  # the segments from the last
        n, x_t, ckpt = segment(segments - 1 - back, T, K, M64, x, saved, offs, 3)
        v, i, rho = load_rows3(ckpt, mask, M64, CDT)
        sc = scratch + offs
        for _u in range(0, n):  # recompute the segment: v, v1, rho per step
            x_v = load_row(x_t, mask, CDT)
            v0, r0 = v, rho
            _z, v1, v, i, rho = _step(x_v, v0, i, r0, a, b, v_leak, v_th, v_reset, rho_reset)
            store_rows3(sc, mask, M64, v0, v1, r0)
            x_t += M64
            sc += 3 * M64
        tl.debug_barrier()
        for _back_u in range(0, n):  # and walk it backwards
            sc -= 3 * M64
            v0, v1, r0 = load_rows3(sc, mask, M64, CDT)
            s = v1 - v_th
            zl = heaviside(s)
            vl = (1.0 - zl) * v1 + zl * v_reset
            m = heaviside(r0)
            z = (1.0 - m) * zl
            q = r0 - m
            gz = grho * (rho_reset - tl.maximum(q, 0.0))
            gz, g_t = add_grad_out(gz, g_t, g_st64, mask, HAS_G, CDT)
            gq = tl.where(q > 0.0, grho * (1.0 - z), 0.0)
            gm = -gz * zl + gv * (v0 - vl) - gq
            gvl = gv * (1.0 - m)
            gzl = gz * (1.0 - m) + gvl * (v_reset - v1)
            gv1 = gvl * (1.0 - zl) + gzl * surrogate(s, alpha, SURROGATE)
            grho = gq + gm * surrogate(r0, alpha, SURROGATE)
            gv = gv * m + gv1 * one_a
            gi = gi * one_b + gv1 * a
            store_row(gx_t, gi, mask)
            gx_t -= M64
        tl.debug_barrier()  # before the next segment overwrites the scratch
    store_rows3(grad_state + offs, mask, M64, gv, gi, grho)
