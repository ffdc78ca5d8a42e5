#include "pool/region.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "pool/internal/spin_lock.h"

namespace devmem {
namespace pool_internal {

// 16 bytes per chunk, zero-initialised by the OS (zero = free, not lent).
// Accessed through std::atomic_ref so the reservation needs no constructors.
struct alignas(8) ChunkMeta {
  uint32_t refs;  // 0: free. Holders are listed in region.h.
  uint32_t next;  // free-list link while on the depot's free list
  uint64_t lent;  // (borrower << 32) | tokens outstanding; 0 = not lent
};
static_assert(sizeof(ChunkMeta) == Region::kMetaBytesPerChunk);

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

// A per-thread cache (the kernel's per-NAPI alloc cache). Threads map onto
// caches by a thread sequence number; see Region::MyCache().
struct alignas(64) Cache {
  SpinLock lock;
  uint32_t count ABSL_GUARDED_BY(lock) = 0;
  uint32_t slots[Region::kCacheSize] ABSL_GUARDED_BY(lock);
  RegionCounters counters;  // written under `lock`, read lock-free
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
  bool released ABSL_GUARDED_BY(mu) = false;

  uint64_t FreeLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return ring_count + free_count;
  }
};

}  // namespace pool_internal

using pool_internal::Cache;
using pool_internal::ChunkMeta;
using pool_internal::Lent;
using pool_internal::LentCount;
using pool_internal::LentBorrower;
using pool_internal::PackLent;
using pool_internal::Refs;
using pool_internal::SpinLockHolder;

namespace {

std::atomic<uint32_t> g_next_region_id{1};
std::atomic<uint32_t> g_next_thread_seq{0};

uint32_t NextRegionId() {
  for (;;) {
    uint32_t id = g_next_region_id.fetch_add(1, std::memory_order_relaxed);
    if (id != 0) return id;
  }
}

// Constant-initialised (no TLS guard on the fast path), assigned on first use.
thread_local uint32_t tls_thread_seq = UINT32_MAX;

inline uint32_t ThreadSeq() {
  uint32_t seq = tls_thread_seq;
  if (seq == UINT32_MAX) [[unlikely]] {
    seq = tls_thread_seq =
        g_next_thread_seq.fetch_add(1, std::memory_order_relaxed) & 0x7fffffff;
  }
  return seq;
}

uint32_t NumCaches() {
  const uint32_t cpus = std::max(1u, std::thread::hardware_concurrency());
  return std::clamp(std::bit_ceil(cpus * 2), 4u, 64u);
}

}  // namespace

absl::StatusOr<std::shared_ptr<Region>> Region::Create(RegionOptions options) {
  const std::string what =
      options.name.empty() ? std::string("region") : options.name;
  if (options.size_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": size is zero"));
  }
  if (!std::has_single_bit(options.chunk_size) ||
      options.chunk_size < kMinChunkSize ||
      options.chunk_size > kMaxChunkSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": chunk size ", options.chunk_size,
        " must be a power of two from ", kMinChunkSize, " to ", kMaxChunkSize));
  }
  const uint32_t shift = std::countr_zero(options.chunk_size);
  const uint64_t n = options.size_bytes >> shift;
  if (n == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", options.size_bytes, " bytes is smaller than one chunk of ",
        options.chunk_size));
  }
  if (n > kMaxChunks) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", n, " chunks is more than the limit of ",
                     kMaxChunks, "; use a larger chunk size"));
  }
  auto meta = pool_internal::MetaArray::Create(n);
  if (!meta.ok()) return meta.status();
  std::shared_ptr<Region> region(
      new Region(std::move(options), NextRegionId(), shift, n));
  region->meta_ = std::move(meta).value();
  return region;
}

