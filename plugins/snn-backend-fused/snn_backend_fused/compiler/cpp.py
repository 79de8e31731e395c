"""C++ for a traced step: the whole time loop of a feed-forward layer, forward and backward.

Every value of the step is a SIMD vector of GCC/Clang's vector extensions, whose width follows
the target (16 bytes SSE/NEON, 32 AVX2, 64 AVX-512): the arithmetic is explicitly vectorised
and does not depend on the auto-vectoriser; branches are selects on comparison masks.  A thread
takes blocks of ``UNROLL`` vectors of neurons; their state lives in registers across all T
steps.  Exactness: each IR op is one C++ operation in the dtype of the layer, in the traced
order, compiled without FMA contraction or reassociation, so arithmetic rounds where PyTorch's
does; ``exp``/``log``/``tanh``/... come from glibc's vector math library (libmvec) where it has
them (a few ulp, like PyTorch's own vectorised versions), else lane by lane from ``<cmath>``.

Backward: the forward pass stores the state every ``K`` steps (checkpoints); the backward pass
recomputes each block of K states from its checkpoint into a small per-thread buffer and runs
the step's vector-Jacobian product (derived from the IR, :func:`.ir.differentiate`) backwards
through them: memory ``T/K`` states instead of T, for one more forward pass of arithmetic.

Exported per dtype (``f32``, ``f64``): ``snng_forward_<d>`` and ``snng_backward_<d>``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from snn_backend_fused.compiler.ir import Arg, Const, Graph, differentiate
from snn_backend_fused.compiler.trace import Traced

#: Vectors per block (independent dependency chains per step).
UNROLL = 2
#: Steps between checkpoints of the state.
CHECKPOINT_EVERY = 16
#: Neurons per tile (a multiple of every block size): a thread keeps a tile's state in its
#: cache, and each step reads and writes TILE contiguous values per stream.
TILE = 2048
#: The same for the backward pass, which also keeps K steps of taped values per tile.
BACKWARD_TILE = 1024
#: Math functions taken from libmvec when present: IR op -> C name.
VECTOR_MATH = {
    "exp": "exp",
    "log": "log",
    "tanh": "tanh",
    "expm1": "expm1",
    "log1p": "log1p",
    "sin": "sin",
    "cos": "cos",
}

PRELUDE = r"""
#include <cstdint>
#include <cstring>
#include <cmath>
#include <algorithm>
#if defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#define SNNG_STREAM 1
#endif

