// Feed-forward LIFEx and LIFAdEx (snn_adex/ex.py, snn_adex/adex.py): LIF with an exponential
// spike-initiation term e(v) = delta_T·exp(min((v − v_th)/delta_T, ceiling)) (the overflow guard
// of snn_adex/exponential.py; `ceiling` = ln(max float)/2 of the dtype, passed in).
//
// LIFEx parameters: 0 a = dt·tau_mem_inv  1 b = dt·tau_syn_inv  2 v_leak  3 v_th  4 v_reset
//                   5 delta_T  6 ceiling  7 alpha.       State rows: 0 v, 1 i.
//   i1 = i + x;  v1 = v + a·(((v_leak − v) + e(v)) + i1);  i' = i1 − b·i1
//   z = Θ(v1 − v_th);  v' = (1 − z)·v1 + z·v_reset
// LIFAdEx parameters: 0 a  1 b  2 c = dt·tau_ada_inv  3 v_leak  4 v_th  5 v_reset  6 delta_T
//                     7 adaptation_current  8 adaptation_spike  9 ceiling  10 alpha.
//                     State rows: 0 v, 1 i, 2 w (the adaptation current `a` of the model).
//   i1 = i + x;  v1 = v + a·((((v_leak − v) + e(v)) + i1) − w);  i' = i1 − b·i1
//   w1 = w + c·(adaptation_current·(v − v_leak) − w);  z = Θ(v1 − v_th)
//   v' = (1 − z)·v1 + z·v_reset;  w' = w1 + z·adaptation_spike
// Backward (e'(v) = exp of the clamped argument where it is not clamped, else 0):
//   gz = g_out + g_v'·(v_reset − v1) [+ g_w'·adaptation_spike];  g_v1 = g_v'·(1 − z) + gz·σ'
//   gd = a·g_v1;  g_v = g_v1 + gd·(e'(v) − 1) [+ g_w'·c·adaptation_current]
//   [g_w = −gd + g_w'·(1 − c)];  g_x = g_i = gd + g_i'·(1 − b)
// Forward bits: libm's exp may differ from PyTorch's vectorised exp in the last place (or a few:
// libmvec), so the voltage can differ by ulps from the eager step's (spikes only where that lands
// on v_th).

#include "common.h"

#if defined(SNNF_LIBMVEC)
// glibc's vector math library (libmvec) has SIMD variants of exp/expf; math.h declares them only
// under -ffast-math, which the kernels must not use.  Declaring them here lets `#pragma omp simd`
// loops call the vector variants (4 ulp at most; PyTorch's own vectorised exp differs from libm
// in the last bit too) -- 5× faster than a scalar call per element.
extern "C" {
#pragma omp declare simd notinbranch
float expf(float) noexcept;
#pragma omp declare simd notinbranch
double exp(double) noexcept;
}
#endif

namespace snnf {

template <typename T>
static inline T exp_term(T v, T vth, T dT, T ceiling) {
  const T arg = (v - vth) / dT;
  return dT * std::exp(std::min(arg, ceiling));
}

// d e / d v, as autograd computes it through the clamp (mask: argument <= ceiling).
template <typename T>
static inline T exp_term_grad(T v, T vth, T dT, T ceiling) {
  const T arg = (v - vth) / dT;
  return arg <= ceiling ? (dT * std::exp(arg)) / dT : T(0);
}

template <typename T, bool PN>
static void lif_ex_forward(i64 T_, i64 M, const T* x, T* out, T* state, T* ckpt, i64 K,
                           const T* prm, int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 0, [&](i64 n0, i64 len, T*) {
    alignas(64) T st[2 * kMaxBlock];
    alignas(64) T zt[kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    load_rows(st, state, 2, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pl = param<T, PN>(prm, 2, M, n0);
    const T* pt = param<T, PN>(prm, 3, M, n0);
    const T* pr = param<T, PN>(prm, 4, M, n0);
    const T* pdt = param<T, PN>(prm, 5, M, n0);
    const T ceiling = prm[PN ? 6 * M : 6];
    for (i64 t = 0; t < T_; ++t) {
      if (ckpt != nullptr && t % K == 0) store_rows(ckpt + (t / K) * 2 * M, st, 2, M, n0, len);
      const T* __restrict__ xt = x + t * M + n0;
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], vl = pl[pk<PN>(k)];
        const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)], dT = pdt[pk<PN>(k)];
        const T i1 = i[k] + xt[k];
        const T v1 = v[k] + a * (((vl - v[k]) + exp_term(v[k], vth, dT, ceiling)) + i1);
        const T z = (v1 - vth) > T(0) ? T(1) : T(0);
        i[k] = i1 - b * i1;
        v[k] = (T(1) - z) * v1 + z * vr;
        zt[k] = z;
      }
      put_row(out + t * M + n0, zt, len, stream);
    }
    store_rows(state, st, 2, M, n0, len);
  }, T_ * M);
}

