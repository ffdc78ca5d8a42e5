// Chunk metadata and the shared depot behind a Region's caches. Internal to
// pool/: included by region.cc and region_tokens.cc only.
#ifndef DEVMEM_POOL_INTERNAL_META_H_
#define DEVMEM_POOL_INTERNAL_META_H_

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "pool/chunk.h"
#include "pool/internal/spin_lock.h"

namespace devmem::pool_internal {

// 16 bytes per chunk, zero-initialised by the OS (zero = free, not lent).
// Accessed through std::atomic_ref so the reservation needs no constructors.
struct alignas(8) ChunkMeta {
  uint32_t refs;  // 0: free. Holders are listed in region.h.
  uint32_t next;  // free-list link while on the depot's free list
  uint64_t lent;  // (borrower << 32) | tokens outstanding; 0 = not lent
};
static_assert(sizeof(ChunkMeta) == 16);

inline std::atomic_ref<uint32_t> Refs(ChunkMeta& m) {
  return std::atomic_ref<uint32_t>(m.refs);
}
inline std::atomic_ref<uint64_t> Lent(ChunkMeta& m) {
  return std::atomic_ref<uint64_t>(m.lent);
}
inline uint64_t PackLent(BorrowerId borrower, uint32_t count) {
  return (uint64_t{borrower} << 32) | count;
}
inline BorrowerId LentBorrower(uint64_t v) {
  return static_cast<BorrowerId>(v >> 32);
}
inline uint32_t LentCount(uint64_t v) { return static_cast<uint32_t>(v); }

// The metadata array: an address-space reservation that the kernel backs with
// zero pages only where it is touched, so untouched chunks cost nothing.
class MetaArray {
 public:
  static absl::StatusOr<std::unique_ptr<MetaArray>> Create(uint64_t n) {
    const size_t bytes = n * sizeof(ChunkMeta);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot reserve ", bytes,
                       " bytes of chunk metadata for ", n, " chunks"));
    }
    return std::unique_ptr<MetaArray>(
        new MetaArray(static_cast<ChunkMeta*>(p), bytes));
  }
  ~MetaArray() { ::munmap(meta_, bytes_); }
  ChunkMeta& operator[](uint64_t i) { return meta_[i]; }
  size_t bytes() const { return bytes_; }

 private:
  MetaArray(ChunkMeta* meta, size_t bytes) : meta_(meta), bytes_(bytes) {}
  ChunkMeta* meta_;
  size_t bytes_;
};

// The shared structure behind the caches: a bounded ring of free chunk
// indices (the kernel's ptr_ring), then the free list (chunks released to the
// provider, linked through ChunkMeta::next), then chunks never used.
struct Depot {
  // A spin lock rather than absl::Mutex: critical sections are a memcpy of a
  // batch, and (Debian's Abseil being uninstrumented) TSan can see it.
  SpinLock mu;
  std::vector<uint32_t> ring ABSL_GUARDED_BY(mu);  // capacity fixed at Create
  uint32_t ring_count ABSL_GUARDED_BY(mu) = 0;
  uint32_t free_head ABSL_GUARDED_BY(mu) = 0;
  uint64_t free_count ABSL_GUARDED_BY(mu) = 0;
  // Chunks [0, carved) have been handed out at least once. Atomic so that
  // Stats() and MetadataBytesTouched() can read it without the lock.
  std::atomic<uint64_t> carved{0};
  std::function<void()> on_released ABSL_GUARDED_BY(mu);
  // OnReleased listeners, run after on_released.
  std::vector<std::function<void()>> release_listeners ABSL_GUARDED_BY(mu);
  bool released ABSL_GUARDED_BY(mu) = false;

  uint64_t FreeLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return ring_count + free_count;
  }
  // Pushes a chunk on the free list.
  void PushFreeLocked(MetaArray& meta, uint32_t index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    meta[index].next = free_head;
    free_head = index;
    ++free_count;
  }
};

}  // namespace devmem::pool_internal

#endif  // DEVMEM_POOL_INTERNAL_META_H_
