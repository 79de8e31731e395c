// Recurrent LIF and LSNN layers (snn_lif/lif.py lif_recurrent_step, snn_lsnn/lsnn.py
// lsnn_recurrent_step): the recurrent current and the neuron update of every step in one call.
//
// Tensors (contiguous, time-major; B batch elements of H neurons, M = B·H):
//   xin      (T, B, H)  the projected input W_in·x of every step (one matrix product, in Python)
//   wt       (H, H)     W_recᵀ: row j holds the weights out of neuron j (forward)
//   w        (H, H)     W_rec:  row h holds the weights into neuron h (backward)
//   out      (T, B, H)  the spikes
//   state    (S, B, H)  row 0 the last spikes z, then the model's fields (as in its NamedTuple)
//   saved    (T, B, H)  the spike's argument s of every step (when not null)
//   gcur     (T, B, H)  ∂L/∂current of every step (backward; autograd's linear backward turns
//                       it into ∂x and ∂W_in)
//   gw       (H, H)     ∂W_rec = Σ_t gcur_tᵀ·z_{t−1} (backward, when not null)
//
// Step t of one batch element, as the eager backend computes it:
//   cur = xin_t + rec,  rec = W_rec·z_{t−1} = Σ_j z_{t−1,j}·wt[j]  over the j with z_{t−1,j} ≠ 0,
// in ascending j (the spikes are 0/1, so this adds the rows of the neurons that spiked and skips
// only zero terms; the initial state's z may hold any values).  Then the model's update:
//   LIF  (params a, b, v_leak, v_th, v_reset, alpha; rows z, v, i):
//     i1 = i + cur;  v1 = v + a·((v_leak − v) + i1);  i' = i1 − b·i1;  s = v1 − v_th
//     z = Θ(s);  v' = (1 − z)·v1 + z·v_reset
//   LSNN (params a, c, d, v_leak, v_th, v_reset, beta, alpha; rows z, v, i, b):
//     v1 = v + a·((v_leak − v) + i);  i1 = i − c·i;  b1 = b + d·(v_th − b);  s = v1 − b1
//     z = Θ(s);  v' = (1 − z)·v1 + z·v_reset;  i' = i1 + cur;  b' = b1 + z·beta
//
// Backward (g· = ∂L/∂·, σ' the surrogate at s), per step from the last.  The recurrent steps
// use the detached spike in the reset and in LSNN's threshold jump, so the spike's gradient
//   gz = g_out_t + W_recᵀ·g_cur_{t+1}        (at the last step: + the final state's g_z)
// reaches the state only through σ':
//   LIF:   g_v1 = g_v'·(1 − z) + gz·σ';  g_cur = g_i1 = g_i'·(1 − b) + g_v1·a
//          g_v = g_v1·(1 − a);  g_i = g_i1
//   LSNN:  gσ = gz·σ';  g_v1 = g_v'·(1 − z) + gσ;  g_b1 = g_b' − gσ;  g_cur = g_i'
//          g_v = g_v1·(1 − a);  g_i = g_v1·a + g_i'·(1 − c);  g_b = g_b1·(1 − d)
// and the initial z gets W_recᵀ·g_cur_0.  Nothing but s enters (z = Θ(s)), so s is all the
// forward pass saves.  W_recᵀ·g_cur is dense: per step and batch element the rows of W_rec
// scaled by g_cur_h, added in ascending h, each row used for eight batch elements at a time.
// ∂W_rec, like the forward current, adds g_cur to the rows of the neurons that spiked.
//
// Parallel over the batch: a thread takes a group of batch elements through all T steps (one
// parallel region per call, no barrier per step), its state in a per-thread scratch.

#include "common.h"

