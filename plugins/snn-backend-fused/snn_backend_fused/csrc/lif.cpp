// Feed-forward LIF (snn_lif/lif.py lif_feed_forward_step) and LI (snn_lif/li.py).
//
// LIF parameters (kernels.py builds them, in this order):
//   0 a = dt·tau_mem_inv   1 b = dt·tau_syn_inv   2 v_leak   3 v_th   4 v_reset   5 alpha
// State rows: 0 v, 1 i.  One step, in the PyTorch step's order:
//   i1 = i + x;  v1 = v + a·((v_leak − v) + i1);  i' = i1 − b·i1;
//   z = Θ(v1 − v_th);  v' = (1 − z)·v1 + z·v_reset
// Backward (g· = ∂L/∂·, σ' the surrogate at v1 − v_th), per step from the last:
//   gz = g_out + g_v'·(v_reset − v1);  g_v1 = g_v'·(1 − z) + gz·σ'
//   g_i1 = g_i'·(1 − b) + g_v1·a;  g_x = g_i = g_i1;  g_v = g_v1·(1 − a)
// Saved for backward: the distance to threshold s = v1 − v_th, one value per element (the spikes
// are Θ(s), so they are not kept).  Forward reads x and writes the spikes and s; backward reads
// s and the upstream gradient and writes grad_x -- 12 bytes per element each way in float32.
// (Recomputing from x and state checkpoints instead, as the other kernels do, moves fewer bytes
// but costs 1.4× more time here: on two cores the backward is compute-bound.)
//
// LI parameters: 0 a, 1 b, 2 v_leak.  Output v'.  Backward needs no recompute (it is linear):
//   g_v'' = g_out + g_v';  g_i1 = g_i'·(1 − b) + g_v''·a;  g_x = g_i = g_i1;  g_v = g_v''·(1 − a)

#include "common.h"

namespace snnf {

template <typename T, bool PN>
static void lif_forward(i64 T_, i64 M, const T* x, T* out, T* state, T* saved, i64 /*K*/,
                        const T* prm, int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 0, [&](i64 n0, i64 len, T*) {
    alignas(64) T st[2 * kMaxBlock];
    alignas(64) T zt[kMaxBlock];
    alignas(64) T sr[kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    load_rows(st, state, 2, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pl = param<T, PN>(prm, 2, M, n0);
    const T* pt = param<T, PN>(prm, 3, M, n0);
    const T* pr = param<T, PN>(prm, 4, M, n0);
    for (i64 t = 0; t < T_; ++t) {
      const T* __restrict__ xt = x + t * M + n0;
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], vl = pl[pk<PN>(k)];
        const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)];
        const T i1 = i[k] + xt[k];
        const T v1 = v[k] + a * ((vl - v[k]) + i1);
        const T s = v1 - vth;
        const T z = s > T(0) ? T(1) : T(0);
        i[k] = i1 - b * i1;
        v[k] = (T(1) - z) * v1 + z * vr;
        zt[k] = z;
        sr[k] = s;
      }
      put_row(out + t * M + n0, zt, len, stream);
      if (saved != nullptr) put_row(saved + t * M + n0, sr, len, stream);
    }
    store_rows(state, st, 2, M, n0, len);
  }, T_ * M);
}

// Backward from the saved distances s = v1 − v_th (z = Θ(s), v_reset − v1 = (v_reset − v_th) − s,
// as snn_lif/sequence.py computes it), the surrogate KS evaluated in the same loop.
template <typename T, bool PN, int KS>
static void lif_backward_k(i64 T_, i64 M, const T* saved, const T* prm, const T* g, i64 gst,
                           i64 gsn, T* gstate, T* gx, int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 2 * kMaxBlock, [&](i64 n0, i64 len, T* scratch) {
    T* tmp = scratch;
    T* zeros = scratch + kMaxBlock;
    std::fill(zeros, zeros + len, T(0));
    alignas(64) T gs[2 * kMaxBlock];
    T* __restrict__ gv = gs;
    T* __restrict__ gi = gs + kMaxBlock;
    load_rows(gs, gstate, 2, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pt = param<T, PN>(prm, 3, M, n0);
    const T* pr = param<T, PN>(prm, 4, M, n0);
    const T* palpha = param<T, PN>(prm, 5, M, n0);
    for (i64 t = T_ - 1; t >= 0; --t) {
      const T* __restrict__ gr = grad_row(g, gst, gsn, t, n0, len, tmp, zeros);
      const T* __restrict__ sr = saved + t * M + n0;
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)];
        const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)];
        const T s = sr[k];
        const T z = s > T(0) ? T(1) : T(0);
        const T d = surrogate<T, KS>(s, palpha[pk<PN>(k)]);
        const T gz = gr[k] + gv[k] * ((vr - vth) - s);
        const T gv1 = gv[k] * (T(1) - z) + gz * d;
        gi[k] = gi[k] * (T(1) - b) + gv1 * a;
        gv[k] = gv1 * (T(1) - a);
      }
      put_row(gx + t * M + n0, gi, len, stream);
    }
    store_rows(gstate, gs, 2, M, n0, len);
  }, T_ * M);
}