#if defined(__AVX512F__)
#define SNNG_BYTES 64
#define SNNG_PREFIX _ZGVeN
#elif defined(__AVX2__) || defined(__AVX__)
#define SNNG_BYTES 32
#define SNNG_PREFIX _ZGVdN
#else
#define SNNG_BYTES 16
#define SNNG_PREFIX _ZGVbN
#endif
#define SNNG_MVEC3(prefix, lanes, name) prefix##lanes##v_##name
#define SNNG_MVEC2(prefix, lanes, name) SNNG_MVEC3(prefix, lanes, name)
#define SNNG_MVEC(name, lanes) SNNG_MVEC2(SNNG_PREFIX, lanes, name)
#if !defined(__x86_64__)
#undef SNNG_LIBMVEC
#endif
#define SNNG_EXPORT extern "C" __attribute__((visibility("default")))
// The functions holding the hot loops; with SNNG_INSPECT (the vectorisation test) they are kept
// out of line, so that their object code can be read one by one.
#if defined(SNNG_INSPECT)
#define SNNG_HOT __attribute__((noinline, used)) static
#else
#define SNNG_HOT static inline
#endif
#if defined(SNNG_STREAM)
template <typename S, typename V>
static inline void snng_stream_store(S* p, V v) {
  if constexpr (sizeof(V) == 64 && sizeof(S) == 4) {
#if defined(__AVX512F__)
    __m512 m; std::memcpy(&m, &v, 64); _mm512_stream_ps(reinterpret_cast<float*>(p), m); return;
#endif
  } else if constexpr (sizeof(V) == 64 && sizeof(S) == 8) {
#if defined(__AVX512F__)
    __m512d m; std::memcpy(&m, &v, 64); _mm512_stream_pd(reinterpret_cast<double*>(p), m); return;
#endif
  } else if constexpr (sizeof(V) == 32 && sizeof(S) == 4) {
#if defined(__AVX__)
    __m256 m; std::memcpy(&m, &v, 32); _mm256_stream_ps(reinterpret_cast<float*>(p), m); return;
#endif
  } else if constexpr (sizeof(V) == 32 && sizeof(S) == 8) {
#if defined(__AVX__)
    __m256d m; std::memcpy(&m, &v, 32); _mm256_stream_pd(reinterpret_cast<double*>(p), m); return;
#endif
  } else if constexpr (sizeof(V) == 16 && sizeof(S) == 4) {
    __m128 m; std::memcpy(&m, &v, 16); _mm_stream_ps(reinterpret_cast<float*>(p), m); return;
  } else if constexpr (sizeof(V) == 16 && sizeof(S) == 8) {
    __m128d m; std::memcpy(&m, &v, 16); _mm_stream_pd(reinterpret_cast<double*>(p), m); return;
  }
  std::memcpy(p, &v, sizeof(V));
}
#endif
"""

COMMON_BLOCK = r"""
namespace snng_@D@ {
typedef @S@ S;
typedef @S@ V __attribute__((vector_size(SNNG_BYTES)));
typedef @I@ M __attribute__((vector_size(SNNG_BYTES)));
constexpr int L = SNNG_BYTES / sizeof(S);
constexpr int U = @UNROLL@;
constexpr int BL = L * U;
constexpr int K = @K@;
constexpr int TILE = @TILE@, BTILE = @BTILE@;
constexpr int NS = @NS@, NP = @NP@, NT = @NT@;
constexpr int NS1 = NS > 0 ? NS : 1, NP1 = NP > 0 ? NP : 1, NT1 = NT > 0 ? NT : 1;

static inline V splat(S a) { V v; for (int l = 0; l < L; ++l) v[l] = a; return v; }
static inline V sel(M m, V a, V b) { return m ? a : b; }
static inline V load(const S* p) { V v; std::memcpy(&v, p, sizeof(V)); return v; }
static inline void store(S* p, V v) { std::memcpy(p, &v, sizeof(V)); }
// A store that bypasses the caches (no read for ownership) where the address allows it: for
// outputs written once per step and read only after the kernel.
static inline void stream(S* p, V v) {
#if defined(SNNG_STREAM)
  if ((reinterpret_cast<uintptr_t>(p) & (SNNG_BYTES - 1)) == 0) {
    snng_stream_store(p, v);
    return;
  }
#endif
  store(p, v);
}
static inline M bits(V a) { M m; std::memcpy(&m, &a, sizeof(M)); return m; }
static inline V from_bits(M m) { V v; std::memcpy(&v, &m, sizeof(V)); return v; }
static inline V vabs(V a) { return from_bits(bits(a) & ~bits(splat((S)-0.0))); }
#define SNNG_LANEWISE(name, fn) \
  static inline V name(V a) { V r; for (int l = 0; l < L; ++l) r[l] = fn(a[l]); return r; }
@MATH@
static inline V vpow(V a, S e) { V r; for (int l = 0; l < L; ++l) r[l] = std::pow(a[l], e); return r; }
static inline V vsqrt(V a) { V r; for (int l = 0; l < L; ++l) r[l] = std::sqrt(a[l]); return r; }
// y[0:n] += c·x[0:n]: each y[i] gains one product, in the order of the calls (the tail too, in
// a vector padded with zeros).
SNNG_HOT void axpy(S* y, S c, const S* x, int64_t n) {
  const V cv = splat(c);
  int64_t i = 0;
  for (; i + L <= n; i += L) store(y + i, load(y + i) + cv * load(x + i));
  if (i < n) {
    S ty[L] = {}, tx[L] = {};
    std::memcpy(ty, y + i, (n - i) * sizeof(S));
    std::memcpy(tx, x + i, (n - i) * sizeof(S));
    store(ty, load(ty) + cv * load(tx));
    std::memcpy(y + i, ty, (n - i) * sizeof(S));
  }
}
// *target += the sum of a's lanes (in lane order): once per row of a per-synapse array.
SNNG_HOT void add_lane_sum(S* target, V a) {
  S total = 0;
  for (int l = 0; l < L; ++l) total += a[l];
  *target += total;
}

// Loads BL values at p (n of them valid, the rest zeros) into U vectors.
static inline void load_block(V* out, const S* p, int64_t n) {
  if (n >= BL) {
    for (int u = 0; u < U; ++u) out[u] = load(p + u * L);
    return;
  }
  S tmp[BL];
  for (int i = 0; i < BL; ++i) tmp[i] = i < n ? p[i] : (S)0;
  for (int u = 0; u < U; ++u) out[u] = load(tmp + u * L);
}

static inline void store_block(S* p, const V* in, int64_t n, bool streaming = true) {
  if (n >= BL) {
    for (int u = 0; u < U; ++u) {
      if (streaming) stream(p + u * L, in[u]);
      else store(p + u * L, in[u]);
    }
    return;
  }
  S tmp[BL];
  for (int u = 0; u < U; ++u) store(tmp + u * L, in[u]);
  for (int64_t i = 0; i < n; ++i) p[i] = tmp[i];
}

// The per-thread buffers of a tile of `size` neurons: their state, and the per-neuron
// parameters (index m % F), so that each step reads and writes `size` contiguous values.
struct Tile {
  int64_t m0, n, size;
  S* st;   // [NS][size]
  S* pn;   // [NP][size]
  void begin(int64_t tile, int64_t M, int64_t F, const S* const* state, const S* const* params,
             const int64_t* per_neuron) {
    m0 = tile * size;
    n = std::min<int64_t>(size, M - m0);
    for (int k = 0; k < NS; ++k)
      for (int64_t i = 0; i < size; ++i) st[k * size + i] = i < n ? state[k][m0 + i] : (S)0;
    for (int j = 0; j < NP; ++j)
      if (per_neuron[j])
        for (int64_t i = 0; i < size; ++i)
          pn[j * size + i] = params[j][(m0 + std::min<int64_t>(i, n - 1)) % F];
  }
};

// The per-neuron parameters of block i from pn ([NP][stride]); scalar ones are set once.
static inline void load_neuron_parameters(V (&p)[NP1][U], const S* pn, int64_t stride, int64_t i) {
  (void)pn, (void)stride, (void)i;
@NEURON_PARAMS@
}

"""

LAYER_BLOCK = r"""
// One step: the state s* is updated in place, o is the output, t* the values backward needs.
static inline void step(@STEP_PARAMS@) {
@STEP_BODY@
}

// The step's vector-Jacobian product from the saved values t*: g* holds the gradient of the
// new state on entry and of the old one on exit; gx is the input's gradient.
static inline void vjp(@VJP_PARAMS@) {
@VJP_BODY@
}

// One step of the BL neurons at offset i of a tile whose rows are `stride` apart: the input at
// in (n_in - i of them valid; a row padded to whole blocks passes its padded length), the state
// in st (updated); the output to out (n - i valid) and the values the backward step needs to
// tp, each where not null.
SNNG_HOT void advance_block(const S* in, int64_t n_in, S* st, const S* pn, int64_t stride,
                                 int64_t i, int64_t n, V (&p)[NP1][U], S* out, S* tp) {
  V xv[U], o[U], s[NS1][U], t[NT1][U];
  load_block(xv, in + i, n_in - i);
  for (int k = 0; k < NS; ++k)
    for (int u = 0; u < U; ++u) s[k][u] = load(st + k * stride + i + u * L);
  load_neuron_parameters(p, pn, stride, i);
  for (int u = 0; u < U; ++u) step(@STEP_ARGS@);
  for (int k = 0; k < NS; ++k)
    for (int u = 0; u < U; ++u) store(st + k * stride + i + u * L, s[k][u]);
  if (out) store_block(out + i, o, n - i);
  if (tp)
    for (int j = 0; j < NT; ++j)
      for (int u = 0; u < U; ++u) store(tp + j * stride + i + u * L, t[j][u]);
}

// The step's vector-Jacobian product for the same block: the output's gradient at gin (n - i
// valid), the new state's gradient in g (replaced by the old state's), the taped values at tp;
// the input's gradient to gx_out: streamed, or (a padded row buffer read right after) stored
// whole, n_out - i values.
SNNG_HOT void reverse_block(const S* gin, S* g, const S* tp, const S* pn, int64_t stride,
                                 int64_t i, int64_t n, V (&p)[NP1][U], S* gx_out, int64_t n_out,
                                 bool streaming) {
  V go[U], gx[U], gs[NS1][U], t[NT1][U];
  load_block(go, gin + i, n - i);
  for (int k = 0; k < NS; ++k)
    for (int u = 0; u < U; ++u) gs[k][u] = load(g + k * stride + i + u * L);
  for (int j = 0; j < NT; ++j)
    for (int u = 0; u < U; ++u) t[j][u] = load(tp + j * stride + i + u * L);
  load_neuron_parameters(p, pn, stride, i);
  for (int u = 0; u < U; ++u) vjp(@VJP_ARGS@);
  for (int k = 0; k < NS; ++k)
    for (int u = 0; u < U; ++u) store(g + k * stride + i + u * L, gs[k][u]);
  store_block(gx_out + i, gx, n_out - i, streaming);
}

}  // namespace snng_@D@