namespace snnf {

// SIMD vectors of the machine's widest registers, through the compiler's vector extension
// (element-wise IEEE operations; no contraction into fused multiply-adds).  The recurrent
// products work on copies of W_rec and W_recᵀ whose rows are padded with zeros to Hp, a multiple
// of the vector width, so that every row is whole vectors.
#if defined(__AVX512F__)
constexpr i64 kVecBytes = 64;
#elif defined(__AVX__)
constexpr i64 kVecBytes = 32;
#else
constexpr i64 kVecBytes = 16;
#endif

template <typename T>
struct Simd {
  typedef T vec __attribute__((vector_size(kVecBytes)));
  static constexpr i64 V = kVecBytes / sizeof(T);
  static inline vec load(const T* p) {
    vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static inline void store(T* p, vec v) { std::memcpy(p, &v, sizeof v); }
};

template <typename T>
static inline i64 padded(i64 H) {
  return (H + Simd<T>::V - 1) / Simd<T>::V * Simd<T>::V;
}

// A copy of the (H, H) matrix m with rows padded with zeros to Hp.
template <typename T>
static std::vector<T> pad_rows(const T* m, i64 H, i64 Hp) {
  std::vector<T> out(static_cast<size_t>(H * Hp), T(0));
  for (i64 r = 0; r < H; ++r) std::memcpy(out.data() + r * Hp, m + r * H, H * sizeof(T));
  return out;
}

// out[0:NV·V] = Σ_q scale_q·rows[q][off:off + NV·V] in ascending q (scale_q = 1, no multiply,
// unless SCALED), in registers.
template <typename T, int NV, bool SCALED>
static inline void sum_rows_chunk(const T* const* rows, const T* scale, i64 n, i64 off, T* out) {
  using S = Simd<T>;
  typename S::vec acc[NV] = {};
  for (i64 q = 0; q < n; ++q) {
    const T* r = rows[q] + off;
    for (int k = 0; k < NV; ++k) {
      if constexpr (SCALED) {
        acc[k] += scale[q] * S::load(r + k * S::V);
      } else {
        acc[k] += S::load(r + k * S::V);
      }
    }
  }
  for (int k = 0; k < NV; ++k) S::store(out + k * S::V, acc[k]);
}

// The j with z[j] ≠ 0, in ascending order: rows[q] = base + j·Hp, scale[q] = z[j].  Returns
// their number; `spikes` tells whether every one of them is exactly 1 (no multiply needed).
// Scans 64 neurons at a time into a bit mask (branch-free, vectorised), then walks its set bits.
template <typename P, typename T>
static inline i64 nonzero_rows(const T* z, i64 H, P base, i64 Hp, P* rows, T* scale,
                               bool& spikes) {
  i64 n = 0;
  uint64_t other = 0;  // nonzero values other than 1
  for (i64 j0 = 0; j0 < H; j0 += 64) {
    const int len = static_cast<int>(std::min<i64>(64, H - j0));
    uint64_t nonzero = 0, ones = 0;
    for (int k = 0; k < len; ++k) {
      nonzero |= uint64_t(z[j0 + k] != T(0)) << k;
      ones |= uint64_t(z[j0 + k] == T(1)) << k;
    }
    other |= nonzero & ~ones;
    for (; nonzero != 0; nonzero &= nonzero - 1) {
      const i64 j = j0 + __builtin_ctzll(nonzero);
      scale[n] = z[j];
      rows[n++] = base + j * Hp;
    }
  }
  spikes = other == 0;
  return n;
}

// rec[0:Hp] = W_rec·z = Σ_j z[j]·wtp[j, :] over the j with z[j] ≠ 0, in ascending j (wtp: W_recᵀ
// padded).  Spikes add the rows without a multiplication.
template <typename T>
static void recurrent_current(const T* z, const T* wtp, i64 H, i64 Hp, T* rec, const T** rows,
                              T* scale) {
  bool spikes;
  const i64 n = nonzero_rows(z, H, wtp, Hp, rows, scale, spikes);
  constexpr i64 V = Simd<T>::V;
  i64 h = 0;
  if (spikes) {
    for (; h + 4 * V <= Hp; h += 4 * V) sum_rows_chunk<T, 4, false>(rows, scale, n, h, rec + h);
    for (; h < Hp; h += V) sum_rows_chunk<T, 1, false>(rows, scale, n, h, rec + h);
  } else {
    for (; h < Hp; h += V) sum_rows_chunk<T, 1, true>(rows, scale, n, h, rec + h);
  }
}

// The weight gradient's share of one step and batch element: gwt[j, :] += z[j]·gc[0:Hp] for the
// j with z[j] ≠ 0 (gwt: ∂W_recᵀ, rows padded; gc: ∂current, padded), in ascending j.
template <typename T>
static void weight_gradient(const T* z, const T* gc, i64 H, i64 Hp, T* gwt, T** rows, T* scale) {
  using S = Simd<T>;
  bool spikes;
  const i64 n = nonzero_rows(z, H, gwt, Hp, rows, scale, spikes);
  for (i64 q = 0; q < n; ++q) {
    for (i64 h = 0; h < Hp; h += S::V) {
      const typename S::vec g = S::load(gc + h);
      S::store(rows[q] + h, S::load(rows[q] + h) + (spikes ? g : scale[q] * g));
    }
  }
}

// acc[b, j0:j0 + V] (+)= Σ_{h0 ≤ h < h1} g[b, h]·wp[h, j0:j0 + V] for NB batch elements (g rows
// of H, acc rows of Hp), in ascending h, in registers; each vector of wp is loaded once for the
// NB of them.  The first block of rows starts from 0, the others from acc.
template <typename T, int NB>
static inline void gradient_block(const T* g, const T* wp, i64 H, i64 Hp, i64 h0, i64 h1, i64 j0,
                                  T* acc) {
  using S = Simd<T>;
  typename S::vec a[NB] = {};
  if (h0 > 0) {
    for (int b = 0; b < NB; ++b) a[b] = S::load(acc + b * Hp + j0);
  }
  for (i64 h = h0; h < h1; ++h) {
    const typename S::vec w = S::load(wp + h * Hp + j0);
    for (int b = 0; b < NB; ++b) a[b] += g[b * H + h] * w;
  }
  for (int b = 0; b < NB; ++b) S::store(acc + b * Hp + j0, a[b]);
}

// acc[b, 0:Hp] = Σ_h g[b, h]·wp[h, :] = (W_recᵀ·g_b) for the nb batch elements of a group.  The
// rows of wp are taken in blocks that fit in L2 (256 KiB), each used for the whole group; the
// sum of every element still runs over h in ascending order.
template <typename T>
static void recurrent_gradient(const T* g, const T* wp, i64 H, i64 Hp, i64 nb, T* acc) {
  constexpr i64 V = Simd<T>::V;
  const i64 rows = std::max<i64>(1, (i64(256) << 10) / (Hp * i64(sizeof(T))));
  for (i64 h0 = 0; h0 < H; h0 += rows) {
    const i64 h1 = std::min(H, h0 + rows);
    i64 b = 0;
    for (; b + 8 <= nb; b += 8) {
      for (i64 j0 = 0; j0 < Hp; j0 += V)
        gradient_block<T, 8>(g + b * H, wp, H, Hp, h0, h1, j0, acc + b * Hp);
    }
    for (; b < nb; ++b) {
      for (i64 j0 = 0; j0 < Hp; j0 += V)
        gradient_block<T, 1>(g + b * H, wp, H, Hp, h0, h1, j0, acc + b * Hp);
    }
  }
}

// dst[b, 0:H] = src[b, 0:H] for nb rows of stride Hp (src) and H (dst).
template <typename T>
static inline void unpad(T* dst, const T* src, i64 nb, i64 H, i64 Hp) {
  for (i64 b = 0; b < nb; ++b) std::memcpy(dst + b * H, src + b * Hp, H * sizeof(T));
}

// The parameters of a group's neurons: q(j, k) is parameter j of the group's element k (the
// (P, M) layout per neuron, else one value each).
template <typename T, bool PN>
struct Params {
  const T* prm;
  i64 M, n0;
  inline T operator()(int j, i64 k) const { return PN ? prm[j * M + n0 + k] : prm[j]; }
};

// The neuron updates, one element at a time: `e` points at the element in the first of the S
// state rows of a group (row r at e[r·L], L = nb·H).  forward takes the step's current and
// returns the spike's argument s; backward takes the spike's gradient gz, s and the surrogate
// d = σ'(s), updates the gradient rows `ge` (laid out as the state) and returns ∂L/∂current.

template <typename T, bool PN>
struct RecurrentLIF {
  static constexpr int S = 3;       // z, v, i
  static constexpr int kAlpha = 5;  // a, b, v_leak, v_th, v_reset, alpha

