// Feed-forward LIFRefrac (snn_refrac/refrac.py lif_refrac_feed_forward_step): a LIF step, then
// the refractory update with the counter rho (in steps).
//
// Parameters: 0 a = dt·tau_mem_inv  1 b = dt·tau_syn_inv  2 v_leak  3 v_th  4 v_reset
//             5 rho_reset  6 alpha (of p.lif, for both the spike and the refractory mask).
// State rows: 0 v (lif.v), 1 i (lif.i), 2 rho.  One step, in the PyTorch step's order:
//   i1 = i + x;  v1 = v + a·((v_leak − v) + i1);  i' = i1 − b·i1
//   zl = Θ(v1 − v_th);  vl = (1 − zl)·v1 + zl·v_reset                  (the LIF step)
//   m = Θ(rho);  v' = (1 − m)·vl + m·v;  z' = (1 − m)·zl
//   rho' = (1 − z')·relu(rho − m) + z'·rho_reset
// Backward, per step from the last (σ'_s at v1 − v_th, σ'_m at rho, q = rho − m):
//   gz' = g_out + g_rho'·(rho_reset − relu(q));  gq = g_rho'·(1 − z')·[q > 0]
//   gm = −gz'·zl + g_v'·(v − vl) − gq;  g_rho = gq + gm·σ'_m
//   g_vl = g_v'·(1 − m);  g_zl = gz'·(1 − m) + g_vl·(v_reset − v1)
//   g_v1 = g_vl·(1 − zl) + g_zl·σ'_s;  g_v = g_v'·m + g_v1·(1 − a)
//   g_x = g_i = g_i'·(1 − b) + g_v1·a
// The backward pass recomputes v, v1 and rho per K-step segment from a checkpoint.

#include "common.h"

namespace snnf {

template <typename T, bool PN>
static void lif_refrac_forward(i64 T_, i64 M, const T* x, T* out, T* state, T* ckpt, i64 K,
                               const T* prm, int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 0, [&](i64 n0, i64 len, T*) {
    alignas(64) T st[3 * kMaxBlock];
    alignas(64) T zt[kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    T* __restrict__ rho = st + 2 * kMaxBlock;
    load_rows(st, state, 3, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pl = param<T, PN>(prm, 2, M, n0);
    const T* pt = param<T, PN>(prm, 3, M, n0);
    const T* pr = param<T, PN>(prm, 4, M, n0);
    const T* prr = param<T, PN>(prm, 5, M, n0);
    for (i64 t = 0; t < T_; ++t) {
      if (ckpt != nullptr && t % K == 0) store_rows(ckpt + (t / K) * 3 * M, st, 3, M, n0, len);
      const T* __restrict__ xt = x + t * M + n0;
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], vleak = pl[pk<PN>(k)];
        const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)], rr = prr[pk<PN>(k)];
        const T i1 = i[k] + xt[k];
        const T v1 = v[k] + a * ((vleak - v[k]) + i1);
        const T zl = (v1 - vth) > T(0) ? T(1) : T(0);
        const T vl = (T(1) - zl) * v1 + zl * vr;
        const T m = rho[k] > T(0) ? T(1) : T(0);
        const T z = (T(1) - m) * zl;
        const T q = rho[k] - m;
        v[k] = (T(1) - m) * vl + m * v[k];
        i[k] = i1 - b * i1;
        rho[k] = (T(1) - z) * std::max(q, T(0)) + z * rr;
        zt[k] = z;
      }
      put_row(out + t * M + n0, zt, len, stream);
    }
    store_rows(state, st, 3, M, n0, len);
  }, T_ * M);
}

