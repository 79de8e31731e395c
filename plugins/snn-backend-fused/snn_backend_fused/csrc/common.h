// Shared pieces of the fused CPU kernels of snn-backend-fused.
//
// Plain C++17 with no PyTorch headers: the library compiles in seconds (a translation unit that
// includes ATen takes over 20 s on a 2-core machine) and is called through ctypes.  Tensors come
// in as raw pointers to contiguous float32/float64 data:
//
//   x, out, grad_x   (T, M)     time-major, M = batch × features neurons
//   state, grad_st   (S, M)     the S state fields, one row each
//   ckpt             (C, S, M)  the state before steps 0, K, 2K, ... (C = ceil(T / K))
//   params           (P,)       one value per parameter, or (P, M) one per neuron (per_neuron=1)
//
// Every kernel runs the whole time loop in one call.  Neurons are split into blocks of up to
// kMaxBlock contiguous elements; each OpenMP thread takes whole blocks (dynamic schedule) and
// keeps its block's state in a small local array that lives in L1 while it walks through time,
// so every time step reads and writes one contiguous row segment per stream.  The inner loop
// over a block is `#pragma omp simd` (vectorised with the machine's widest registers).
//
// Exactness: compiled without -ffast-math and with -ffp-contract=off, each kernel evaluates the
// model's step with the same operations in the same order as the PyTorch step function, so the
// forward pass gives the same bits (except where a transcendental function is involved: libm's
// exp versus PyTorch's vectorised exp may differ in the last bit).

#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define SNNF_EXPORT extern "C" __attribute__((visibility("default")))