Region::Region(RegionOptions options, uint32_t id, uint32_t chunk_shift,
               uint64_t num_chunks)
    : id_(id),
      chunk_size_(options.chunk_size),
      chunk_shift_(chunk_shift),
      num_chunks_(num_chunks),
      name_(options.name.empty() ? absl::StrCat("region ", id)
                                 : std::move(options.name)),
      cpu_base_(options.cpu_base),
      caches_(new Cache[NumCaches()]),
      cache_mask_(NumCaches() - 1),
      depot_(std::make_unique<pool_internal::Depot>()) {
  uint64_t ring = std::max<uint64_t>(options.ring_size, kBatch);
  ring = (ring + kBatch - 1) / kBatch * kBatch;
  SpinLockHolder l(depot_->mu);
  depot_->ring.resize(std::min<uint64_t>(ring, num_chunks + kBatch));
}

Region::~Region() {
  const RetireReport out = Outstanding();
  if (out.outstanding_chunks != 0) {
    // A holder dropped its shared_ptr while keeping chunk handles: a bug in
    // the caller. Say so; the handles must not be used again.
    std::string msg =
        absl::StrCat("devmem pool: ", name_, " destroyed with ",
                     out.outstanding_chunks, " chunks outstanding\n");
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
  }
}

std::optional<std::byte*> Region::CpuAddress(Chunk c) const {
  if (!cpu_base_ || !Contains(c)) return std::nullopt;
  return *cpu_base_ + Offset(c);
}

Cache& Region::MyCache() { return caches_[ThreadSeq() & cache_mask_]; }

absl::Status Region::CheckChunk(Chunk c, const char* op) const {
  if (c.region != id_) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": ", op, " of chunk ", c.index, " of region ",
                     c.region, ", which is not this region (", id_, ")"));
  }
  if (c.index >= num_chunks_) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": ", op, " of chunk ", c.index, ", beyond its ",
                     num_chunks_, " chunks"));
  }
  return absl::OkStatus();
}

// ---- Allocation
// ---------------------------------------------------------------

// Lock and unlock are split across Alloc and AllocSlow, which the analysis
// cannot follow: both are checked by the model and stress tests instead.
absl::StatusOr<Chunk> Region::Alloc() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Cache& cache = MyCache();
  cache.lock.Lock();
  if (cache.count == 0 || retired_.load(std::memory_order_relaxed))
      [[unlikely]] {
    return AllocSlow(cache);  // unlocks
  }
  const uint32_t index = cache.slots[--cache.count];
  RegionCounters::Add<uint64_t>(cache.counters.alloc_fast, 1);
  RegionCounters::Add<int64_t>(cache.counters.allocated, 1);
  cache.lock.Unlock();
  Refs((*meta_)[index]).store(1, std::memory_order_relaxed);
  return Chunk{id_, index};
}

absl::StatusOr<Chunk> Region::AllocSlow(Cache& cache)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // REQUIRES: cache.lock held; releases it. Kept out of line so the fast
  // path above stays a handful of instructions.
  if (retired_.load(std::memory_order_relaxed)) {
    cache.lock.Unlock();
    return absl::FailedPreconditionError(
        absl::StrCat(name_, ": retired, no new allocations"));
  }
  if (Refill(cache) == 0) {
    RegionCounters::Add<uint64_t>(cache.counters.alloc_failed, 1);
    cache.lock.Unlock();
    return absl::ResourceExhaustedError(
        absl::StrCat(name_, ": all ", num_chunks_, " chunks are in use"));
  }
  const uint32_t index = cache.slots[--cache.count];
  RegionCounters::Add<int64_t>(cache.counters.allocated, 1);
  cache.lock.Unlock();
  Refs((*meta_)[index]).store(1, std::memory_order_relaxed);
  return Chunk{id_, index};
}

size_t Region::AllocBulk(absl::Span<Chunk> out) {
  Cache& cache = MyCache();
  size_t n = 0;
  {
    SpinLockHolder l(cache.lock);
    if (retired_.load(std::memory_order_relaxed)) return 0;
    while (n < out.size()) {
      if (cache.count == 0 && Refill(cache) == 0) {
        RegionCounters::Add<uint64_t>(cache.counters.alloc_failed, 1);
        break;
      }
      const size_t take = std::min<size_t>(cache.count, out.size() - n);
      for (size_t i = 0; i < take; ++i) {
        out[n + i] = Chunk{id_, cache.slots[--cache.count]};
      }
      n += take;
    }
    RegionCounters::Add<uint64_t>(cache.counters.alloc_fast, n);
    RegionCounters::Add<int64_t>(cache.counters.allocated,
                                 static_cast<int64_t>(n));
  }
  for (size_t i = 0; i < n; ++i) {
    Refs((*meta_)[out[i].index]).store(1, std::memory_order_relaxed);
  }
  return n;
}