template <typename T, bool PN>
static void lif_ex_backward(int kind, i64 T_, i64 M, const T* x, const T* ckpt, i64 K,
                            const T* prm, const T* g, i64 gst, i64 gsn, T* gstate, T* gx,
                            int nt) {
  constexpr int kBuf = 3;  // scratch rows per step: v, v1, the surrogate factor
  const i64 blk = block_size(M, nt, K, kBuf, sizeof(T));
  const i64 C = (T_ + K - 1) / K;
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, scratch_elems(K, blk, kBuf), [&](i64 n0, i64 len, T* scratch) {
    T* v0buf = scratch;
    T* v1buf = scratch + K * blk;
    T* dbuf = scratch + 2 * K * blk;
    T* tmp = dbuf + K * blk;
    T* zeros = tmp + kMaxBlock;
    std::fill(zeros, zeros + len, T(0));
    alignas(64) T st[2 * kMaxBlock];
    alignas(64) T gs[2 * kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    T* __restrict__ gv = gs;
    T* __restrict__ gi = gs + kMaxBlock;
    load_rows(gs, gstate, 2, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pl = param<T, PN>(prm, 2, M, n0);
    const T* pt = param<T, PN>(prm, 3, M, n0);
    const T* pr = param<T, PN>(prm, 4, M, n0);
    const T* pdt = param<T, PN>(prm, 5, M, n0);
    const T ceiling = prm[PN ? 6 * M : 6];
    const T* palpha = param<T, PN>(prm, 7, M, n0);
    for (i64 c0 = C - 1; c0 >= 0; --c0) {
      const i64 t0 = c0 * K, t1 = std::min(T_, t0 + K);
      load_rows(st, ckpt + c0 * 2 * M, 2, M, n0, len);
      for (i64 t = t0; t < t1; ++t) {
        const T* __restrict__ xt = x + t * M + n0;
        T* __restrict__ v0r = v0buf + (t - t0) * blk;
        T* __restrict__ v1r = v1buf + (t - t0) * blk;
        T* __restrict__ sr = dbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], vl = pl[pk<PN>(k)];
          const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)], dT = pdt[pk<PN>(k)];
          const T i1 = i[k] + xt[k];
          const T v1 = v[k] + a * (((vl - v[k]) + exp_term(v[k], vth, dT, ceiling)) + i1);
          const T s = v1 - vth;
          const T z = s > T(0) ? T(1) : T(0);
          v0r[k] = v[k];
          v1r[k] = v1;
          sr[k] = s;
          i[k] = i1 - b * i1;
          v[k] = (T(1) - z) * v1 + z * vr;
        }
      }
      surrogate_rows<T, PN>(kind, dbuf, dbuf, t1 - t0, len, blk, palpha);
      for (i64 t = t1 - 1; t >= t0; --t) {
        const T* __restrict__ gr = grad_row(g, gst, gsn, t, n0, len, tmp, zeros);
        const T* __restrict__ v0r = v0buf + (t - t0) * blk;
        const T* __restrict__ v1r = v1buf + (t - t0) * blk;
        const T* __restrict__ dr = dbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)];
          const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)], dT = pdt[pk<PN>(k)];
          const T v1 = v1r[k];
          const T z = (v1 - vth) > T(0) ? T(1) : T(0);
          const T gz = gr[k] + gv[k] * (vr - v1);
          const T gv1 = gv[k] * (T(1) - z) + gz * dr[k];
          const T gd = a * gv1;
          gv[k] = gv1 + gd * (exp_term_grad(v0r[k], vth, dT, ceiling) - T(1));
          gi[k] = gd + gi[k] * (T(1) - b);
        }
        put_row(gx + t * M + n0, gi, len, stream);
      }
    }
    store_rows(gstate, gs, 2, M, n0, len);
  }, T_ * M);
}