namespace snnf {

using i64 = int64_t;

constexpr i64 kMaxBlock = 1024;           // neurons per block (elements of one row segment)
constexpr i64 kScratchBytes = 512 * 1024; // per-thread recompute buffers of the backward pass

// Surrogate gradients, in the order of snn_backend_fused/kernels.py SURROGATES.
enum Surrogate : int {
  kSuper = 0,
  kHeaviside = 1,
  kTriangle = 2,
  kTanh = 3,
  kCirc = 4,
  kHeaviErfc = 5,
  kLogistic = 6,
  kAtan = 7,
  kSurrogateCount = 8,
};

// The pseudo-derivative of the spike at distance x, written as snncore/surrogates.py computes it.
template <typename T, int K>
static inline T surrogate(T x, T alpha) {
  if constexpr (K == kSuper) {
    T d = std::abs(x) * alpha + T(1);
    return T(1) / (d * d);
  } else if constexpr (K == kHeaviside) {
    return T(0);
  } else if constexpr (K == kTriangle) {
    T d = -std::abs(x) + T(1);
    return (d > T(0) ? d : T(0)) * alpha;
  } else if constexpr (K == kTanh) {
    T t = std::tanh(alpha * x);
    return T(1) - t * t;
  } else if constexpr (K == kCirc) {
    T q = alpha * alpha + x * x;
    return alpha * alpha * alpha / (q * std::sqrt(q));
  } else if constexpr (K == kHeaviErfc) {
    T ax = alpha * x;
    return T(1.1283791670955126) * std::exp(-(ax * ax));
  } else if constexpr (K == kLogistic) {
    T s = T(1) / (T(1) + std::exp(-(alpha * x)));
    return alpha * s * (T(1) - s);
  } else {  // kAtan
    T u = T(1.5707963267948966) * alpha * x;
    return alpha / (T(2) * (T(1) + u * u));
  }
}

// d[r][k] = surrogate(s[r][k]) for `rows` rows of `len` elements, row stride `ld`.
template <typename T, bool PN, int K>
static void surrogate_rows_k(const T* s, T* d, i64 rows, i64 len, i64 ld, const T* alpha) {
  for (i64 r = 0; r < rows; ++r) {
    const T* sr = s + r * ld;
    T* dr = d + r * ld;
#pragma omp simd
    for (i64 k = 0; k < len; ++k) dr[k] = surrogate<T, K>(sr[k], PN ? alpha[k] : alpha[0]);
  }
}

template <typename T, bool PN>
static void surrogate_rows(int kind, const T* s, T* d, i64 rows, i64 len, i64 ld, const T* alpha) {
  switch (kind) {
    case kSuper: surrogate_rows_k<T, PN, kSuper>(s, d, rows, len, ld, alpha); break;
    case kHeaviside: surrogate_rows_k<T, PN, kHeaviside>(s, d, rows, len, ld, alpha); break;
    case kTriangle: surrogate_rows_k<T, PN, kTriangle>(s, d, rows, len, ld, alpha); break;
    case kTanh: surrogate_rows_k<T, PN, kTanh>(s, d, rows, len, ld, alpha); break;
    case kCirc: surrogate_rows_k<T, PN, kCirc>(s, d, rows, len, ld, alpha); break;
    case kHeaviErfc: surrogate_rows_k<T, PN, kHeaviErfc>(s, d, rows, len, ld, alpha); break;
    case kLogistic: surrogate_rows_k<T, PN, kLogistic>(s, d, rows, len, ld, alpha); break;
    default: surrogate_rows_k<T, PN, kAtan>(s, d, rows, len, ld, alpha); break;
  }
}

// Outputs larger than this are written with non-temporal (streaming) stores: they bypass the
// cache and skip the read-for-ownership of every written line, which on this kind of machine
// doubles the write bandwidth (a 256 MiB fill: 17 GB/s cached, 50 GB/s streamed).  Smaller
// outputs stay cached for the next layer.
constexpr i64 kStreamBytes = i64(32) << 20;

// dst[0:len] = src[0:len], streamed (non-temporal) where the ISA allows, else copied.
template <typename T>
static inline void stream_row(T* dst, const T* src, i64 len) {
#if defined(__AVX512F__) || defined(__AVX__)
#if defined(__AVX512F__)
  constexpr i64 kBytes = 64;
#else
  constexpr i64 kBytes = 32;
#endif
  constexpr i64 W = kBytes / sizeof(T);
  i64 k = 0;
  while (k < len && (reinterpret_cast<uintptr_t>(dst + k) & (kBytes - 1))) {
    dst[k] = src[k];
    ++k;
  }
  for (; k + W <= len; k += W) {
#if defined(__AVX512F__)
    if constexpr (sizeof(T) == 4) {
      _mm512_stream_ps(reinterpret_cast<float*>(dst + k), _mm512_loadu_ps(src + k));
    } else {
      _mm512_stream_pd(reinterpret_cast<double*>(dst + k), _mm512_loadu_pd(src + k));
    }
#else
    if constexpr (sizeof(T) == 4) {
      _mm256_stream_ps(reinterpret_cast<float*>(dst + k), _mm256_loadu_ps(src + k));
    } else {
      _mm256_stream_pd(reinterpret_cast<double*>(dst + k), _mm256_loadu_pd(src + k));
    }
#endif
  }
  for (; k < len; ++k) dst[k] = src[k];
#else
  std::memcpy(dst, src, static_cast<size_t>(len) * sizeof(T));
#endif
}

// Writes a row from a local buffer: streamed when `stream`, else an ordinary copy.
template <typename T>
static inline void put_row(T* dst, const T* src, i64 len, bool stream) {
  if (stream) {
    stream_row(dst, src, len);
  } else {
    std::memcpy(dst, src, static_cast<size_t>(len) * sizeof(T));
  }
}

// Orders this thread's streaming stores before anything that follows.
static inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Parameter j of a block starting at neuron n0: a pointer to read as p[k] (per neuron) or p[0].
template <typename T, bool PN>
static inline const T* param(const T* params, int j, i64 M, i64 n0) {
  return PN ? params + j * M + n0 : params + j;
}

template <bool PN>
static inline i64 pk(i64 k) {
  return PN ? k : 0;
}

// Neurons per block: small enough that there are a few blocks per thread, at most kMaxBlock,
// a multiple of 16 elements (one 64-byte cache line of float32), and small enough that `nbuf`
// scratch rows per step of a K-step backward segment fit kScratchBytes (L2).
static inline i64 block_size(i64 M, int nthreads, i64 K = 1, int nbuf = 0, i64 elem = 4) {
  i64 want = (M + 4 * nthreads - 1) / (4 * nthreads);
  want = ((want + 15) / 16) * 16;
  i64 cap = kMaxBlock;
  if (nbuf > 0) cap = std::min<i64>(cap, (kScratchBytes / (K * nbuf * elem)) / 16 * 16);
  return std::max<i64>(16, std::min<i64>(cap, want));
}

// Below this many element-steps (T × M) a call runs on one thread: a parallel region costs
// microseconds when the other cores are idle and up to a scheduler time slice (milliseconds)
// when another process holds one of them -- more than the whole call (PyTorch parallelises an
// element-wise op from 32768 elements for the same reason).
constexpr i64 kParallelWork = i64(1) << 18;

// Runs body(n0, len, scratch) over all blocks, in parallel for large calls (`work` = T × M).
// `scratch_elems` is the size of the per-thread scratch buffer the body may use (allocated once
// per thread and call).
template <typename T, typename F>
static void for_blocks(i64 M, int nthreads, i64 blk, i64 scratch_elems, F&& body, i64 work) {
  const i64 nblocks = (M + blk - 1) / blk;
  i64 nt64 = std::max<i64>(1, std::min<i64>(nthreads, nblocks));
  if (work < kParallelWork) nt64 = 1;
  const int nt = static_cast<int>(nt64);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<T> scratch(static_cast<size_t>(std::max<i64>(scratch_elems, 1)));
#pragma omp for schedule(dynamic, 1)
    for (i64 b = 0; b < nblocks; ++b) {
      const i64 n0 = b * blk;
      body(n0, std::min(blk, M - n0), scratch.data());
    }
    stream_fence();
  }
}

