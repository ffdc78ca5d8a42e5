// Region: a registered buffer cut into chunks, with the allocator, refcounts,
// tokens and retirement of the kernel's page_pool + net_iov model.
//
// A Region describes N bytes (up to and beyond 1 TiB) of one buffer, cut into
// chunks of one power-of-two size between 4 KiB and 2 MiB. It owns no memory
// itself: the buffer belongs to whoever registered it (a dmabuf mapping, a
// device), and Retire() tells them, exactly once, when they may have it back.
//
// Allocation follows the kernel's page pool:
//   * a per-thread cache (up to kCacheSize chunks) serves Alloc/Free without
//     touching shared state ("alloc_fast", "recycle_cached");
//   * caches refill from and flush to a shared ring in batches of kBatch
//     ("alloc_refill", "recycle_ring"); a full ring spills to the provider
//     free list ("recycle_ring_full", "recycle_released");
//   * when the ring is empty the slow path takes from the provider free list
//     or carves never-used chunks ("alloc_empty", "alloc_slow").
// Metadata is 16 bytes per chunk, kept outside the buffer in an address-space
// reservation that the OS backs only when a chunk is first used, so a 64 GiB
// region that is never touched costs (almost) nothing.
//
// Reference counts (the kernel's pp_ref_count). Holders of a chunk reference:
//   * the allocator of the chunk (Alloc/AllocBulk give one reference),
//   * each Ref() taken by a component that keeps the chunk (e.g. a frame in
//     flight in the simulated NIC),
//   * each outstanding token (Lend() takes one, ReleaseTokens() drops it).
// When the last reference is dropped the chunk goes back to the pool.
//
// Thread safety: every method is thread-safe. Alloc/Free/Ref/Unref execute
// no locked instruction on their fast path: each thread owns a cache (by its
// slot, pool/internal/thread_slot.h) and uses it with plain loads and
// stores; other threads reach a cache (stealing, Retire's drain) through the
// asymmetric-fence handshake of pool/internal/cache.h. Threads beyond the
// region's cache count share one locked cache. Stats() takes no lock.
//
// Lifetime: a Region is shared (std::shared_ptr); whoever holds chunks must
// hold the Region. Destroying a Region with chunks outstanding is a bug that
// is logged; Retire() is the orderly way out.
//
//   auto region = Region::Create({.size_bytes = 1 << 30, .chunk_size = 4096});
//   Chunk c = region.value()->Alloc().value();
//   ...
//   region.value()->Free(c);
#ifndef DEVMEM_POOL_REGION_H_
#define DEVMEM_POOL_REGION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pool/chunk.h"
#include "pool/internal/cache.h"
#include "pool/stats.h"
#include "pool/token_range.h"

namespace devmem {

namespace pool_internal {
struct ChunkMeta;
struct Depot;
class MetaArray;
}  // namespace pool_internal

struct RegionOptions {
  uint64_t size_bytes = 0;     // > 0; a tail shorter than a chunk is unused
  uint32_t chunk_size = 4096;  // power of two in [kMinChunkSize, kMaxChunkSize]
  // Chunks the shared ring holds before spilling to the provider free list
  // (the kernel's ptr_ring size). Rounded up to a multiple of kBatch.
  uint32_t ring_size = 1024;
  // Where the CPU sees the buffer, for host-mappable regions (memfd, udmabuf
  // mapped by the daemon). Empty for device memory. Must span size_bytes.
  std::optional<std::byte*> cpu_base;
  std::string name;  // for messages ("binding 7"); optional
};

// What is still out when Retire() is called (and later, in Stats()).
struct RetireReport {
  uint64_t outstanding_chunks = 0;  // chunks with a reference held
  uint64_t outstanding_bytes = 0;
  uint64_t lent_tokens = 0;  // of those, how many are lent to users
  bool released = false;     // true if on_released already ran
};

// Result of ReleaseTokens: valid tokens are always released, bad ones never
// touch any count; status names the first bad token when rejected > 0.
struct [[nodiscard]] TokenRelease {
  uint32_t freed = 0;     // tokens released (one chunk reference each)
  uint32_t rejected = 0;  // unknown, foreign or not-lent tokens
  absl::Status status;    // OK iff rejected == 0
};

class Region {
 public:
  static constexpr uint32_t kMinChunkSize = 4096;
  static constexpr uint32_t kMaxChunkSize = 2u << 20;
  // The one chunk-size rule (regions, Bind requests, the config, devmemctl):
  // a power of two in [kMinChunkSize, kMaxChunkSize].
  static constexpr bool ValidChunkSize(uint64_t bytes) {
    return bytes >= kMinChunkSize && bytes <= kMaxChunkSize &&
           (bytes & (bytes - 1)) == 0;
  }
  static constexpr uint32_t kCacheSize =
      pool_internal::kCacheSlots;         // PP_ALLOC_CACHE_SIZE
  static constexpr uint32_t kBatch = 64;  // PP_ALLOC_CACHE_REFILL
  static constexpr uint64_t kMaxChunks = (1ull << 32) - 2;