uint32_t Region::Refill(Cache& cache) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // REQUIRES: cache.lock held (taken by the caller's SpinLockHolder).
  pool_internal::Depot& d = *depot_;
  uint32_t got = 0;
  {
    SpinLockHolder l(d.mu);
    if (retired_.load(std::memory_order_relaxed)) return 0;
    if (d.ring_count > 0) {
      got = std::min(kBatch, d.ring_count);
      d.ring_count -= got;
      std::memcpy(&cache.slots[cache.count], &d.ring[d.ring_count],
                  got * sizeof(uint32_t));
      cache.count += got;
      RegionCounters::Add<uint64_t>(cache.counters.alloc_refill, got);
      return got;
    }
    RegionCounters::Add<uint64_t>(cache.counters.alloc_empty, 1);
    while (got < kBatch && d.free_count > 0) {
      const uint32_t index = d.free_head;
      d.free_head = (*meta_)[index].next;
      --d.free_count;
      cache.slots[cache.count++] = index;
      ++got;
    }
    const uint64_t carved = d.carved.load(std::memory_order_relaxed);
    const uint64_t fresh =
        std::min<uint64_t>(kBatch - got, num_chunks_ - carved);
    // Hand out never-used chunks lowest first, so the touched part of the
    // metadata stays compact.
    for (uint64_t i = 0; i < fresh; ++i) {
      cache.slots[cache.count + fresh - 1 - i] =
          static_cast<uint32_t>(carved + i);
    }
    cache.count += static_cast<uint32_t>(fresh);
    got += static_cast<uint32_t>(fresh);
    d.carved.store(carved + fresh, std::memory_order_relaxed);
    RegionCounters::Add<uint64_t>(cache.counters.alloc_slow, got);
  }
  if (got > 0) return got;
  // Everything is in other threads' caches (or out): steal half of one, so a
  // thread that only frees cannot starve a thread that only allocates.
  for (uint32_t i = 0; i <= cache_mask_; ++i) {
    Cache& victim = caches_[i];
    if (&victim == &cache || !victim.lock.TryLock()) continue;
    if (!retired_.load(std::memory_order_relaxed) && victim.count > 0) {
      got = (victim.count + 1) / 2;
      victim.count -= got;
      std::memcpy(&cache.slots[cache.count], &victim.slots[victim.count],
                  got * sizeof(uint32_t));
      cache.count += got;
    }
    victim.lock.Unlock();
    if (got > 0) {
      RegionCounters::Add<uint64_t>(cache.counters.alloc_refill, got);
      return got;
    }
  }
  return 0;
}

// ---- Freeing
// --------------------------------------------------------------------

void Region::Recycle(const uint32_t* indices, size_t n) {
  Cache& cache = MyCache();
  {
    SpinLockHolder l(cache.lock);
    if (!retired_.load(std::memory_order_relaxed)) [[likely]] {
      RecycleLocked(cache, indices, n);
      return;
    }
  }
  // Retire() drained this cache after setting the flag, so it stays empty
  // from here on: every chunk goes to the free list, where it is counted.
  ReleaseToFreeList(indices, n);
}

void Region::RecycleLocked(Cache& cache, const uint32_t* indices,
                           size_t n) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // REQUIRES: cache.lock held.
  RegionCounters::Add<int64_t>(cache.counters.allocated,
                               -static_cast<int64_t>(n));
  for (size_t i = 0; i < n; ++i) {
    if (cache.count == kCacheSize) [[unlikely]]
      FlushLocked(cache);
    cache.slots[cache.count++] = indices[i];
  }
  RegionCounters::Add<uint64_t>(cache.counters.recycle_cached, n);
}