// x (T, M); state[k] (M), updated in place to the final state; params[j] 1 or F values;
// out (T, M); checkpoints (ceil(T/K), NS, M) or null.
SNNG_EXPORT int snng_forward_@D@(int64_t T, int64_t M, int64_t F, const @S@* x, @S@* const* state,
                                 const @S@* const* params, const int64_t* per_neuron, @S@* out,
                                 @S@* checkpoints, int threads) {
  using namespace snng_@D@;
  const int64_t tiles = (M + TILE - 1) / TILE;
#pragma omp parallel num_threads(threads)
  {
    S* buffer = new S[(NS + NP) * TILE + 1];
    Tile tile{0, 0, TILE, buffer, buffer + NS * TILE};
    V p[NP1][U];
@SCALAR_PARAMS@
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < tiles; ++b) {
      tile.begin(b, M, F, state, params, per_neuron);
      const int64_t m0 = tile.m0, n = tile.n;
      for (int64_t step_index = 0; step_index < T; ++step_index) {
        if (checkpoints && step_index % K == 0)
          for (int k = 0; k < NS; ++k)
            std::memcpy(checkpoints + ((step_index / K) * NS + k) * M + m0, tile.st + k * TILE,
                        n * sizeof(S));
        const S* xt = x + step_index * M + m0;
        S* ot = out + step_index * M + m0;
        for (int64_t i = 0; i < n; i += BL) {
          if (step_index + 1 < T) __builtin_prefetch(xt + M + i, 0, 0);
          advance_block(xt, n, tile.st, tile.pn, TILE, i, n, p, ot, nullptr);
        }
      }
      for (int k = 0; k < NS; ++k)
        std::memcpy(state[k] + m0, tile.st + k * TILE, n * sizeof(S));
    }
    delete[] buffer;
#if defined(SNNG_STREAM)
    _mm_sfence();
#endif
  }
  return 0;
}

