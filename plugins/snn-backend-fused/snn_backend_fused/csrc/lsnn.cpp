// Feed-forward LSNN (snn_lsnn/lsnn.py lsnn_feed_forward_step): LIF with an adaptive threshold.
//
// Parameters: 0 a = dt·tau_mem_inv  1 c = dt·tau_syn_inv  2 d = dt·tau_adapt_inv  3 v_leak
//             4 v_th  5 v_reset  6 beta  7 alpha
// State rows: 0 v, 1 i, 2 b.  One step, in the PyTorch step's order (input added last):
//   v1 = v + a·((v_leak − v) + i);  i1 = i − c·i;  b1 = b + d·(v_th − b)
//   z = Θ(v1 − b1);  v' = (1 − z)·v1 + z·v_reset;  i' = i1 + x;  b' = b1 + z·beta
// Backward, per step from the last (σ' the surrogate at v1 − b1):
//   gz = g_out + g_v'·(v_reset − v1) + g_b'·beta;  gs = gz·σ'
//   g_v1 = g_v'·(1 − z) + gs;  g_b1 = g_b' − gs;  g_x = g_i'
//   g_v = g_v1·(1 − a);  g_i = g_v1·a + g_i'·(1 − c);  g_b = g_b1·(1 − d)
// The backward pass recomputes v1 and b1 per K-step segment from a checkpoint of (v, i, b).

#include "common.h"

namespace snnf {

template <typename T, bool PN>
static void lsnn_forward(i64 T_, i64 M, const T* x, T* out, T* state, T* ckpt, i64 K,
                         const T* prm, int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 0, [&](i64 n0, i64 len, T*) {
    alignas(64) T st[3 * kMaxBlock];
    alignas(64) T zt[kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    T* __restrict__ b = st + 2 * kMaxBlock;
    load_rows(st, state, 3, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pc = param<T, PN>(prm, 1, M, n0);
    const T* pd = param<T, PN>(prm, 2, M, n0);
    const T* pl = param<T, PN>(prm, 3, M, n0);
    const T* pt = param<T, PN>(prm, 4, M, n0);
    const T* pr = param<T, PN>(prm, 5, M, n0);
    const T* pbeta = param<T, PN>(prm, 6, M, n0);
    for (i64 t = 0; t < T_; ++t) {
      if (ckpt != nullptr && t % K == 0) store_rows(ckpt + (t / K) * 3 * M, st, 3, M, n0, len);
      const T* __restrict__ xt = x + t * M + n0;
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], c = pc[pk<PN>(k)], d = pd[pk<PN>(k)];
        const T vl = pl[pk<PN>(k)], vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)];
        const T beta = pbeta[pk<PN>(k)];
        const T v1 = v[k] + a * ((vl - v[k]) + i[k]);
        const T i1 = i[k] - c * i[k];
        const T b1 = b[k] + d * (vth - b[k]);
        const T z = (v1 - b1) > T(0) ? T(1) : T(0);
        v[k] = (T(1) - z) * v1 + z * vr;
        i[k] = i1 + xt[k];
        b[k] = b1 + z * beta;
        zt[k] = z;
      }
      put_row(out + t * M + n0, zt, len, stream);
    }
    store_rows(state, st, 3, M, n0, len);
  }, T_ * M);
}