void Region::FlushLocked(Cache& cache) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // REQUIRES: cache.lock held. Moves the oldest kBatch (the bottom of the
  // stack) to the ring; what does not fit spills to the free list, as a full
  // ptr_ring releases pages to the page allocator.
  pool_internal::Depot& d = *depot_;
  SpinLockHolder dl(d.mu);
  const uint32_t room = static_cast<uint32_t>(d.ring.size()) - d.ring_count;
  const uint32_t to_ring = std::min(kBatch, room);
  std::memcpy(&d.ring[d.ring_count], &cache.slots[0],
              to_ring * sizeof(uint32_t));
  d.ring_count += to_ring;
  for (uint32_t j = to_ring; j < kBatch; ++j) {
    const uint32_t index = cache.slots[j];
    (*meta_)[index].next = d.free_head;
    d.free_head = index;
    ++d.free_count;
  }
  std::memmove(&cache.slots[0], &cache.slots[kBatch],
               (kCacheSize - kBatch) * sizeof(uint32_t));
  cache.count -= kBatch;
  RegionCounters::Add<uint64_t>(cache.counters.recycle_cache_full, 1);
  RegionCounters::Add<uint64_t>(cache.counters.recycle_ring, to_ring);
  RegionCounters::Add<uint64_t>(cache.counters.recycle_ring_full,
                                kBatch - to_ring);
}

void Region::ReleaseToFreeList(const uint32_t* indices, size_t n) {
  pool_internal::Depot& d = *depot_;
  std::function<void()> fire;
  {
    SpinLockHolder l(d.mu);
    for (size_t i = 0; i < n; ++i) {
      (*meta_)[indices[i]].next = d.free_head;
      d.free_head = indices[i];
      ++d.free_count;
    }
    RegionCounters::AddShared<uint64_t>(shared_counters_.recycle_released, n);
    RegionCounters::AddShared<int64_t>(shared_counters_.allocated,
                                       -static_cast<int64_t>(n));
    if (!d.released &&
        d.FreeLocked() == d.carved.load(std::memory_order_relaxed)) {
      d.released = true;
      fire = std::move(d.on_released);
    }
  }
  if (fire) fire();
}

Region::Drop Region::DropRef(uint32_t index) {
  auto refs = Refs((*meta_)[index]);
  uint32_t r = refs.load(std::memory_order_acquire);
  // As the kernel's page_pool_unref_netmem: the sole holder needs no
  // read-modify-write (nobody else can take a reference without one).
  if (r == 1) [[likely]] {
    refs.store(0, std::memory_order_relaxed);
    return Drop::kLast;
  }
  while (r != 0) {
    if (refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel)) {
      return r == 1 ? Drop::kLast : Drop::kKept;
    }
  }
  RegionCounters::AddShared<uint64_t>(shared_counters_.ref_errors, 1);
  return Drop::kWasFree;
}

absl::Status Region::RefError(Chunk c, const char* op) const {
  if (!Contains(c)) {
    RegionCounters::AddShared<uint64_t>(shared_counters_.ref_errors, 1);
    return CheckChunk(c, op);
  }
  return absl::FailedPreconditionError(
      absl::StrCat(name_, ": ", op, " of chunk ", c.index,
                   ", which is free (double free?)"));
}

absl::Status Region::Unref(Chunk c) {
  if (!Contains(c)) [[unlikely]]
    return RefError(c, "unref");
  switch (DropRef(c.index)) {
    case Drop::kLast:
      RecycleOne(c.index);
      return absl::OkStatus();
    case Drop::kKept:
      return absl::OkStatus();
    case Drop::kWasFree:
      break;
  }
  return RefError(c, "unref");
}

void Region::RecycleOne(uint32_t index) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Cache& cache = MyCache();
  cache.lock.Lock();
  if (cache.count == kCacheSize || retired_.load(std::memory_order_relaxed))
      [[unlikely]] {
    RecycleSlow(cache, index);  // unlocks
    return;
  }
  cache.slots[cache.count++] = index;
  RegionCounters::Add<int64_t>(cache.counters.allocated, -1);
  RegionCounters::Add<uint64_t>(cache.counters.recycle_cached, 1);
  cache.lock.Unlock();
}