template <typename T, bool PN>
static void lif_adex_forward(i64 T_, i64 M, const T* x, T* out, T* state, T* ckpt, i64 K,
                             const T* prm, int nt) {
  const i64 blk = block_size(M, nt);
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, 0, [&](i64 n0, i64 len, T*) {
    alignas(64) T st[3 * kMaxBlock];
    alignas(64) T zt[kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    T* __restrict__ w = st + 2 * kMaxBlock;
    load_rows(st, state, 3, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pc = param<T, PN>(prm, 2, M, n0);
    const T* pl = param<T, PN>(prm, 3, M, n0);
    const T* pt = param<T, PN>(prm, 4, M, n0);
    const T* pr = param<T, PN>(prm, 5, M, n0);
    const T* pdt = param<T, PN>(prm, 6, M, n0);
    const T* pac = param<T, PN>(prm, 7, M, n0);
    const T* pas = param<T, PN>(prm, 8, M, n0);
    const T ceiling = prm[PN ? 9 * M : 9];
    for (i64 t = 0; t < T_; ++t) {
      if (ckpt != nullptr && t % K == 0) store_rows(ckpt + (t / K) * 3 * M, st, 3, M, n0, len);
      const T* __restrict__ xt = x + t * M + n0;
#pragma omp simd
      for (i64 k = 0; k < len; ++k) {
        const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], c = pc[pk<PN>(k)];
        const T vl = pl[pk<PN>(k)], vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)];
        const T dT = pdt[pk<PN>(k)], ac = pac[pk<PN>(k)], as = pas[pk<PN>(k)];
        const T i1 = i[k] + xt[k];
        const T drive = (((vl - v[k]) + exp_term(v[k], vth, dT, ceiling)) + i1) - w[k];
        const T v1 = v[k] + a * drive;
        const T w1 = w[k] + c * (ac * (v[k] - vl) - w[k]);
        const T z = (v1 - vth) > T(0) ? T(1) : T(0);
        i[k] = i1 - b * i1;
        v[k] = (T(1) - z) * v1 + z * vr;
        w[k] = w1 + z * as;
        zt[k] = z;
      }
      put_row(out + t * M + n0, zt, len, stream);
    }
    store_rows(state, st, 3, M, n0, len);
  }, T_ * M);
}