template <typename T, bool PN>
static void lif_backward(int kind, i64 T_, i64 M, const T* /*x*/, const T* saved, i64 /*K*/,
                         const T* prm, const T* g, i64 gst, i64 gsn, T* gstate, T* gx, int nt) {
  switch (kind) {
#define SNNF_LIF_CASE(KS) \
  case KS: lif_backward_k<T, PN, KS>(T_, M, saved, prm, g, gst, gsn, gstate, gx, nt); break;
    SNNF_LIF_CASE(kSuper)
    SNNF_LIF_CASE(kHeaviside)
    SNNF_LIF_CASE(kTriangle)
    SNNF_LIF_CASE(kTanh)
    SNNF_LIF_CASE(kCirc)
    SNNF_LIF_CASE(kHeaviErfc)
    SNNF_LIF_CASE(kLogistic)
    default: lif_backward_k<T, PN, kAtan>(T_, M, saved, prm, g, gst, gsn, gstate, gx, nt); break;
#undef SNNF_LIF_CASE
  }
}

template <typename T, bool PN>
static void li_forward(i64 T_, i64 M, const T* x, T* out, T* state, T* /*ckpt*/, i64 /*K*/,
                       const T* prm, int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 0, [&](i64 n0, i64 len, T*) {
    alignas(64) T st[2 * kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    load_rows(st, state, 2, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pl = param<T, PN>(prm, 2, M, n0);
    for (i64 t = 0; t < T_; ++t) {
      const T* __restrict__ xt = x + t * M + n0;
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], vl = pl[pk<PN>(k)];
        const T i1 = i[k] + xt[k];
        const T vn = v[k] + a * ((vl - v[k]) + i1);
        i[k] = i1 - b * i1;
        v[k] = vn;
      }
      put_row(out + t * M + n0, v, len, stream);
    }
    store_rows(state, st, 2, M, n0, len);
  }, T_ * M);
}

template <typename T, bool PN>
static void li_backward(int /*kind*/, i64 T_, i64 M, const T* /*x*/, const T* /*ckpt*/,
                        i64 /*K*/, const T* prm, const T* g, i64 gst, i64 gsn, T* gstate, T* gx,
                        int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 2 * kMaxBlock, [&](i64 n0, i64 len, T* scratch) {
    T* tmp = scratch;
    T* zeros = scratch + kMaxBlock;
    std::fill(zeros, zeros + len, T(0));
    alignas(64) T gs[2 * kMaxBlock];
    T* __restrict__ gv = gs;
    T* __restrict__ gi = gs + kMaxBlock;
    load_rows(gs, gstate, 2, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    for (i64 t = T_ - 1; t >= 0; --t) {
      const T* __restrict__ gr = grad_row(g, gst, gsn, t, n0, len, tmp, zeros);
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)];
        const T gvn = gr[k] + gv[k];
        gi[k] = gi[k] * (T(1) - b) + gvn * a;
        gv[k] = gvn * (T(1) - a);
      }
      put_row(gx + t * M + n0, gi, len, stream);
    }
    store_rows(gstate, gs, 2, M, n0, len);
  }, T_ * M);
}

}  // namespace snnf

using namespace snnf;

SNNF_ENTRY_POINTS(lif)
SNNF_ENTRY_POINTS(li)