// grad_out (T, M); grad_state[k] (M): in, the gradient of the final state; out, of the initial
// state; grad_x (T, M).  Per tile and chunk of K steps: the states are recomputed from the
// chunk's checkpoint, keeping the values the backward step needs (t*), then the chunk is
// walked backwards.
SNNG_EXPORT int snng_backward_@D@(int64_t T, int64_t M, int64_t F, const @S@* x,
                                  const @S@* checkpoints, const @S@* const* params,
                                  const int64_t* per_neuron, const @S@* grad_out,
                                  @S@* const* grad_state, @S@* grad_x, int threads) {
  using namespace snng_@D@;
  const int64_t tiles = (M + BTILE - 1) / BTILE;
#pragma omp parallel num_threads(threads)
  {
    S* buffer = new S[(NS + NP + NS + K * NT) * BTILE + 1];
    Tile tile{0, 0, BTILE, buffer, buffer + NS * BTILE};
    S* g = buffer + (NS + NP) * BTILE;
    S* tape = g + NS * BTILE;
    V p[NP1][U];
@SCALAR_PARAMS@
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < tiles; ++b) {
      tile.begin(b, M, F, grad_state, params, per_neuron);  // st <- grad of the final state
      const int64_t m0 = tile.m0, n = tile.n;
      std::memcpy(g, tile.st, NS * BTILE * sizeof(S));
      for (int64_t c = (T - 1) / K; c >= 0; --c) {
        const int64_t t0 = c * K, t1 = std::min<int64_t>(T, t0 + K);
        for (int k = 0; k < NS; ++k) {
          std::memcpy(tile.st + k * BTILE, checkpoints + (c * NS + k) * M + m0, n * sizeof(S));
          for (int64_t i = n; i < BTILE; ++i) tile.st[k * BTILE + i] = 0;
        }
        for (int64_t step_index = t0; step_index < t1; ++step_index) {
          const S* xt = x + step_index * M + m0;
          S* tp = tape + (step_index - t0) * NT * BTILE;
          for (int64_t i = 0; i < n; i += BL) {
            if (step_index + 1 < t1) __builtin_prefetch(xt + M + i, 0, 0);
            advance_block(xt, n, tile.st, tile.pn, BTILE, i, n, p, nullptr, tp);
          }
        }
        for (int64_t step_index = t1 - 1; step_index >= t0; --step_index) {
          const S* gt = grad_out + step_index * M + m0;
          S* gxt = grad_x + step_index * M + m0;
          const S* tp = tape + (step_index - t0) * NT * BTILE;
          for (int64_t i = 0; i < n; i += BL) {
            if (step_index > t0) __builtin_prefetch(gt - M + i, 0, 0);
            reverse_block(gt, g, tp, tile.pn, BTILE, i, n, p, gxt, n, true);
          }
        }
      }
      for (int k = 0; k < NS; ++k) std::memcpy(grad_state[k] + m0, g + k * BTILE, n * sizeof(S));
    }
    delete[] buffer;
#if defined(SNNG_STREAM)
    _mm_sfence();
#endif
  }
  return 0;
}
"""


RECURRENT_BLOCK = r"""
// Recurrent layers: per batch row (a thread takes whole rows, so rows never wait for each
// other), the current of step t is xw[t] + W_rec·z_{t-1} (z: state field ZF; the spikes are
// mostly zero, so only their columns are added), then the generated step.  wt is W_rec
// transposed (row j = column j of W_rec), w is W_rec.
SNNG_EXPORT int snng_recurrent_forward_@D@(int64_t T, int64_t B, int64_t H, const @S@* xw,
                                           const @S@* wt, @S@* const* state,
                                           const @S@* const* params, const int64_t* per_neuron,
                                           @S@* out, @S@* currents, @S@* zprev,
                                           @S@* checkpoints, int threads) {
  using namespace snng_@D@;
  const int64_t HP = (H + BL - 1) / BL * BL;
#pragma omp parallel num_threads(threads)
  {
    S* buffer = new S[(NS + NP + 1) * HP + 1];
    Tile tile{0, 0, HP, buffer, buffer + NS * HP};
    S* cur = buffer + (NS + NP) * HP;
    V p[NP1][U];
@SCALAR_PARAMS@
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) {
      // a "tile" of one row: H neurons, parameters per neuron index (m % H)
      for (int k = 0; k < NS; ++k)
        for (int64_t i = 0; i < HP; ++i) tile.st[k * HP + i] = i < H ? state[k][b * H + i] : (S)0;
      for (int j = 0; j < NP; ++j)
        if (per_neuron[j])
          for (int64_t i = 0; i < HP; ++i) tile.pn[j * HP + i] = params[j][i < H ? i : H - 1];
      const int64_t n = H;
      for (int64_t step_index = 0; step_index < T; ++step_index) {
        const int64_t row = (step_index * B + b) * H;
        if (checkpoints && step_index % K == 0)
          for (int k = 0; k < NS; ++k)
            std::memcpy(checkpoints + (((step_index / K) * NS + k) * B + b) * H, tile.st + k * HP,
                        H * sizeof(S));
        if (zprev) std::memcpy(zprev + row, tile.st + ZF * HP, H * sizeof(S));
        for (int64_t i = 0; i < HP; ++i) cur[i] = i < H ? xw[row + i] : (S)0;
        for (int64_t j = 0; j < H; ++j) {
          const S zj = tile.st[ZF * HP + j];
          if (zj != (S)0) axpy(cur, zj, wt + j * H, H);
        }
        if (currents) std::memcpy(currents + row, cur, H * sizeof(S));
        for (int64_t i = 0; i < n; i += BL)
          advance_block(cur, HP, tile.st, tile.pn, HP, i, n, p, out + row, nullptr);
      }
      for (int k = 0; k < NS; ++k) std::memcpy(state[k] + b * H, tile.st + k * HP, H * sizeof(S));
    }
    delete[] buffer;
#if defined(SNNG_STREAM)
    _mm_sfence();
#endif
  }
  return 0;
}