void Region::RecycleSlow(Cache& cache,
                         uint32_t index) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // REQUIRES: cache.lock held; releases it.
  if (retired_.load(std::memory_order_relaxed)) {
    cache.lock.Unlock();
    ReleaseToFreeList(&index, 1);
    return;
  }
  RecycleLocked(cache, &index, 1);
  cache.lock.Unlock();
}

absl::Status Region::UnrefBulk(absl::Span<const Chunk> chunks) {
  absl::Status first;
  uint32_t batch[kBatch];
  size_t n = 0;
  for (const Chunk& c : chunks) {
    const Drop d = Contains(c) ? DropRef(c.index) : Drop::kWasFree;
    if (d == Drop::kLast) {
      batch[n++] = c.index;
      if (n == kBatch) {
        Recycle(batch, n);
        n = 0;
      }
    } else if (d == Drop::kWasFree) {
      first.Update(RefError(c, "unref"));
    }
  }
  if (n > 0) Recycle(batch, n);
  return first;
}

absl::Status Region::Ref(Chunk c) {
  if (!Contains(c)) [[unlikely]]
    return RefError(c, "ref");
  auto refs = Refs((*meta_)[c.index]);
  uint32_t r = refs.load(std::memory_order_relaxed);
  while (r != 0) {
    if (r == UINT32_MAX) {
      return absl::ResourceExhaustedError(
          absl::StrCat(name_, ": chunk ", c.index, " has too many references"));
    }
    if (refs.compare_exchange_weak(r, r + 1, std::memory_order_relaxed)) {
      return absl::OkStatus();
    }
  }
  RegionCounters::AddShared<uint64_t>(shared_counters_.ref_errors, 1);
  return RefError(c, "ref");
}

// ---- Tokens
// ----------------------------------------------------------------------

absl::StatusOr<Token> Region::Lend(Chunk c, BorrowerId borrower) {
  if (borrower == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": lend to borrower 0 (nobody)"));
  }
  if (absl::Status s = Ref(c); !s.ok()) return s;
  auto lent = Lent((*meta_)[c.index]);
  uint64_t v = lent.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t count = LentCount(v);
    if (count != 0 && LentBorrower(v) != borrower) {
      (void)Unref(c);
      return absl::FailedPreconditionError(
          absl::StrCat(name_, ": chunk ", c.index, " is lent to borrower ",
                       LentBorrower(v), ", cannot lend it to ", borrower));
    }
    if (count == UINT32_MAX) {
      (void)Unref(c);
      return absl::ResourceExhaustedError(
          absl::StrCat(name_, ": chunk ", c.index, " lent too many times"));
    }
    if (lent.compare_exchange_weak(v, PackLent(borrower, count + 1),
                                   std::memory_order_acq_rel)) {
      break;
    }
  }
  RegionCounters::AddShared<int64_t>(shared_counters_.lent, 1);
  return c.index;
}