template <typename T, bool PN>
static void lif_refrac_backward(int kind, i64 T_, i64 M, const T* x, const T* ckpt, i64 K,
                                const T* prm, const T* g, i64 gst, i64 gsn, T* gstate, T* gx,
                                int nt) {
  constexpr int kBuf = 5;  // scratch rows per step: v, v1, rho and both surrogate factors
  const i64 blk = block_size(M, nt, K, kBuf, sizeof(T));
  const i64 C = (T_ + K - 1) / K;
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, scratch_elems(K, blk, kBuf), [&](i64 n0, i64 len, T* scratch) {
    T* v0buf = scratch;
    T* v1buf = scratch + K * blk;
    T* rbuf = scratch + 2 * K * blk;
    T* dsbuf = scratch + 3 * K * blk;
    T* dmbuf = scratch + 4 * K * blk;
    T* tmp = dmbuf + K * blk;
    T* zeros = tmp + kMaxBlock;
    std::fill(zeros, zeros + len, T(0));
    alignas(64) T st[3 * kMaxBlock];
    alignas(64) T gs[3 * kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    T* __restrict__ rho = st + 2 * kMaxBlock;
    T* __restrict__ gv = gs;
    T* __restrict__ gi = gs + kMaxBlock;
    T* __restrict__ grho = gs + 2 * kMaxBlock;
    load_rows(gs, gstate, 3, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pl = param<T, PN>(prm, 2, M, n0);
    const T* pt = param<T, PN>(prm, 3, M, n0);
    const T* pr = param<T, PN>(prm, 4, M, n0);
    const T* prr = param<T, PN>(prm, 5, M, n0);
    const T* palpha = param<T, PN>(prm, 6, M, n0);
    for (i64 c0 = C - 1; c0 >= 0; --c0) {
      const i64 t0 = c0 * K, t1 = std::min(T_, t0 + K);
      load_rows(st, ckpt + c0 * 3 * M, 3, M, n0, len);
      for (i64 t = t0; t < t1; ++t) {
        const T* __restrict__ xt = x + t * M + n0;
        T* __restrict__ v0r = v0buf + (t - t0) * blk;
        T* __restrict__ v1r = v1buf + (t - t0) * blk;
        T* __restrict__ rr0 = rbuf + (t - t0) * blk;
        T* __restrict__ sr = dsbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], vleak = pl[pk<PN>(k)];
          const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)], rr = prr[pk<PN>(k)];
          const T i1 = i[k] + xt[k];
          const T v1 = v[k] + a * ((vleak - v[k]) + i1);
          const T s = v1 - vth;
          const T zl = s > T(0) ? T(1) : T(0);
          const T vl = (T(1) - zl) * v1 + zl * vr;
          const T m = rho[k] > T(0) ? T(1) : T(0);
          const T z = (T(1) - m) * zl;
          const T q = rho[k] - m;
          v0r[k] = v[k];
          v1r[k] = v1;
          rr0[k] = rho[k];
          sr[k] = s;
          v[k] = (T(1) - m) * vl + m * v[k];
          i[k] = i1 - b * i1;
          rho[k] = (T(1) - z) * std::max(q, T(0)) + z * rr;
        }
      }
      surrogate_rows<T, PN>(kind, dsbuf, dsbuf, t1 - t0, len, blk, palpha);
      surrogate_rows<T, PN>(kind, rbuf, dmbuf, t1 - t0, len, blk, palpha);
      for (i64 t = t1 - 1; t >= t0; --t) {
        const T* __restrict__ gr = grad_row(g, gst, gsn, t, n0, len, tmp, zeros);
        const T* __restrict__ v0r = v0buf + (t - t0) * blk;
        const T* __restrict__ v1r = v1buf + (t - t0) * blk;
        const T* __restrict__ rr0 = rbuf + (t - t0) * blk;
        const T* __restrict__ dsr = dsbuf + (t - t0) * blk;
        const T* __restrict__ dmr = dmbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)];
          const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)], rr = prr[pk<PN>(k)];
          const T v0 = v0r[k], v1 = v1r[k], r0 = rr0[k];
          const T zl = (v1 - vth) > T(0) ? T(1) : T(0);
          const T vl = (T(1) - zl) * v1 + zl * vr;
          const T m = r0 > T(0) ? T(1) : T(0);
          const T z = (T(1) - m) * zl;
          const T q = r0 - m;
          const T relu_q = std::max(q, T(0));
          const T gz = gr[k] + grho[k] * (rr - relu_q);
          const T gq = q > T(0) ? grho[k] * (T(1) - z) : T(0);
          const T gm = -gz * zl + gv[k] * (v0 - vl) - gq;
          const T gvl = gv[k] * (T(1) - m);
          const T gzl = gz * (T(1) - m) + gvl * (vr - v1);
          const T gv1 = gvl * (T(1) - zl) + gzl * dsr[k];
          grho[k] = gq + gm * dmr[k];
          gv[k] = gv[k] * m + gv1 * (T(1) - a);
          gi[k] = gi[k] * (T(1) - b) + gv1 * a;
        }
        put_row(gx + t * M + n0, gi, len, stream);
      }
    }
    store_rows(gstate, gs, 3, M, n0, len);
  }, T_ * M);
}

}  // namespace snnf

using namespace snnf;

SNNF_ENTRY_POINTS(lif_refrac)