  static inline T forward(Params<T, PN> q, i64 k, T cur, T* e, i64 L) {
    T &z = e[0], &v = e[L], &i = e[2 * L];
    const T i1 = i + cur;
    const T v1 = v + q(0, k) * ((q(2, k) - v) + i1);
    const T s = v1 - q(3, k);
    z = s > T(0) ? T(1) : T(0);
    v = (T(1) - z) * v1 + z * q(4, k);
    i = i1 - q(1, k) * i1;
    return s;
  }

  static inline T backward(Params<T, PN> q, i64 k, T gz, T s, T d, T* ge, i64 L) {
    T &gv = ge[L], &gi = ge[2 * L];
    const T a = q(0, k);
    const T z = s > T(0) ? T(1) : T(0);
    const T gv1 = gv * (T(1) - z) + gz * d;
    gi = gi * (T(1) - q(1, k)) + gv1 * a;
    gv = gv1 * (T(1) - a);
    return gi;
  }
};

template <typename T, bool PN>
struct RecurrentLSNN {
  static constexpr int S = 4;       // z, v, i, b
  static constexpr int kAlpha = 7;  // a, c, d, v_leak, v_th, v_reset, beta, alpha

  static inline T forward(Params<T, PN> q, i64 k, T cur, T* e, i64 L) {
    T &z = e[0], &v = e[L], &i = e[2 * L], &b = e[3 * L];
    const T v1 = v + q(0, k) * ((q(3, k) - v) + i);
    const T i1 = i - q(1, k) * i;
    const T b1 = b + q(2, k) * (q(4, k) - b);
    const T s = v1 - b1;
    z = s > T(0) ? T(1) : T(0);
    v = (T(1) - z) * v1 + z * q(5, k);
    i = i1 + cur;
    b = b1 + z * q(6, k);
    return s;
  }