// Backward: grad_current (T, B, H) receives the gradient of each step's current (the input
// term's gradient; W_rec's is sum_t grad_current[t]^T zprev[t], one matrix product outside).
SNNG_EXPORT int snng_recurrent_backward_@D@(int64_t T, int64_t B, int64_t H, const @S@* currents,
                                            const @S@* w, const @S@* checkpoints,
                                            const @S@* const* params, const int64_t* per_neuron,
                                            const @S@* grad_out, @S@* const* grad_state,
                                            @S@* grad_current, int threads) {
  using namespace snng_@D@;
  const int64_t HP = (H + BL - 1) / BL * BL;
#pragma omp parallel num_threads(threads)
  {
    S* buffer = new S[(NS + NP + NS + K * NT + 1) * HP + 1];
    Tile tile{0, 0, HP, buffer, buffer + NS * HP};
    S* g = buffer + (NS + NP) * HP;
    S* tape = g + NS * HP;
    S* gc = tape + K * NT * HP;
    V p[NP1][U];
@SCALAR_PARAMS@
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) {
      for (int k = 0; k < NS; ++k)
        for (int64_t i = 0; i < HP; ++i) g[k * HP + i] = i < H ? grad_state[k][b * H + i] : (S)0;
      for (int j = 0; j < NP; ++j)
        if (per_neuron[j])
          for (int64_t i = 0; i < HP; ++i) tile.pn[j * HP + i] = params[j][i < H ? i : H - 1];
      const int64_t n = H;
      for (int64_t c = (T - 1) / K; c >= 0; --c) {
        const int64_t t0 = c * K, t1 = std::min<int64_t>(T, t0 + K);
        for (int k = 0; k < NS; ++k)
          for (int64_t i = 0; i < HP; ++i)
            tile.st[k * HP + i] = i < H ? checkpoints[((c * NS + k) * B + b) * H + i] : (S)0;
        for (int64_t step_index = t0; step_index < t1; ++step_index) {
          const S* ct = currents + (step_index * B + b) * H;
          S* tp = tape + (step_index - t0) * NT * HP;
          for (int64_t i = 0; i < n; i += BL)
            advance_block(ct, n, tile.st, tile.pn, HP, i, n, p, nullptr, tp);
        }
        for (int64_t step_index = t1 - 1; step_index >= t0; --step_index) {
          const int64_t row = (step_index * B + b) * H;
          const S* tp = tape + (step_index - t0) * NT * HP;
          for (int64_t i = 0; i < n; i += BL)
            reverse_block(grad_out + row, g, tp, tile.pn, HP, i, n, p, gc, HP, false);
          std::memcpy(grad_current + row, gc, H * sizeof(S));
          // z_{t-1} fed the current through W_rec: its gradient gains W_rec^T gc
          for (int64_t i = 0; i < H; ++i) {
            const S gi = gc[i];
            if (gi != (S)0) axpy(g + ZF * HP, gi, w + i * H, H);
          }
        }
      }
      for (int k = 0; k < NS; ++k) std::memcpy(grad_state[k] + b * H, g + k * HP, H * sizeof(S));
    }
    delete[] buffer;
  }
  return 0;
}
"""


def _math_block(needed: set[str], libmvec: set[str]) -> str:
    """Vector versions of the math functions the step uses: libmvec's, else lane by lane."""
    lines = []
    for op in sorted(needed):
        name = VECTOR_MATH[op]
        if name in libmvec:
            lines.append(
                f'extern "C" V SNNG_MVEC({name}@F@, @LANES@)(V);\n'
                f"static inline V v{name}(V a) {{ return SNNG_MVEC({name}@F@, @LANES@)(a); }}"
            )
        else:
            lines.append(f"SNNG_LANEWISE(v{name}, std::{name})")
    return "\n".join(lines)