template <typename T, bool PN>
static void lif_adex_backward(int kind, i64 T_, i64 M, const T* x, const T* ckpt, i64 K,
                              const T* prm, const T* g, i64 gst, i64 gsn, T* gstate, T* gx,
                              int nt) {
  constexpr int kBuf = 3;  // scratch rows per step: v, v1, the surrogate factor
  const i64 blk = block_size(M, nt, K, kBuf, sizeof(T));
  const i64 C = (T_ + K - 1) / K;
  const bool stream = T_ * M * i64(sizeof(T)) >= kStreamBytes;
  for_blocks<T>(M, nt, blk, scratch_elems(K, blk, kBuf), [&](i64 n0, i64 len, T* scratch) {
    T* v0buf = scratch;
    T* v1buf = scratch + K * blk;
    T* dbuf = scratch + 2 * K * blk;
    T* tmp = dbuf + K * blk;
    T* zeros = tmp + kMaxBlock;
    std::fill(zeros, zeros + len, T(0));
    alignas(64) T st[3 * kMaxBlock];
    alignas(64) T gs[3 * kMaxBlock];
    T* __restrict__ v = st;
    T* __restrict__ i = st + kMaxBlock;
    T* __restrict__ w = st + 2 * kMaxBlock;
    T* __restrict__ gv = gs;
    T* __restrict__ gi = gs + kMaxBlock;
    T* __restrict__ gw = gs + 2 * kMaxBlock;
    load_rows(gs, gstate, 3, M, n0, len);
    const T* pa = param<T, PN>(prm, 0, M, n0);
    const T* pb = param<T, PN>(prm, 1, M, n0);
    const T* pc = param<T, PN>(prm, 2, M, n0);
    const T* pl = param<T, PN>(prm, 3, M, n0);
    const T* pt = param<T, PN>(prm, 4, M, n0);
    const T* pr = param<T, PN>(prm, 5, M, n0);
    const T* pdt = param<T, PN>(prm, 6, M, n0);
    const T* pac = param<T, PN>(prm, 7, M, n0);
    const T* pas = param<T, PN>(prm, 8, M, n0);
    const T ceiling = prm[PN ? 9 * M : 9];
    const T* palpha = param<T, PN>(prm, 10, M, n0);
    for (i64 c0 = C - 1; c0 >= 0; --c0) {
      const i64 t0 = c0 * K, t1 = std::min(T_, t0 + K);
      load_rows(st, ckpt + c0 * 3 * M, 3, M, n0, len);
      for (i64 t = t0; t < t1; ++t) {
        const T* __restrict__ xt = x + t * M + n0;
        T* __restrict__ v0r = v0buf + (t - t0) * blk;
        T* __restrict__ v1r = v1buf + (t - t0) * blk;
        T* __restrict__ sr = dbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], c = pc[pk<PN>(k)];
          const T vl = pl[pk<PN>(k)], vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)];
          const T dT = pdt[pk<PN>(k)], ac = pac[pk<PN>(k)], as = pas[pk<PN>(k)];
          const T i1 = i[k] + xt[k];
          const T drive = (((vl - v[k]) + exp_term(v[k], vth, dT, ceiling)) + i1) - w[k];
          const T v1 = v[k] + a * drive;
          const T w1 = w[k] + c * (ac * (v[k] - vl) - w[k]);
          const T s = v1 - vth;
          const T z = s > T(0) ? T(1) : T(0);
          v0r[k] = v[k];
          v1r[k] = v1;
          sr[k] = s;
          i[k] = i1 - b * i1;
          v[k] = (T(1) - z) * v1 + z * vr;
          w[k] = w1 + z * as;
        }
      }
      surrogate_rows<T, PN>(kind, dbuf, dbuf, t1 - t0, len, blk, palpha);
      for (i64 t = t1 - 1; t >= t0; --t) {
        const T* __restrict__ gr = grad_row(g, gst, gsn, t, n0, len, tmp, zeros);
        const T* __restrict__ v0r = v0buf + (t - t0) * blk;
        const T* __restrict__ v1r = v1buf + (t - t0) * blk;
        const T* __restrict__ dr = dbuf + (t - t0) * blk;
#pragma omp simd
        for (i64 k = 0; k < len; ++k) {
          const T a = pa[pk<PN>(k)], b = pb[pk<PN>(k)], c = pc[pk<PN>(k)];
          const T vth = pt[pk<PN>(k)], vr = pr[pk<PN>(k)], dT = pdt[pk<PN>(k)];
          const T ac = pac[pk<PN>(k)], as = pas[pk<PN>(k)];
          const T v1 = v1r[k];
          const T z = (v1 - vth) > T(0) ? T(1) : T(0);
          const T gz = gr[k] + gv[k] * (vr - v1) + gw[k] * as;
          const T gv1 = gv[k] * (T(1) - z) + gz * dr[k];
          const T gd = a * gv1;
          gv[k] = gv1 + gd * (exp_term_grad(v0r[k], vth, dT, ceiling) - T(1)) + gw[k] * c * ac;
          gw[k] = gw[k] * (T(1) - c) - gd;
          gi[k] = gd + gi[k] * (T(1) - b);
        }
        put_row(gx + t * M + n0, gi, len, stream);
      }
    }
    store_rows(gstate, gs, 3, M, n0, len);
  }, T_ * M);
}

}  // namespace snnf

using namespace snnf;

SNNF_ENTRY_POINTS(lif_ex)
SNNF_ENTRY_POINTS(lif_adex)