  // Errors: InvalidArgument for a zero size, a chunk size that is not a power
  // of two in range, a region smaller than one chunk or with more than
  // kMaxChunks chunks; ResourceExhausted if the metadata reservation fails.
  static absl::StatusOr<std::shared_ptr<Region>> Create(RegionOptions options);

  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  ~Region();

  uint32_t id() const { return id_; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint32_t chunk_shift() const { return chunk_shift_; }
  uint64_t num_chunks() const { return num_chunks_; }
  uint64_t size_bytes() const { return num_chunks_ << chunk_shift_; }
  const std::string& name() const { return name_; }

  // Byte offset of a chunk inside the buffer.
  uint64_t Offset(Chunk c) const { return uint64_t{c.index} << chunk_shift_; }
  // Where the CPU can read/write the chunk; empty for device memory.
  std::optional<std::byte*> CpuAddress(Chunk c) const;
  // True if `c` names a chunk of this region (does not say it is allocated).
  bool Contains(Chunk c) const {
    return c.region == id_ && c.index < num_chunks_;
  }

  // ---- Allocation ---------------------------------------------------------

  // One chunk with one reference. ResourceExhausted when every chunk is out
  // (counted as alloc_failed), FailedPrecondition after Retire().
  absl::StatusOr<Chunk> Alloc();
  // Up to out.size() chunks, each with one reference; returns how many. Fewer
  // than asked means the region ran dry (or was retired: then 0).
  size_t AllocBulk(absl::Span<Chunk> out);

  // ---- References ---------------------------------------------------------

  // REQUIRES: the caller holds a reference to `c` (so it cannot be free).
  // InvalidArgument for a chunk of another region or out of range;
  // FailedPrecondition (and ref_errors++) for a chunk that is free.
  absl::Status Ref(Chunk c);
  // Drops one reference; the last one returns the chunk to the pool. Same
  // errors as Ref(); a chunk that is already free is left untouched.
  absl::Status Unref(Chunk c);
  // Free() is Unref() of the allocation reference.
  absl::Status Free(Chunk c) { return Unref(c); }
  // Drops one reference from each chunk. Returns the first error; every valid
  // chunk is still unreferenced.
  absl::Status UnrefBulk(absl::Span<const Chunk> chunks);

  // ---- Tokens -------------------------------------------------------------

  // Lends `c` to `borrower`: takes one reference and returns the token (the
  // chunk index). A chunk may be lent several times to the same borrower (it
  // must then be released as many times); lending it to a second borrower
  // while the first holds tokens is FailedPrecondition. borrower must be
  // non-zero.
  absl::StatusOr<Token> Lend(Chunk c, BorrowerId borrower);
  // Gives back tokens, as SO_DEVMEM_DONTNEED: up to kMaxTokenRanges ranges.
  // Costs O(tokens that exist), never O(count asked): each range is first
  // clamped to the region's chunks, and the part beyond them (unknown tokens,
  // including a range with start + count > 2^32) is rejected in one step,
  // counted in `rejected` (saturating at UINT32_MAX) and token_errors.
  // Everything valid in a range is released, whatever its tail.
  // InvalidArgument and nothing released: more than kMaxTokenRanges ranges, a
  // zero borrower, or more than kMaxTokensPerRelease tokens inside the region
  // over all ranges (the kernel answers E2BIG there). Foreign tokens (lent to
  // another borrower) and ones not lent (already released) are rejected one
  // by one, counted, and never disturb any count.
  TokenRelease ReleaseTokens(BorrowerId borrower,
                             absl::Span<const TokenRange> ranges);
  // Releases every token `borrower` still holds (its socket/session closed).
  // Returns how many were released. Scans the chunks ever used: O(used).
  uint64_t ReleaseAllTokens(BorrowerId borrower);
  // How many tokens `borrower` holds. O(used); for tests and reports.
  uint64_t TokensHeld(BorrowerId borrower) const;

  // ---- Lifetime -----------------------------------------------------------

  // Stops all new allocations and arranges for `on_released` to run exactly
  // once, when the last outstanding chunk comes back: inside this call if
  // nothing is outstanding, else on the thread dropping the last reference.
  // Chunks still out may be Ref'd, Unref'd and their tokens released as usual.
  // FailedPrecondition if already retired. on_released must not call back
  // into this Region's Retire().
  absl::StatusOr<RetireReport> Retire(std::function<void()> on_released);
  // Also runs `fn` once the region is released, after Retire's on_released,
  // on the same thread; at once, on this thread, if it already is. For an
  // owner other than the one that retires it (the daemon's drain tracking).
  // `fn` must not call back into this Region.
  void OnReleased(std::function<void()> fn);
  bool retired() const { return retired_.load(std::memory_order_acquire); }
  bool released() const;
  // What is outstanding now (exact once retired; a snapshot before).
  RetireReport Outstanding() const;

  // ---- Stats ---------------------------------------------------------------

  // Lock-free snapshot; counters are monotonic, gauges are a racy sum that is
  // exact when the region is quiescent.
  RegionStats Stats() const;

  // Chunks free now, counted from the structures that hold them (every
  // cache, the ring, the free list, never-used chunks), not derived from the
  // counters: free + inflight_chunks == capacity when quiescent. Takes the
  // depot lock; for tests and reports.
  uint64_t FreeChunks() const;

  // Bytes of chunk metadata reserved (16 per chunk) and the fixed overhead.
  static constexpr size_t kMetaBytesPerChunk = 16;
  size_t MetadataBytesReserved() const;
  // Bytes of metadata actually touched so far (chunks ever used, rounded to
  // pages): what the region really costs in memory.
  size_t MetadataBytesTouched() const;

 private:
  using Cache = pool_internal::Cache;

  explicit Region(RegionOptions options, uint32_t id, uint32_t chunk_shift,
                  uint64_t num_chunks);

  // The cache of the thread in `slot`: its own, or the shared locked one.
  Cache& CacheFor(uint32_t slot) {
    return caches_[slot < num_caches_ ? slot : num_caches_];
  }
  // Takes cache.lock. The allocation paths that the fast path leaves to.
  [[gnu::noinline]] absl::StatusOr<Chunk> AllocSlow(Cache& cache);
  [[gnu::noinline]] size_t AllocBulkSlow(Cache& cache, absl::Span<Chunk> out);
  // Moves up to kBatch chunks into `cache`: from the ring, else the free list
  // / never-used chunks, else half of another cache. Returns how many came.
  uint32_t RefillLocked(Cache& cache) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache.lock);
  uint32_t StealLocked(Cache& cache) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache.lock);
  // Returns chunks whose last reference was dropped to the pool.
  void Recycle(const uint32_t* indices, size_t n);
  // Recycle() of one chunk, inlined into Unref.
  void RecycleOne(uint32_t index);
  [[gnu::noinline]] void RecycleSlow(Cache& cache, const uint32_t* indices,
                                     size_t n);
  void RecycleLocked(Cache& cache, const uint32_t* indices, size_t n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache.lock);
  void FlushLocked(Cache& cache) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cache.lock);
  // After Retire(): straight to the free list; may run on_released.
  void ReleaseToFreeList(const uint32_t* indices, size_t n);
  absl::Status CheckChunk(Chunk c, const char* op) const;
  // The error for a Ref/Unref of `c` that is out of range or free.
  [[gnu::noinline]] absl::Status RefError(Chunk c, const char* op) const;
  enum class Drop { kLast, kKept, kWasFree };
  // Drops one reference (counting ref_errors if the chunk was free).
  Drop DropRef(uint32_t index);
  // Releases what `borrower` holds of tokens [start, end), all inside the
  // region; the chunks whose last reference went are added to the batch.
  void ReleaseRange(BorrowerId borrower, uint64_t start, uint64_t end,
                    TokenRelease& result, uint32_t* batch, size_t& n);

  const uint32_t id_;
  const uint32_t chunk_size_;
  const uint32_t chunk_shift_;
  const uint64_t num_chunks_;
  const std::string name_;
  const std::optional<std::byte*> cpu_base_;

  std::unique_ptr<pool_internal::MetaArray> meta_;
  pool_internal::ChunkMeta* meta_base_ = nullptr;  // meta_'s array
  // num_caches_ owned caches, then the shared one.
  const uint32_t num_caches_;
  std::unique_ptr<Cache[]> caches_;
  std::unique_ptr<pool_internal::Depot> depot_;

  // Set once, under the depot lock, by Retire(), which then raises every
  // cache's `remote` for good; read on every slow path under a lock.
  std::atomic<bool> retired_{false};

  // Counters not owned by a cache (slow paths, errors).
  mutable RegionCounters shared_counters_;
};