TokenRelease Region::ReleaseTokens(BorrowerId borrower,
                                   absl::Span<const TokenRange> ranges) {
  TokenRelease result;
  if (borrower == 0) {
    result.status = absl::InvalidArgumentError(
        absl::StrCat(name_, ": token release by borrower 0 (nobody)"));
    return result;
  }
  if (ranges.size() > kMaxTokenRanges) {
    result.status = absl::InvalidArgumentError(absl::StrCat(
        name_, ": ", ranges.size(), " token ranges in one release; at most ",
        kMaxTokenRanges));
    return result;
  }
  for (const TokenRange& r : ranges) {
    if (uint64_t{r.start} + r.count > (uint64_t{1} << 32)) {
      result.status = absl::InvalidArgumentError(
          absl::StrCat(name_, ": token range {", r.start, ", ", r.count,
                       "} overflows the 32-bit token space"));
      return result;
    }
  }
  uint32_t batch[kBatch];
  size_t n = 0;
  for (const TokenRange& r : ranges) {
    for (uint64_t t = r.start; t < uint64_t{r.start} + r.count; ++t) {
      absl::Status bad;
      if (t >= num_chunks_) {
        bad = absl::NotFoundError(absl::StrCat(name_, ": token ", t,
                                               " is unknown (beyond ",
                                               num_chunks_, " chunks)"));
      } else {
        auto lent = Lent((*meta_)[t]);
        uint64_t v = lent.load(std::memory_order_relaxed);
        for (;;) {
          if (LentCount(v) == 0) {
            bad = absl::FailedPreconditionError(absl::StrCat(
                name_, ": token ", t, " is not lent (already released?)"));
            break;
          }
          if (LentBorrower(v) != borrower) {
            bad = absl::PermissionDeniedError(
                absl::StrCat(name_, ": token ", t, " belongs to another user"));
            break;
          }
          const uint32_t left = LentCount(v) - 1;
          if (lent.compare_exchange_weak(v,
                                         left == 0 ? 0 : PackLent(borrower, left),
                                         std::memory_order_acq_rel)) {
            break;
          }
        }
      }
      if (!bad.ok()) {
        if (result.rejected++ == 0) result.status = bad;
        continue;
      }
      ++result.freed;
      if (DropRef(static_cast<uint32_t>(t)) == Drop::kLast) {
        batch[n++] = static_cast<uint32_t>(t);
        if (n == kBatch) {
          Recycle(batch, n);
          n = 0;
        }
      }
    }
  }
  if (n > 0) Recycle(batch, n);
  if (result.freed > 0) {
    RegionCounters::AddShared<int64_t>(shared_counters_.lent,
                                       -static_cast<int64_t>(result.freed));
  }
  if (result.rejected > 0) {
    RegionCounters::AddShared<uint64_t>(shared_counters_.token_errors,
                                        result.rejected);
    result.status = absl::Status(
        result.status.code(),
        absl::StrCat(result.status.message(), " (", result.rejected,
                     " token(s) rejected, ", result.freed, " released)"));
  }
  return result;
}

uint64_t Region::ReleaseAllTokens(BorrowerId borrower) {
  if (borrower == 0) return 0;
  const uint64_t used = depot_->carved.load(std::memory_order_acquire);
  uint64_t released = 0;
  uint32_t batch[kBatch];
  size_t n = 0;
  for (uint64_t i = 0; i < used; ++i) {
    auto lent = Lent((*meta_)[i]);
    uint64_t v = lent.load(std::memory_order_relaxed);
    while (LentCount(v) != 0 && LentBorrower(v) == borrower) {
      if (lent.compare_exchange_weak(v, 0, std::memory_order_acq_rel)) {
        // Drop one reference per token this borrower held.
        for (uint32_t k = 0; k < LentCount(v); ++k) {
          if (DropRef(static_cast<uint32_t>(i)) == Drop::kLast) {
            batch[n++] = static_cast<uint32_t>(i);
            if (n == kBatch) {
              Recycle(batch, n);
              n = 0;
            }
          }
        }
        released += LentCount(v);
        break;
      }
    }
  }
  if (n > 0) Recycle(batch, n);
  if (released > 0) {
    RegionCounters::AddShared<int64_t>(shared_counters_.lent,
                                       -static_cast<int64_t>(released));
  }
  return released;
}

uint64_t Region::TokensHeld(BorrowerId borrower) const {
  const uint64_t used = depot_->carved.load(std::memory_order_acquire);
  uint64_t held = 0;
  for (uint64_t i = 0; i < used; ++i) {
    const uint64_t v = Lent((*meta_)[i]).load(std::memory_order_relaxed);
    if (LentCount(v) != 0 && LentBorrower(v) == borrower) held += LentCount(v);
  }
  return held;
}

// ---- Lifetime
// ------------------------------------------------------------------