def _value(arg: Arg | None, names: dict[int, str]) -> str:
    if isinstance(arg, Const):
        return f"splat((S){arg.value!r})"
    if arg is None:
        raise ValueError("a missing argument")
    return names[arg]


def _expression(op: str, args: Sequence[str], raw: Sequence[Arg | None], attr: object) -> str:
    a = args[0] if args else ""
    simple = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
    if op in simple:
        return f"({a} {simple[op]} {args[1]})"
    compare = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}
    if op in compare:
        return f"({a} {compare[op]} {args[1]})"
    if op in VECTOR_MATH:
        return f"v{VECTOR_MATH[op]}({a})"
    if op == "pow":
        e = raw[1].value  # type: ignore[union-attr]
        special = {
            0.0: "splat((S)1)",
            1.0: a,
            2.0: f"({a} * {a})",
            3.0: f"({a} * {a} * {a})",
            -1.0: f"(splat((S)1) / {a})",
            -2.0: f"(splat((S)1) / ({a} * {a}))",
            0.5: f"vsqrt({a})",
            -0.5: f"(splat((S)1) / vsqrt({a}))",
        }
        return special.get(e, f"vpow({a}, (S){e!r})")
    table = {
        "neg": f"(-{a})",
        "sigmoid": f"(splat((S)1) / (splat((S)1) + vexp(-{a})))",
        "abs": f"vabs({a})",
        "sqrt": f"vsqrt({a})",
        "reciprocal": f"(splat((S)1) / {a})",
        "relu": f"sel({a} > splat((S)0), {a}, splat((S)0))",
        "square": f"({a} * {a})",
        "sign": f"sel({a} > splat((S)0), splat((S)1), sel({a} < splat((S)0), splat((S)-1), splat((S)0)))",
        "spike": f"sel({a} > splat((S)0), splat((S)1), splat((S)0))",
        "detach": a,
        "and": f"({a} & {args[1] if len(args) > 1 else ''})",
        "or": f"({a} | {args[1] if len(args) > 1 else ''})",
        "not": f"(~{a})",
    }
    if op in table:
        return table[op]
    if op in ("maximum", "minimum"):
        pick = ">" if op == "maximum" else "<"
        return f"sel({a} {pick} {args[1]}, {a}, {args[1]})"
    if op == "where":
        return f"sel({a}, {args[1]}, {args[2]})"
    if op == "clamp":
        value = a
        if raw[1] is not None:
            value = f"sel({value} < {args[1]}, {args[1]}, {value})"
        if raw[2] is not None:
            value = f"sel({value} > {args[2]}, {args[2]}, {value})"
        return value
    raise NotImplementedError(f"no C++ for op {op!r}")


def _body(
    graph: Graph,
    bind: dict[int, str],
    outputs: Sequence[tuple[str, Arg | None]],
    taped: Sequence[tuple[str, int]] = (),
    skip_below: int = 0,
    keep: frozenset[int] = frozenset(),
) -> str:
    """Statements computing ``graph`` (inputs, and nodes below ``skip_below``, already named
    in ``bind``), then the outputs; ``taped`` nodes are also written to their targets."""
    names = dict(bind)
    lines = []
    live = _live(graph, [o for _, o in outputs] + [n for _, n in taped])
    for i, node in graph:
        if node.op == "input" or i not in live or i in bind or (i < skip_below and i not in keep):
            continue
        raw = node.args
        args = [_value(a, names) if a is not None else "" for a in raw]
        if node.op == "float":
            source = raw[0]
            is_mask = isinstance(source, int) and graph.nodes[source].is_mask
            expression = f"sel({args[0]}, splat((S)1), splat((S)0))" if is_mask else args[0]
        else:
            expression = _expression(node.op, args, raw, node.attr)
        kind = "M" if node.is_mask else "V"
        names[i] = f"v{i}"
        lines.append(f"  const {kind} v{i} = {expression};")
    for target, value in outputs:
        lines.append(
            f"  {target} = {_value(value, names) if value is not None else 'splat((S)0)'};"
        )
    for target, node in taped:
        value = names[node]
        lines.append(
            f"  {target} = {'from_bits(' + value + ')' if graph.nodes[node].is_mask else value};"
        )
    return "\n".join(lines)


