"""LIF and LI (snn_lif/lif.py ``lif_feed_forward_step``, snn_lif/li.py): the formulas of
csrc/lif.cpp, one program per ``BLOCK`` neurons over all ``T`` steps.

LIF parameters: 0 a = dt·tau_mem_inv, 1 b = dt·tau_syn_inv, 2 v_leak, 3 v_th, 4 v_reset,
5 alpha.  State rows: 0 v, 1 i.  One step, in the PyTorch step's order:

    i1 = i + x;  v1 = v + a·((v_leak − v) + i1);  i' = i1 − b·i1
    z = Θ(v1 − v_th);  v' = (1 − z)·v1 + z·v_reset

Saved for the backward pass: the distance ``s = v1 − v_th`` per element (in the compute dtype;
the spikes are Θ(s)).  Backward, per step from the last (σ' the surrogate at s):

    gz = g_out + g_v'·((v_reset − v_th) − s);  g_v1 = g_v'·(1 − z) + gz·σ'
    g_i1 = g_i'·(1 − b) + g_v1·a;  g_x = g_i = g_i1;  g_v = g_v1·(1 − a)

LI parameters: 0 a, 1 b, 2 v_leak; the output is v'.  Its backward is linear (nothing saved):

    g_v'' = g_out + g_v';  g_i1 = g_i'·(1 − b) + g_v''·a;  g_x = g_i = g_i1;  g_v = g_v''·(1 − a)
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
    neurons,
    param,
    store_row,
    store_rows2,
    surrogate,
)


@device
def _lif_params(params, offs, mask, M, PER_NEURON: tl.constexpr):
    """LIF's parameters, in the order above."""
    a = param(params, 0, offs, mask, M, PER_NEURON)
    b = param(params, 1, offs, mask, M, PER_NEURON)
    v_leak = param(params, 2, offs, mask, M, PER_NEURON)
    v_th = param(params, 3, offs, mask, M, PER_NEURON)
    v_reset = param(params, 4, offs, mask, M, PER_NEURON)
    alpha = param(params, 5, offs, mask, M, PER_NEURON)
    return a, b, v_leak, v_th, v_reset, alpha


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_forward(
    x, out, state, saved, params, T, M, K,
    PER_NEURON: tl.constexpr, SAVE: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, v_leak, v_th, v_reset, _alpha = _lif_params(params, offs, mask, M, PER_NEURON)
    M64 = M.to(tl.int64)
    v, i = load_rows2(state + offs, mask, M64, CDT)
    x_t, out_t, saved_t = x + offs, out + offs, saved + offs  # row t of each
    for _t in range(0, T):
        i1 = i + load_row(x_t, mask, CDT)
        v1 = v + a * ((v_leak - v) + i1)
        s = v1 - v_th
        z = heaviside(s)
        i = i1 - b * i1
        v = (1.0 - z) * v1 + z * v_reset
        store_row(out_t, z, mask)
        if SAVE:
            store_row(saved_t, s, mask)
            saved_t += M64
        x_t += M64
        out_t += M64
    store_rows2(state + offs, mask, M64, v, i)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def lif_backward(
    x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
    HAS_G: tl.constexpr, PER_NEURON: tl.constexpr, SURROGATE: tl.constexpr,
    CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a, b, _v_leak, v_th, v_reset, alpha = _lif_params(params, offs, mask, M, PER_NEURON)
    one_a, one_b, jump = 1.0 - a, 1.0 - b, v_reset - v_th
    M64, g_st64 = M.to(tl.int64), g_st.to(tl.int64)
    gv, gi = load_rows2(grad_state + offs, mask, M64, CDT)
    saved_t = saved + (T - 1) * M64 + offs
    gx_t, g_t = last_step(grad_x, g, offs, T, M64, g_st64, g_sn)
    for _back in range(0, T):  # t = T − 1, ..., 0
        s = load_row(saved_t, mask, CDT)
        z = heaviside(s)
        gz = gv * (jump - s)
        gz, g_t = add_grad_out(gz, g_t, g_st64, mask, HAS_G, CDT)
        gv1 = gv * (1.0 - z) + gz * surrogate(s, alpha, SURROGATE)
        gi = gi * one_b + gv1 * a
        gv = gv1 * one_a
        store_row(gx_t, gi, mask)
        saved_t -= M64
        gx_t -= M64
    store_rows2(grad_state + offs, mask, M64, gv, gi)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def li_forward(
    x, out, state, saved, params, T, M, K,
    PER_NEURON: tl.constexpr, SAVE: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a = param(params, 0, offs, mask, M, PER_NEURON)
    b = param(params, 1, offs, mask, M, PER_NEURON)
    v_leak = param(params, 2, offs, mask, M, PER_NEURON)
    M64 = M.to(tl.int64)
    v, i = load_rows2(state + offs, mask, M64, CDT)
    x_t, out_t = x + offs, out + offs
    for _t in range(0, T):
        i1 = i + load_row(x_t, mask, CDT)
        v = v + a * ((v_leak - v) + i1)
        i = i1 - b * i1
        store_row(out_t, v, mask)
        x_t += M64
        out_t += M64
    store_rows2(state + offs, mask, M64, v, i)


@triton.jit(do_not_specialize=NOT_SPECIALIZED)
def li_backward(
    x, saved, scratch, params, g, g_st, g_sn, grad_state, grad_x, T, M, K,
    HAS_G: tl.constexpr, PER_NEURON: tl.constexpr, SURROGATE: tl.constexpr,
    CDT: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask = neurons(M, BLOCK)
    a = param(params, 0, offs, mask, M, PER_NEURON)
    b = param(params, 1, offs, mask, M, PER_NEURON)
    one_a, one_b = 1.0 - a, 1.0 - b
    M64, g_st64 = M.to(tl.int64), g_st.to(tl.int64)
    gv, gi = load_rows2(grad_state + offs, mask, M64, CDT)
    gx_t, g_t = last_step(grad_x, g, offs, T, M64, g_st64, g_sn)
    for _back in range(0, T):  # t = T − 1, ..., 0
        gvn, g_t = add_grad_out(gv, g_t, g_st64, mask, HAS_G, CDT)
        gi = gi * one_b + gvn * a
        gv = gvn * one_a
        store_row(gx_t, gi, mask)
        gx_t -= M64
    store_rows2(grad_state + offs, mask, M64, gv, gi)