absl::StatusOr<RetireReport> Region::Retire(std::function<void()> on_released) {
  pool_internal::Depot& d = *depot_;
  {
    SpinLockHolder l(d.mu);
    if (retired_.load(std::memory_order_relaxed)) {
      return absl::FailedPreconditionError(
          absl::StrCat(name_, ": already retired"));
    }
    d.on_released = std::move(on_released);
    retired_.store(true, std::memory_order_release);
  }
  // Drain every cache into the free list. A thread that takes a cache's lock
  // after this sees retired_ and goes to the free list directly, so from here
  // on the free list is exact: outstanding = carved - free.
  for (uint32_t i = 0; i <= cache_mask_; ++i) {
    Cache& cache = caches_[i];
    SpinLockHolder cl(cache.lock);
    SpinLockHolder l(d.mu);
    for (uint32_t j = 0; j < cache.count; ++j) {
      const uint32_t index = cache.slots[j];
      (*meta_)[index].next = d.free_head;
      d.free_head = index;
      ++d.free_count;
    }
    cache.count = 0;
  }
  RetireReport report;
  std::function<void()> fire;
  {
    SpinLockHolder l(d.mu);
    while (d.ring_count > 0) {
      const uint32_t index = d.ring[--d.ring_count];
      (*meta_)[index].next = d.free_head;
      d.free_head = index;
      ++d.free_count;
    }
    const uint64_t carved = d.carved.load(std::memory_order_relaxed);
    report.outstanding_chunks = carved - d.FreeLocked();
    report.outstanding_bytes = report.outstanding_chunks << chunk_shift_;
    if (!d.released && report.outstanding_chunks == 0) {
      d.released = true;
      fire = std::move(d.on_released);
    }
    report.released = d.released;
  }
  report.lent_tokens = static_cast<uint64_t>(std::max<int64_t>(
      0, shared_counters_.lent.load(std::memory_order_relaxed)));
  if (fire) fire();
  return report;
}

bool Region::released() const {
  SpinLockHolder l(depot_->mu);
  return depot_->released;
}

RetireReport Region::Outstanding() const {
  RetireReport report;
  const RegionStats s = Stats();
  report.outstanding_chunks = s.inflight_chunks;
  report.outstanding_bytes = s.inflight_bytes;
  report.lent_tokens = s.lent_tokens;
  report.released = s.released;
  if (retired()) {
    SpinLockHolder l(depot_->mu);
    report.outstanding_chunks =
        depot_->carved.load(std::memory_order_relaxed) - depot_->FreeLocked();
    report.outstanding_bytes = report.outstanding_chunks << chunk_shift_;
    report.released = depot_->released;
  }
  return report;
}

// ---- Stats
// -----------------------------------------------------------------------

RegionStats Region::Stats() const {
  RegionStats s;
  int64_t allocated = 0;
  int64_t lent = 0;
  for (uint32_t i = 0; i <= cache_mask_; ++i) {
    caches_[i].counters.AccumulateInto(s);
    allocated += caches_[i].counters.allocated.load(std::memory_order_relaxed);
  }
  shared_counters_.AccumulateInto(s);
  allocated += shared_counters_.allocated.load(std::memory_order_relaxed);
  lent += shared_counters_.lent.load(std::memory_order_relaxed);
  s.inflight_chunks = static_cast<uint64_t>(std::max<int64_t>(0, allocated));
  s.inflight_bytes = s.inflight_chunks << chunk_shift_;
  s.lent_tokens = static_cast<uint64_t>(std::max<int64_t>(0, lent));
  s.capacity_chunks = num_chunks_;
  s.chunk_size = chunk_size_;
  s.retired = retired_.load(std::memory_order_relaxed);
  // `released` is read without the depot lock: it is a one-way latch and
  // retired() + zero inflight says the same thing.
  s.released = s.retired && s.inflight_chunks == 0;
  return s;
}

size_t Region::MetadataBytesReserved() const { return meta_->bytes(); }

size_t Region::MetadataBytesTouched() const {
  const uint64_t used = depot_->carved.load(std::memory_order_relaxed);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t bytes = used * sizeof(ChunkMeta);
  return (bytes + page - 1) / page * page;
}

}  // namespace devmem