def _live(graph: Graph, outputs: Sequence[Arg | None]) -> set[int]:
    needed = {o for o in outputs if isinstance(o, int)}
    for i in range(len(graph.nodes) - 1, -1, -1):
        if i in needed:
            needed.update(a for a in graph.nodes[i].args if isinstance(a, int))
    return needed


def math_ops(graph: Graph) -> set[str]:
    ops = {n.op for _, n in graph} | {"exp"}  # sigmoid is written with vexp
    return {op for op in ops if op in VECTOR_MATH}


@attrs.frozen
class Plan:
    """What the generated code computes: the forward graph, the backward graph (the forward
    nodes plus the vector-Jacobian product), and the forward values the backward step reads
    (the tape), so that the backward pass need not compute the forward step a second time."""

    forward: Graph
    backward: Graph
    x: int
    states: tuple[int, ...]
    params: tuple[int, ...]
    seeds: tuple[int, ...]
    grads: tuple[Arg | None, ...]
    tape: tuple[int, ...]
    #: forward nodes computed from parameters and constants only
    static: frozenset[int] = frozenset()


def _static(graph: Graph, params: set[int]) -> frozenset[int]:
    static: set[int] = set()
    for i, node in graph:
        if node.op != "input" and all(
            not isinstance(a, int) or a in params or a in static for a in node.args
        ):
            static.add(i)
    return frozenset(static)


def plan(traced: Traced) -> Plan:
    graph = traced.graph
    ns = len(traced.state_fields)
    inputs = graph.inputs()
    x, states, params = inputs[0], tuple(inputs[1 : 1 + ns]), tuple(inputs[1 + ns :])
    backward = Graph(list(graph.nodes), list(graph.outputs))
    count = len(graph.nodes)
    seeds = tuple(
        [backward.add("input", attr="g_out")]
        + [backward.add("input", attr=f"g_s{k}") for k in range(ns)]
    )
    grads = tuple(differentiate(backward, [x, *states], seeds, traced.derivatives))
    static = _static(graph, set(params))
    live = _live(backward, list(grads))
    # forward values the backward step reads; those computed from parameters alone are
    # recomputed there (the compiler hoists them out of the loops) rather than saved
    wanted = {g for g in grads if isinstance(g, int) and g < count}
    for i in live:
        if i >= count:
            wanted.update(a for a in backward.nodes[i].args if isinstance(a, int) and a < count)
    pending = sorted(wanted)
    used: set[int] = set()
    while pending:
        node = pending.pop()
        if node in params or node in used:
            continue
        if node in static:
            pending.extend(a for a in graph.nodes[node].args if isinstance(a, int))
            continue
        used.add(node)
    return Plan(graph, backward, x, states, params, seeds, grads, tuple(sorted(used)), static)