// A movable reference to one chunk: dropping it drops the reference.
class ChunkRef {
 public:
  ChunkRef() = default;
  // Adopts one reference the caller already holds.
  static ChunkRef Adopt(std::shared_ptr<Region> region, Chunk c) {
    return ChunkRef(std::move(region), c);
  }
  ChunkRef(ChunkRef&& o) noexcept
      : region_(std::move(o.region_)), chunk_(o.chunk_) {}
  ChunkRef& operator=(ChunkRef&& o) noexcept {
    if (this != &o) {
      reset();
      region_ = std::move(o.region_);
      chunk_ = o.chunk_;
    }
    return *this;
  }
  ~ChunkRef() { reset(); }

  explicit operator bool() const { return region_ != nullptr; }
  Chunk chunk() const { return chunk_; }
  Region* region() const { return region_.get(); }
  // Gives the reference to the caller.
  [[nodiscard]] Chunk release() {
    region_.reset();
    return chunk_;
  }
  void reset() {
    if (region_) (void)region_->Unref(chunk_);
    region_.reset();
  }

 private:
  ChunkRef(std::shared_ptr<Region> region, Chunk c)
      : region_(std::move(region)), chunk_(c) {}
  std::shared_ptr<Region> region_;
  Chunk chunk_;
};

}  // namespace devmem

#endif  // DEVMEM_POOL_REGION_H_