  static inline T backward(Params<T, PN> q, i64 k, T gz, T s, T d, T* ge, i64 L) {
    T &gv = ge[L], &gi = ge[2 * L], &gb = ge[3 * L];
    const T a = q(0, k);
    const T z = s > T(0) ? T(1) : T(0);
    const T gsur = gz * d;
    const T gv1 = gv * (T(1) - z) + gsur;
    const T gcur = gi;
    gi = gv1 * a + gi * (T(1) - q(1, k));
    gv = gv1 * (T(1) - a);
    gb = (gb - gsur) * (T(1) - q(2, k));
    return gcur;
  }
};

// One step of a group: the currents xin + rec into the neurons, the spike's arguments to sr.
template <class N, typename T, bool PN>
static void forward_step(Params<T, PN> q, i64 L, const T* __restrict__ xin,
                         const T* __restrict__ rec, T* st, T* __restrict__ sr) {
#pragma omp simd
  for (i64 k = 0; k < L; ++k) sr[k] = N::forward(q, k, xin[k] + rec[k], st + k, L);
}

// One step back: gz = g_out + (W_recᵀ·g_cur of the step after, in row 0 of gs); g_cur to gc.
template <class N, typename T, bool PN>
static void backward_step(Params<T, PN> q, i64 L, const T* __restrict__ gout,
                          const T* __restrict__ sr, const T* __restrict__ d, T* gs,
                          T* __restrict__ gc) {
#pragma omp simd
  for (i64 k = 0; k < L; ++k) gc[k] = N::backward(q, k, gout[k] + gs[k], sr[k], d[k], gs + k, L);
}

// A call runs on one thread below this much work (recurrent_work): a parallel region costs up to
// a scheduler time slice when another process holds a core, and the batch's groups run through
// all T steps in lockstep with nothing else to overlap.  Measured on the 2-core development
// machine under load (T=2400, B=32, H=10: 1.5·10⁶ units, about 1 ms forward and 5 ms backward
// on one thread): two threads took 15–30 ms for the same work.  2²³ units is about 10 ms on one
// thread.
constexpr i64 kRecurrentParallelWork = i64(1) << 23;

// The work of a call in element-steps: the neuron update plus the recurrent products, about
// H/8 element-steps per element and step.
static inline i64 recurrent_work(i64 T_, i64 M, i64 H) { return T_ * M * (1 + H / 8); }

// Threads for a call of this much work.
static inline int recurrent_threads(i64 work, int nt) {
  return work < kRecurrentParallelWork ? 1 : std::max(1, nt);
}

// Steps of ∂W_rec summed on their own before they join the total (see recurrent_backward).
constexpr i64 kWeightSteps = 32;

// Batch elements per group: all of them on one thread, else about two groups per thread (a
// thread slowed by another process leaves its second group to the others).  Each group keeps its
// own ∂W_rec in the backward pass (summed in group order at the end, so the result does not
// depend on which thread ran which group).
static inline i64 group_size(i64 B, int nt) {
  return nt == 1 ? B : std::max<i64>(1, (B + 2 * nt - 1) / (2 * nt));
}

// How a call is split: M = B·H elements, the threads and batch elements per group, the padded
// row width, whether outputs are streamed, and the work (for_blocks' single-thread threshold).
struct Plan {
  i64 M, nb, Hp, work;
  int nt;
  bool stream;
};

template <typename T>
static Plan plan(i64 T_, i64 B, i64 H, int nt) {
  const i64 M = B * H, work = recurrent_work(T_, M, H);
  nt = recurrent_threads(work, nt);
  return {M, group_size(B, nt), padded<T>(H), work, nt, T_ * M * i64(sizeof(T)) >= kStreamBytes};
}

template <template <typename, bool> class Model, typename T, bool PN>
static void recurrent_forward(i64 T_, i64 B, i64 H, const T* xin, const T* wt, T* out, T* state,
                              T* saved, const T* prm, int nt) {
  using N = Model<T, PN>;
  const Plan c = plan<T>(T_, B, H, nt);
  const i64 M = c.M, nb = c.nb, Hp = c.Hp;
  const std::vector<T> wtp = pad_rows(wt, H, Hp);
  const i64 scratch = (N::S + 2) * nb * H + nb * Hp + H;  // state rows, rec, s; padded rec, scales
  for_blocks<T>(B, c.nt, nb, scratch, [&](i64 b0, i64 nbb, T* buf) {
    const i64 n0 = b0 * H, L = nbb * H;
    T* st = buf;
    T* rec = st + N::S * L;
    T* sr = rec + L;
    T* recp = sr + L;
    T* scale = recp + nbb * Hp;
    std::vector<const T*> rows(static_cast<size_t>(H));
    load_rows(st, state, N::S, M, n0, L, L);
    for (i64 t = 0; t < T_; ++t) {
      for (i64 b = 0; b < nbb; ++b) {
        recurrent_current(st + b * H, wtp.data(), H, Hp, recp + b * Hp, rows.data(), scale);
      }
      unpad(rec, recp, nbb, H, Hp);
      forward_step<N>(Params<T, PN>{prm, M, n0}, L, xin + t * M + n0, rec, st, sr);
      put_row(out + t * M + n0, st, L, c.stream);
      if (saved != nullptr) put_row(saved + t * M + n0, sr, L, c.stream);
    }
    store_rows(state, st, N::S, M, n0, L, L);
  }, c.work);
}

template <template <typename, bool> class Model, typename T, bool PN>
static void recurrent_backward(int kind, i64 T_, i64 B, i64 H, const T* w, const T* saved,
                               const T* out, const T* z0, const T* prm, const T* g, i64 gst,
                               i64 gsn, T* gstate, T* gcur, T* gw, int nt) {
  using N = Model<T, PN>;
  const Plan c = plan<T>(T_, B, H, nt);
  const i64 M = c.M, nb = c.nb, Hp = c.Hp;
  const std::vector<T> wp = pad_rows(w, H, Hp);
  // ∂W_recᵀ of each group (rows padded), when W_rec needs a gradient: its total and the sum of
  // the last few steps, added to the total every kWeightSteps steps (a two-level sum: over T
  // steps its rounding error grows with T/kWeightSteps + kWeightSteps terms instead of T)
  const i64 groups = (B + nb - 1) / nb, HHp = H * Hp;
  std::vector<T> gwt(gw != nullptr ? static_cast<size_t>(2 * groups * HHp) : 0, T(0));
  // gradient rows, g_cur, σ', gathered g_out, zeros; g_cur and W_recᵀ·g_cur padded; scales
  const i64 scratch = (N::S + 4) * nb * H + 2 * nb * Hp + H;
  for_blocks<T>(B, c.nt, nb, scratch, [&](i64 b0, i64 nbb, T* buf) {
    const i64 n0 = b0 * H, L = nbb * H;
    T* gs = buf;
    T* gc = gs + N::S * L;
    T* d = gc + L;
    T* tmp = d + L;
    T* zeros = tmp + L;
    T* gcp = zeros + L;
    T* accp = gcp + nbb * Hp;
    T* scale = accp + nbb * Hp;
    std::fill(zeros, zeros + L, T(0));
    std::fill(gcp, gcp + nbb * Hp, T(0));
    std::vector<T*> rows(static_cast<size_t>(H));
    T* gwt_total = gw != nullptr ? gwt.data() + 2 * (b0 / nb) * HHp : nullptr;
    T* gwt_recent = gw != nullptr ? gwt_total + HHp : nullptr;
    const T* alpha = param<T, PN>(prm, N::kAlpha, M, n0);
    load_rows(gs, gstate, N::S, M, n0, L, L);
    for (i64 t = T_ - 1; t >= 0; --t) {
      const T* gr = grad_row(g, gst, gsn, t, n0, L, tmp, zeros);
      const T* sr = saved + t * M + n0;
      surrogate_rows<T, PN>(kind, sr, d, 1, L, L, alpha);
      backward_step<N>(Params<T, PN>{prm, M, n0}, L, gr, sr, d, gs, gc);
      put_row(gcur + t * M + n0, gc, L, c.stream);
      recurrent_gradient(gc, wp.data(), H, Hp, nbb, accp);
      unpad(gs, accp, nbb, H, Hp);  // row 0: W_recᵀ·g_cur_t, for the step before
      if (gwt_total == nullptr) continue;
      const T* zprev = (t > 0 ? out + (t - 1) * M : z0) + n0;  // the spikes W_rec weighed
      for (i64 b = 0; b < nbb; ++b) {
        std::memcpy(gcp + b * Hp, gc + b * H, H * sizeof(T));
        weight_gradient(zprev + b * H, gcp + b * Hp, H, Hp, gwt_recent, rows.data(), scale);
      }
      if (t % kWeightSteps == 0) {
#pragma omp simd
        for (i64 k = 0; k < HHp; ++k) gwt_total[k] += gwt_recent[k];
        std::fill(gwt_recent, gwt_recent + HHp, T(0));
      }
    }
    store_rows(gstate, gs, N::S, M, n0, L, L);
  }, c.work);
  if (gw == nullptr) return;
  for (i64 h = 0; h < H; ++h) {  // gw[h, j] = Σ_groups gwt[j, h], the groups in order
    for (i64 j = 0; j < H; ++j) {
      T sum = gwt[j * Hp + h];
      for (i64 k = 1; k < groups; ++k) sum += gwt[2 * k * HHp + j * Hp + h];
      gw[h * H + j] = sum;
    }
  }
}

}  // namespace snnf

using namespace snnf;

// Per model (NAME: lif_recurrent, lsnn_recurrent):
//   int snnf_NAME_forward(bits, per_neuron, T, B, H, xin, wt, out, state, saved, params, nthreads)
//     runs T steps from `state` (overwritten with the final state), writes the spikes to `out`
//     and, when `saved` is not null, the spike's argument s of every step to `saved`;
//   int snnf_NAME_backward(bits, per_neuron, surrogate, T, B, H, w, saved, out, z0, params,
//                          grad_out, grad_out_stride_t, grad_out_stride_n, grad_state,
//                          grad_current, grad_w, nthreads)
//     `out` the forward pass's spikes and `z0` the initial state's z (B, H); grad_state holds the
//     final state's gradient on entry and the initial state's on return; writes ∂L/∂current of
//     every step to grad_current and, when grad_w is not null, ∂W_rec (H, H) to grad_w;
//     grad_out may be null.
#define SNNF_RECURRENT_ENTRY_POINTS(NAME, MODEL)                                                  \
  SNNF_EXPORT int snnf_##NAME##_forward(int bits, int per_neuron, int64_t T_, int64_t B,          \
                                        int64_t H, const void* xin, const void* wt, void* out,    \
                                        void* state, void* saved, const void* params,             \
                                        int nthreads) {                                           \
    SNNF_DISPATCH(bits, per_neuron,                                                               \
                  (recurrent_forward<MODEL, T, PN>(                                               \
                      T_, B, H, static_cast<const T*>(xin), static_cast<const T*>(wt),            \
                      static_cast<T*>(out), static_cast<T*>(state), static_cast<T*>(saved),       \
                      static_cast<const T*>(params), nthreads)));                                 \
  }                                                                                               \
  SNNF_EXPORT int snnf_##NAME##_backward(                                                          \
      int bits, int per_neuron, int kind, int64_t T_, int64_t B, int64_t H, const void* w,         \
      const void* saved, const void* out, const void* z0, const void* params, const void* g,      \
      int64_t gst, int64_t gsn, void* gstate, void* gcur, void* gw, int nthreads) {                \
    if (kind < 0 || kind >= snnf::kSurrogateCount) return 2;                                       \
    if (saved == nullptr || out == nullptr || z0 == nullptr) return 3;                             \
    if (gstate == nullptr || gcur == nullptr) return 3;                                            \
    SNNF_DISPATCH(bits, per_neuron,                                                                \
                  (recurrent_backward<MODEL, T, PN>(                                               \
                      kind, T_, B, H, static_cast<const T*>(w), static_cast<const T*>(saved),      \
                      static_cast<const T*>(out), static_cast<const T*>(z0),                       \
                      static_cast<const T*>(params), static_cast<const T*>(g), gst, gsn,           \
                      static_cast<T*>(gstate), static_cast<T*>(gcur), static_cast<T*>(gw),         \
                      nthreads)));                                                                 \
  }

SNNF_RECURRENT_ENTRY_POINTS(lif_recurrent, RecurrentLIF)
SNNF_RECURRENT_ENTRY_POINTS(lsnn_recurrent, RecurrentLSNN)