def generate(
    traced: Traced, libmvec: set[str] = frozenset(), spikes_field: int | None = None
) -> str:
    """C++ source of the forward and backward time loops of ``traced`` (float32 and float64)."""
    if traced.staged:
        from snn_backend_fused.compiler import staged_cpp

        return staged_cpp.generate(traced, libmvec, spikes_field)
    p = plan(traced)
    ns, np_, nt = len(p.states), len(p.params), len(p.tape)
    graph = p.forward
    # the forward step: s* updated in place, o the output, t* the taped values
    step_params = ", ".join(
        ["const V x"]
        + [f"V& s{k}" for k in range(ns)]
        + [f"const V p{j}" for j in range(np_)]
        + ["V& o"]
        + [f"V& t{j}" for j in range(nt)]
    )
    bind = {p.x: "x", **{n: f"s{k}" for k, n in enumerate(p.states)}}
    bind.update({n: f"p{j}" for j, n in enumerate(p.params)})
    outs = [("o", graph.outputs[0])] + [(f"s{k}", graph.outputs[1 + k]) for k in range(ns)]
    taped = [(f"t{j}", n) for j, n in enumerate(p.tape)]
    step_body = _body(graph, bind, [(f"V out_{t}", v) for t, v in outs], taped)
    step_body += "\n" + "\n".join(f"  {t} = out_{t};" for t, _ in outs)
    # the backward step: the taped forward values, the parameters and the seeds are its inputs
    vjp_params = ", ".join(
        [f"const V t{j}" for j in range(nt)]
        + [f"const V p{j}" for j in range(np_)]
        + ["const V go"]
        + [f"V& g{k}" for k in range(ns)]
        + ["V& gx"]
    )
    vjp_bind = {n: f"t{j}" for j, n in enumerate(p.tape)}
    vjp_bind.update({n: f"p{j}" for j, n in enumerate(p.params)})
    vjp_bind[p.seeds[0]] = "go"
    vjp_bind.update({n: f"g{k}" for k, n in enumerate(p.seeds[1:])})
    for j, n in enumerate(p.tape):
        if graph.nodes[n].is_mask:
            vjp_bind[n] = f"bits(t{j})"
    vjp_outs = [("V out_gx", p.grads[0])] + [(f"V out_g{k}", p.grads[1 + k]) for k in range(ns)]
    vjp_body = _body(p.backward, vjp_bind, vjp_outs, skip_below=len(graph.nodes), keep=p.static)
    vjp_body += "\n  gx = out_gx;\n" + "\n".join(f"  g{k} = out_g{k};" for k in range(ns))
    step_args = ", ".join(
        ["xv[u]"]
        + [f"s[{k}][u]" for k in range(ns)]
        + [f"p[{j}][u]" for j in range(np_)]
        + ["o[u]"]
        + [f"t[{j}][u]" for j in range(nt)]
    )
    vjp_args = ", ".join(
        [f"t[{j}][u]" for j in range(nt)]
        + [f"p[{j}][u]" for j in range(np_)]
        + ["go[u]"]
        + [f"gs[{k}][u]" for k in range(ns)]
        + ["gx[u]"]
    )
    blocks = LAYER_BLOCK
    if spikes_field is not None:
        blocks += RECURRENT_BLOCK.replace("ZF", str(spikes_field))
    substitutions = {
        "@STEP_PARAMS@": step_params,
        "@STEP_BODY@": step_body,
        "@VJP_PARAMS@": vjp_params,
        "@VJP_BODY@": vjp_body,
        "@STEP_ARGS@": step_args,
        "@VJP_ARGS@": vjp_args,
        "@NT@": str(nt),
    }
    return assemble(traced, blocks, substitutions, math_ops(p.backward), libmvec)


def assemble(
    traced: Traced, blocks: str, substitutions: dict[str, str], needed: set[str], libmvec: set[str]
) -> str:
    """The source for float32 and float64: the common helpers, then ``blocks``, with the
    placeholders filled (``substitutions`` first, then the common ones)."""
    scalar = "\n".join(
        f"    for (int u = 0; u < U; ++u) p[{j}][u] = splat(params[{j}][0]);"
        for j, kind in enumerate(traced.kinds)
        if kind == "scalar"
    )
    neuron_loads = "\n".join(
        f"  for (int u = 0; u < U; ++u) p[{j}][u] = load(pn + {j} * stride + i + u * L);"
        for j, kind in enumerate(traced.kinds)
        if kind == "neuron"
    )
    header = f"// Generated by snn_backend_fused.compiler from: {traced.graph.key()[:300]}"
    source = [header, PRELUDE]
    source.append(
        "#if SNNG_BYTES == 64\n#define SNNG_F32_LANES 16\n#define SNNG_F64_LANES 8\n"
        "#elif SNNG_BYTES == 32\n#define SNNG_F32_LANES 8\n#define SNNG_F64_LANES 4\n"
        "#else\n#define SNNG_F32_LANES 4\n#define SNNG_F64_LANES 2\n#endif\n"
    )
    for d, scalar_type, integer, suffix, lanes in (
        ("f32", "float", "int32_t", "f", "SNNG_F32_LANES"),
        ("f64", "double", "int64_t", "", "SNNG_F64_LANES"),
    ):
        math = _math_block(needed, libmvec).replace("@F@", suffix).replace("@LANES@", lanes)
        block = COMMON_BLOCK + blocks
        for key, value in {
            **substitutions,
            "@NT@": substitutions.get("@NT@", "0"),
            "@D@": d,
            "@S@": scalar_type,
            "@I@": integer,
            "@UNROLL@": str(UNROLL),
            "@K@": str(CHECKPOINT_EVERY),
            "@TILE@": str(TILE),
            "@BTILE@": str(BACKWARD_TILE),
            "@MATH@": math,
            "@SCALAR_PARAMS@": scalar,
            "@NEURON_PARAMS@": neuron_loads,
            "@NS@": str(len(traced.state_fields)),
            "@NP@": str(len(traced.kinds)),
        }.items():
            block = block.replace(key, value)
        source.append(block)
    return "\n".join(source)