template <typename T, bool PN>
static void lsnn_backward(int kind, i64 T_, i64 M, const T* x, const T* ckpt, i64 K,
                          const T* prm, const T* g, i64 gst, i64 gsn, T* gstate, T* gx, int nt) {
  constexpr int kBuf = 3;  // scratch rows per step: v1, b1, the surrogate factor
  const i64 blk = block_size(M, nt, K, kBuf, sizeof(T));
  const i64 C = (T_ + K - 1) / K;
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, scratch_elems(K, blk, kBuf), [&](i64 n0, i64 len, T* scratch) {
    T* v1buf = scratch;
    T* b1buf = scratch + K * blk;
    T* dbuf = scratch + 2 * K * blk;
    T* tmp = dbuf + K * blk;
    T* zeros = tmp + kMaxBlock;
    std::fill(zeros, zeros + len, T(0));
    alignas(64) T st[3 * kMaxBlock];
    alignas(64) T gs[3 * kMaxBlock];
    alignas(64) T gxr[kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    T* __restrict__ b = st + 2 * kMaxBlock;
    T* __restrict__ gv = gs;
    T* __restrict__ gi = gs + kMaxBlock;
    T* __restrict__ gb = gs + 2 * kMaxBlock;
    load_rows(gs, gstate, 3, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pc = param<T, PN>(prm, 1, M, n0);
    const T* pd = param<T, PN>(prm, 2, M, n0);
    const T* pl = param<T, PN>(prm, 3, M, n0);
    const T* pt = param<T, PN>(prm, 4, M, n0);
    const T* pr = param<T, PN>(prm, 5, M, n0);
    const T* pbeta = param<T, PN>(prm, 6, M, n0);
    const T* palpha = param<T, PN>(prm, 7, M, n0);
    for (i64 c0 = C - 1; c0 >= 0; --c0) {
      const i64 t0 = c0 * K, t1 = std::min(T_, t0 + K);
      load_rows(st, ckpt + c0 * 3 * M, 3, M, n0, len);
      for (i64 t = t0; t < t1; ++t) {
        const T* __restrict__ xt = x + t * M + n0;
        T* __restrict__ v1r = v1buf + (t - t0) * blk;
        T* __restrict__ b1r = b1buf + (t - t0) * blk;
        T* __restrict__ sr = dbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], c = pc[pk<PN>(k)], d = pd[pk<PN>(k)];
          const T vl = pl[pk<PN>(k)], vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)];
          const T beta = pbeta[pk<PN>(k)];
          const T v1 = v[k] + a * ((vl - v[k]) + i[k]);
          const T i1 = i[k] - c * i[k];
          const T b1 = b[k] + d * (vth - b[k]);
          const T s = v1 - b1;
          const T z = s > T(0) ? T(1) : T(0);
          v[k] = (T(1) - z) * v1 + z * vr;
          i[k] = i1 + xt[k];
          b[k] = b1 + z * beta;
          v1r[k] = v1;
          b1r[k] = b1;
          sr[k] = s;
        }
      }
      surrogate_rows<T, PN>(kind, dbuf, dbuf, t1 - t0, len, blk, palpha);
      for (i64 t = t1 - 1; t >= t0; --t) {
        const T* __restrict__ gr = grad_row(g, gst, gsn, t, n0, len, tmp, zeros);
        const T* __restrict__ v1r = v1buf + (t - t0) * blk;
        const T* __restrict__ b1r = b1buf + (t - t0) * blk;
        const T* __restrict__ dr = dbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], c = pc[pk<PN>(k)], d = pd[pk<PN>(k)];
          const T vr = pr[pk<PN>(k)], beta = pbeta[pk<PN>(k)];
          const T v1 = v1r[k];
          const T z = (v1 - b1r[k]) > T(0) ? T(1) : T(0);
          const T gz = gr[k] + gv[k] * (vr - v1) + gb[k] * beta;
          const T gsur = gz * dr[k];
          const T gv1 = gv[k] * (T(1) - z) + gsur;
          const T gb1 = gb[k] - gsur;
          gxr[k] = gi[k];
          gi[k] = gv1 * a + gi[k] * (T(1) - c);
          gv[k] = gv1 * (T(1) - a);
          gb[k] = gb1 * (T(1) - d);
        }
        put_row(gx + t * M + n0, gxr, len, stream);
      }
    }
    store_rows(gstate, gs, 3, M, n0, len);
  }, T_ * M);
}

}  // namespace snnf

using namespace snnf;

SNNF_ENTRY_POINTS(lsnn)