// Row t of an upstream gradient with strides (st, sn) for the block [n0, n0 + len): a pointer
// to len contiguous values.  Gathers into `tmp` unless the row is contiguous; `zeros` when there
// is no gradient at all (g == nullptr).
template <typename T>
static inline const T* grad_row(const T* g, i64 st, i64 sn, i64 t, i64 n0, i64 len, T* tmp,
                                const T* zeros) {
  if (g == nullptr) return zeros;
  if (sn == 1) return g + t * st + n0;
  const T* base = g + t * st + n0 * sn;
  for (i64 k = 0; k < len; ++k) tmp[k] = base[k * sn];
  return tmp;
}

// Copy the S state rows of a block between an (S, M) array and local rows of `ld` elements
// (kMaxBlock unless given).
template <typename T>
static inline void load_rows(T* local, const T* src, int S, i64 M, i64 n0, i64 len,
                             i64 ld = kMaxBlock) {
  for (int s = 0; s < S; ++s) std::memcpy(local + s * ld, src + s * M + n0, len * sizeof(T));
}

template <typename T>
static inline void store_rows(T* dst, const T* local, int S, i64 M, i64 n0, i64 len,
                              i64 ld = kMaxBlock) {
  for (int s = 0; s < S; ++s) std::memcpy(dst + s * M + n0, local + s * ld, len * sizeof(T));
}

// Scratch of a backward pass that recomputes K-step segments: nbuf rows of blk per step, plus
// two rows for the upstream gradient (gathered) and a row of zeros.
static inline i64 scratch_elems(i64 K, i64 blk, int nbuf) { return K * blk * nbuf + 2 * kMaxBlock; }

}  // namespace snnf

// Calls CALL with `T` (float or double) and `PN` (per-neuron parameters) bound; returns 0, or 1
// for an unsupported element size.
#define SNNF_DISPATCH(bits, per_neuron, CALL)        \
  do {                                               \
    if ((bits) == 32 && (per_neuron)) {              \
      using T = float;                               \
      constexpr bool PN = true;                      \
      CALL;                                          \
    } else if ((bits) == 32) {                       \
      using T = float;                               \
      constexpr bool PN = false;                     \
      CALL;                                          \
    } else if ((bits) == 64 && (per_neuron)) {       \
      using T = double;                              \
      constexpr bool PN = true;                      \
      CALL;                                          \
    } else if ((bits) == 64) {                       \
      using T = double;                              \
      constexpr bool PN = false;                     \
      CALL;                                          \
    } else {                                         \
      return 1;                                      \
    }                                                \
    return 0;                                        \
  } while (0)

// The two entry points every model exports (NAME is the kernel's name, e.g. lif):
//   int snnf_NAME_forward(bits, per_neuron, T, M, x, out, state, ckpt, K, params, nthreads)
//     runs T steps from `state` (overwritten with the final state), writes the outputs to `out`
//     and, when ckpt is not null, the state before every K-th step to `ckpt`.
//   int snnf_NAME_backward(bits, per_neuron, surrogate, T, M, x, ckpt, K, params,
//                          grad_out, grad_out_stride_t, grad_out_stride_n, grad_state, grad_x,
//                          nthreads)
//     back-propagates: grad_state holds the gradient of the final state on entry and that of
//     the initial state on return; grad_out may be null (no gradient reaches the outputs).
#define SNNF_ENTRY_POINTS(NAME)                                                                   \
  SNNF_EXPORT int snnf_##NAME##_forward(int bits, int per_neuron, int64_t T_, int64_t M,           \
                                        const void* x, void* out, void* state, void* ckpt,         \
                                        int64_t K, const void* params, int nthreads) {             \
    SNNF_DISPATCH(bits, per_neuron,                                                                \
                  (NAME##_forward<T, PN>(T_, M, static_cast<const T*>(x), static_cast<T*>(out),    \
                                         static_cast<T*>(state), static_cast<T*>(ckpt), K,         \
                                         static_cast<const T*>(params), nthreads)));               \
  }                                                                                                \
  SNNF_EXPORT int snnf_##NAME##_backward(                                                          \
      int bits, int per_neuron, int kind, int64_t T_, int64_t M, const void* x, const void* ckpt,  \
      int64_t K, const void* params, const void* g, int64_t gst, int64_t gsn, void* gstate,        \
      void* gx, int nthreads) {                                                                    \
    if (kind < 0 || kind >= snnf::kSurrogateCount) return 2;                                       \
    if (gstate == nullptr || gx == nullptr) return 3;                                              \
    SNNF_DISPATCH(bits, per_neuron,                                                                \
                  (NAME##_backward<T, PN>(kind, T_, M, static_cast<const T*>(x),                   \
                                          static_cast<const T*>(ckpt), K,                          \
                                          static_cast<const T*>(params), static_cast<const T*>(g), \
                                          gst, gsn, static_cast<T*>(gstate), static_cast<T*>(gx),  \
                                          nthreads)));                                             \
  }
