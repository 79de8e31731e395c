// Output buffers of the fused kernels: a small cache of large, huge-page backed blocks, handed
// to PyTorch as DLPack tensors whose deleter returns the block to the cache.
//
// Why: the kernels are memory-bound, and a fresh 125 MiB tensor from the default CPU allocator
// costs more than the arithmetic written into it -- 32 000 first-touch page faults, each also
// zeroing a 4 KiB page.  Blocks here are 2 MiB aligned and madvise(MADV_HUGEPAGE)'d (512× fewer
// faults where transparent huge pages are enabled in "madvise" or "always" mode), and a freed
// block is kept (up to a byte limit) for the next tensor of the same size, so a training loop
// touches the same, already mapped memory every iteration.  Nothing here depends on the user
// setting allocator environment variables.

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

#include "common.h"

namespace {

// The DLPack ABI (dlpack.h, version 0.x "dltensor" capsules), written out: it is a stable C ABI.
struct DLDevice {
  int32_t device_type;  // 1 = kDLCPU
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 2 = kDLFloat
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

constexpr size_t kAlign = size_t(2) << 20;  // 2 MiB: one huge page
constexpr int kMaxDims = 16;

struct Holder {
  DLManagedTensor managed;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];
  void* block;
  size_t bytes;
};

struct Pool {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;  // size -> block
  size_t cached = 0;
  size_t limit = size_t(1) << 30;
  uint64_t hits = 0, misses = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may outlive static destruction
  return *p;
}

void* map_block(size_t bytes) {
  // Over-map by one alignment unit, then trim both ends to a 2 MiB-aligned range.
  size_t span = bytes + kAlign;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + kAlign - 1) & ~(uintptr_t(kAlign) - 1);
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t end = aligned + bytes;
  uintptr_t raw_end = start + span;
  if (raw_end > end) munmap(reinterpret_cast<void*>(end), raw_end - end);
  void* block = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(block, bytes, MADV_HUGEPAGE);
#endif
  return block;
}

void* take(size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.free_blocks.find(bytes);
    if (it != p.free_blocks.end()) {
      void* block = it->second;
      p.free_blocks.erase(it);
      p.cached -= bytes;
      ++p.hits;
      return block;
    }
    ++p.misses;
  }
  return map_block(bytes);
}

void give(void* block, size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.cached + bytes <= p.limit) {
      p.free_blocks.emplace(bytes, block);
      p.cached += bytes;
      return;
    }
  }
  munmap(block, bytes);
}

void release(DLManagedTensor* self) {
  Holder* h = static_cast<Holder*>(self->manager_ctx);
  give(h->block, h->bytes);
  delete h;
}

}  // namespace

// A contiguous CPU float tensor of `ndim` dims from the cache (uninitialised), as a
// DLManagedTensor* for torch.utils.dlpack.from_dlpack; nullptr if mapping failed.
SNNF_EXPORT void* snnf_empty(int32_t ndim, const int64_t* shape, int32_t bits) {
  if (ndim < 0 || ndim > kMaxDims || (bits != 32 && bits != 64)) return nullptr;
  size_t numel = 1;
  for (int d = 0; d < ndim; ++d) numel *= static_cast<size_t>(shape[d]);
  size_t bytes = numel * static_cast<size_t>(bits / 8);
  bytes = ((std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign) * kAlign;
  void* block = take(bytes);
  if (block == nullptr) return nullptr;
  Holder* h = new Holder();
  h->block = block;
  h->bytes = bytes;
  int64_t stride = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    h->shape[d] = shape[d];
    h->strides[d] = stride;
    stride *= shape[d];
  }
  DLTensor& t = h->managed.dl_tensor;
  t.data = block;
  t.device = DLDevice{1, 0};
  t.ndim = ndim;
  t.dtype = DLDataType{2, static_cast<uint8_t>(bits), 1};
  t.shape = h->shape;
  t.strides = h->strides;
  t.byte_offset = 0;
  h->managed.manager_ctx = h;
  h->managed.deleter = release;
  return &h->managed;
}

// Frees a DLManagedTensor that was never handed to PyTorch.
SNNF_EXPORT void snnf_discard(void* managed) {
  if (managed != nullptr) release(static_cast<DLManagedTensor*>(managed));
}

// Sets the most bytes kept in the cache; returns the previous limit.  0 disables caching.
SNNF_EXPORT int64_t snnf_pool_limit(int64_t limit) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  int64_t old = static_cast<int64_t>(p.limit);
  if (limit >= 0) p.limit = static_cast<size_t>(limit);
  return old;
}

// Unmaps every cached block; returns the bytes released.
SNNF_EXPORT int64_t snnf_pool_release() {
  Pool& p = pool();
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    blocks.swap(p.free_blocks);
    p.cached = 0;
  }
  int64_t released = 0;
  for (auto& kv : blocks) {
    munmap(kv.second, kv.first);
    released += static_cast<int64_t>(kv.first);
  }
  return released;
}

// out[0] = cached bytes, out[1] = limit, out[2] = hits, out[3] = misses.
SNNF_EXPORT void snnf_pool_stats(int64_t* out) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  out[0] = static_cast<int64_t>(p.cached);
  out[1] = static_cast<int64_t>(p.limit);
  out[2] = static_cast<int64_t>(p.hits);
  out[3] = static_cast<int64_t>(p.misses);
}

// The OpenMP runtime the library uses (0 if built without OpenMP): a build sanity check.
SNNF_EXPORT int snnf_openmp() {
#if defined(_OPENMP)
  return _OPENMP;
#else
  return 0;
#endif
}
