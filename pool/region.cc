#include "pool/region.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "pool/internal/cache.h"
#include "pool/internal/meta.h"
#include "pool/internal/spin_lock.h"
#include "pool/internal/thread_slot.h"

namespace devmem {

using pool_internal::Cache;
using pool_internal::EnterOwner;
using pool_internal::ExitOwner;
using pool_internal::Refs;
using pool_internal::SpinLockHolder;

namespace {

// Retire's on_released and the OnReleased listeners, as one callable to run
// outside the depot lock.
std::function<void()> TakeReleaseCallbacksLocked(pool_internal::Depot& d)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(d.mu) {
  return [first = std::move(d.on_released),
          rest = std::move(d.release_listeners)]() {
    if (first) first();
    for (const std::function<void()>& f : rest) f();
  };
}

std::atomic<uint32_t> g_next_region_id{1};

uint32_t NextRegionId() {
  for (;;) {
    uint32_t id = g_next_region_id.fetch_add(1, std::memory_order_relaxed);
    if (id != 0) return id;
  }
}

// Owned caches per region: enough for the thread pools of a daemon on this
// machine (8 per CPU, 16 to 64); further threads share one locked cache.
uint32_t NumCaches() {
  const uint32_t cpus = std::max(1u, std::thread::hardware_concurrency());
  return std::clamp(std::bit_ceil(cpus * 8), 16u, 64u);
}

}  // namespace

absl::StatusOr<std::shared_ptr<Region>> Region::Create(RegionOptions options) {
  const std::string what =
      options.name.empty() ? std::string("region") : options.name;
  if (options.size_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": size is zero"));
  }
  if (!ValidChunkSize(options.chunk_size)) {
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
  // Before any cache of any region exists: every owner then sees the final
  // fence mode.
  pool_internal::InitAsymmetricFence();
  std::shared_ptr<Region> region(
      new Region(std::move(options), NextRegionId(), shift, n));
  region->meta_ = std::move(meta).value();
  region->meta_base_ = &(*region->meta_)[0];
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
      num_caches_(NumCaches()),
      caches_(new Cache[num_caches_ + 1]),
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

// ---- Allocation -------------------------------------------------------------

absl::StatusOr<Chunk> Region::Alloc() {
  const uint32_t slot = pool_internal::ThreadSlot();
  if (slot < num_caches_) [[likely]] {
    Cache& cache = caches_[slot];
    if (EnterOwner(cache)) [[likely]] {
      const uint32_t n = cache.Count();
      if (n != 0) [[likely]] {
        const uint32_t index = cache.slots[n - 1];
        cache.SetCount(n - 1);
        RegionCounters::Add<uint64_t>(cache.counters.alloc_fast, 1);
        ExitOwner(cache);
        Refs(meta_base_[index]).store(1, std::memory_order_relaxed);
        return Chunk{id_, index};
      }
    }
    ExitOwner(cache);
  }
  return AllocSlow(CacheFor(slot));
}

absl::StatusOr<Chunk> Region::AllocSlow(Cache& cache) {
  uint32_t index;
  {
    SpinLockHolder l(cache.lock);
    if (retired_.load(std::memory_order_relaxed)) {
      return absl::FailedPreconditionError(
          absl::StrCat(name_, ": retired, no new allocations"));
    }
    if (cache.Count() == 0 && RefillLocked(cache) == 0) {
      RegionCounters::Add<uint64_t>(cache.counters.alloc_failed, 1);
      return absl::ResourceExhaustedError(
          absl::StrCat(name_, ": all ", num_chunks_, " chunks are in use"));
    }
    const uint32_t n = cache.Count() - 1;
    index = cache.slots[n];
    cache.SetCount(n);
    RegionCounters::Add<int64_t>(cache.counters.allocated, 1);
  }
  Refs(meta_base_[index]).store(1, std::memory_order_relaxed);
  return Chunk{id_, index};
}

size_t Region::AllocBulk(absl::Span<Chunk> out) {
  const uint32_t slot = pool_internal::ThreadSlot();
  if (slot < num_caches_) [[likely]] {
    Cache& cache = caches_[slot];
    if (EnterOwner(cache)) [[likely]] {
      const uint32_t have = cache.Count();
      if (have >= out.size()) [[likely]] {
        const uint32_t left = have - static_cast<uint32_t>(out.size());
        for (size_t i = 0; i < out.size(); ++i) {
          out[i] = Chunk{id_, cache.slots[have - 1 - i]};
        }
        cache.SetCount(left);
        RegionCounters::Add<uint64_t>(cache.counters.alloc_fast, out.size());
        ExitOwner(cache);
        for (const Chunk& c : out) {
          Refs(meta_base_[c.index]).store(1, std::memory_order_relaxed);
        }
        return out.size();
      }
    }
    ExitOwner(cache);
  }
  return AllocBulkSlow(CacheFor(slot), out);
}

size_t Region::AllocBulkSlow(Cache& cache, absl::Span<Chunk> out) {
  size_t n = 0;
  {
    SpinLockHolder l(cache.lock);
    if (retired_.load(std::memory_order_relaxed)) return 0;
    while (n < out.size()) {
      if (cache.Count() == 0 && RefillLocked(cache) == 0) {
        RegionCounters::Add<uint64_t>(cache.counters.alloc_failed, 1);
        break;
      }
      uint32_t count = cache.Count();
      const size_t take = std::min<size_t>(count, out.size() - n);
      for (size_t i = 0; i < take; ++i) {
        out[n + i] = Chunk{id_, cache.slots[--count]};
      }
      cache.SetCount(count);
      n += take;
    }
    RegionCounters::Add<uint64_t>(cache.counters.alloc_fast, n);
  }
  for (size_t i = 0; i < n; ++i) {
    Refs(meta_base_[out[i].index]).store(1, std::memory_order_relaxed);
  }
  return n;
}

uint32_t Region::RefillLocked(Cache& cache) {
  pool_internal::Depot& d = *depot_;
  uint32_t got = 0;
  uint32_t count = cache.Count();
  {
    SpinLockHolder l(d.mu);
    if (retired_.load(std::memory_order_relaxed)) return 0;
    if (d.ring_count > 0) {
      got = std::min(kBatch, d.ring_count);
      d.ring_count -= got;
      std::memcpy(&cache.slots[count], &d.ring[d.ring_count],
                  got * sizeof(uint32_t));
      cache.SetCount(count + got);
      RegionCounters::Add<uint64_t>(cache.counters.alloc_refill, got);
      return got;
    }
    RegionCounters::Add<uint64_t>(cache.counters.alloc_empty, 1);
    while (got < kBatch && d.free_count > 0) {
      const uint32_t index = d.free_head;
      d.free_head = meta_base_[index].next;
      --d.free_count;
      cache.slots[count++] = index;
      ++got;
    }
    const uint64_t carved = d.carved.load(std::memory_order_relaxed);
    const uint64_t fresh =
        std::min<uint64_t>(kBatch - got, num_chunks_ - carved);
    // Hand out never-used chunks lowest first, so the touched part of the
    // metadata stays compact.
    for (uint64_t i = 0; i < fresh; ++i) {
      cache.slots[count + fresh - 1 - i] = static_cast<uint32_t>(carved + i);
    }
    count += static_cast<uint32_t>(fresh);
    got += static_cast<uint32_t>(fresh);
    cache.SetCount(count);
    d.carved.store(carved + fresh, std::memory_order_relaxed);
    RegionCounters::Add<uint64_t>(cache.counters.alloc_slow, got);
  }
  if (got > 0) return got;
  return StealLocked(cache);
}

uint32_t Region::StealLocked(Cache& cache) {
  // Everything is in other threads' caches (or out): steal half of one, so a
  // thread that only frees cannot starve a thread that only allocates.
  for (uint32_t i = 0; i <= num_caches_; ++i) {
    Cache& victim = caches_[i];
    if (&victim == &cache || victim.Count() == 0 || !victim.lock.TryLock()) {
      continue;
    }
    uint32_t got = 0;
    // Retire() raises `remote` for good under each cache's lock after setting
    // retired_: checked under the victim's lock, so we never lower it.
    if (!retired_.load(std::memory_order_relaxed)) {
      pool_internal::AcquireRemote(victim);
      const uint32_t have = victim.Count();
      got = (have + 1) / 2;
      const uint32_t count = cache.Count();
      std::memcpy(&cache.slots[count], &victim.slots[have - got],
                  got * sizeof(uint32_t));
      victim.SetCount(have - got);
      cache.SetCount(count + got);
      pool_internal::ReleaseRemote(victim);
    }
    victim.lock.Unlock();
    if (got > 0) {
      RegionCounters::Add<uint64_t>(cache.counters.alloc_refill, got);
      return got;
    }
  }
  return 0;
}

// ---- Freeing ----------------------------------------------------------------

void Region::Recycle(const uint32_t* indices, size_t n) {
  const uint32_t slot = pool_internal::ThreadSlot();
  if (slot < num_caches_) [[likely]] {
    Cache& cache = caches_[slot];
    if (EnterOwner(cache)) [[likely]] {
      const uint32_t count = cache.Count();
      if (count + n <= kCacheSize) [[likely]] {
        if (n == 1) {
          cache.slots[count] = indices[0];
        } else {
          std::memcpy(&cache.slots[count], indices, n * sizeof(uint32_t));
        }
        cache.SetCount(count + static_cast<uint32_t>(n));
        RegionCounters::Add<uint64_t>(cache.counters.recycle_cached, n);
        ExitOwner(cache);
        return;
      }
    }
    ExitOwner(cache);
  }
  RecycleSlow(CacheFor(slot), indices, n);
}

[[gnu::always_inline]] inline void Region::RecycleOne(uint32_t index) {
  const uint32_t slot = pool_internal::ThreadSlot();
  if (slot < num_caches_) [[likely]] {
    Cache& cache = caches_[slot];
    if (EnterOwner(cache)) [[likely]] {
      const uint32_t count = cache.Count();
      if (count < kCacheSize) [[likely]] {
        cache.slots[count] = index;
        cache.SetCount(count + 1);
        RegionCounters::Add<uint64_t>(cache.counters.recycle_cached, 1);
        ExitOwner(cache);
        return;
      }
    }
    ExitOwner(cache);
  }
  RecycleSlow(CacheFor(slot), &index, 1);
}

void Region::RecycleSlow(Cache& cache, const uint32_t* indices, size_t n) {
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

void Region::RecycleLocked(Cache& cache, const uint32_t* indices, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (cache.Count() == kCacheSize) [[unlikely]]
      FlushLocked(cache);
    const uint32_t count = cache.Count();
    cache.slots[count] = indices[i];
    cache.SetCount(count + 1);
  }
  RegionCounters::Add<uint64_t>(cache.counters.recycle_cached, n);
}

void Region::FlushLocked(Cache& cache) {
  // Moves the oldest kBatch (the bottom of the stack) to the ring; what does
  // not fit spills to the free list, as a full ptr_ring releases pages to the
  // page allocator.
  pool_internal::Depot& d = *depot_;
  SpinLockHolder dl(d.mu);
  const uint32_t room = static_cast<uint32_t>(d.ring.size()) - d.ring_count;
  const uint32_t to_ring = std::min(kBatch, room);
  std::memcpy(&d.ring[d.ring_count], &cache.slots[0],
              to_ring * sizeof(uint32_t));
  d.ring_count += to_ring;
  for (uint32_t j = to_ring; j < kBatch; ++j) {
    d.PushFreeLocked(*meta_, cache.slots[j]);
  }
  const uint32_t count = cache.Count();
  std::memmove(&cache.slots[0], &cache.slots[kBatch],
               (count - kBatch) * sizeof(uint32_t));
  cache.SetCount(count - kBatch);
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
    for (size_t i = 0; i < n; ++i) d.PushFreeLocked(*meta_, indices[i]);
    RegionCounters::AddShared<uint64_t>(shared_counters_.recycle_released, n);
    if (!d.released &&
        d.FreeLocked() == d.carved.load(std::memory_order_relaxed)) {
      d.released = true;
      fire = TakeReleaseCallbacksLocked(d);
    }
  }
  if (fire) fire();
}

Region::Drop Region::DropRef(uint32_t index) {
  auto refs = Refs(meta_base_[index]);
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
    } else if (d == Drop::kWasFree) [[unlikely]] {
      first.Update(RefError(c, "unref"));
    }
  }
  if (n > 0) Recycle(batch, n);
  return first;
}

absl::Status Region::Ref(Chunk c) {
  if (!Contains(c)) [[unlikely]]
    return RefError(c, "ref");
  auto refs = Refs(meta_base_[c.index]);
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

// ---- Lifetime ---------------------------------------------------------------

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
  // Drain every cache into the free list, leaving its `remote` raised: its
  // owner's fast path is closed for good, and a thread that takes a cache's
  // lock after this sees retired_ and goes to the free list directly, so from
  // here on the free list is exact: outstanding = carved - free.
  for (uint32_t i = 0; i <= num_caches_; ++i) {
    Cache& cache = caches_[i];
    SpinLockHolder cl(cache.lock);
    pool_internal::AcquireRemote(cache);
    SpinLockHolder l(d.mu);
    const uint32_t count = cache.Count();
    for (uint32_t j = 0; j < count; ++j)
      d.PushFreeLocked(*meta_, cache.slots[j]);
    cache.SetCount(0);
  }
  RetireReport report;
  std::function<void()> fire;
  {
    SpinLockHolder l(d.mu);
    while (d.ring_count > 0) d.PushFreeLocked(*meta_, d.ring[--d.ring_count]);
    const uint64_t carved = d.carved.load(std::memory_order_relaxed);
    report.outstanding_chunks = carved - d.FreeLocked();
    report.outstanding_bytes = report.outstanding_chunks << chunk_shift_;
    if (!d.released && report.outstanding_chunks == 0) {
      d.released = true;
      fire = TakeReleaseCallbacksLocked(d);
    }
    report.released = d.released;
  }
  report.lent_tokens = static_cast<uint64_t>(std::max<int64_t>(
      0, shared_counters_.lent.load(std::memory_order_relaxed)));
  if (fire) fire();
  return report;
}

void Region::OnReleased(std::function<void()> fn) {
  pool_internal::Depot& d = *depot_;
  {
    SpinLockHolder l(d.mu);
    if (!d.released) {
      d.release_listeners.push_back(std::move(fn));
      return;
    }
  }
  fn();
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

// ---- Stats ------------------------------------------------------------------

RegionStats Region::Stats() const {
  RegionStats s;
  // The fast paths keep no gauge of their own (a counter fewer each way):
  // inflight = served from caches + served by AllocSlow (`allocated`) -
  // returned to caches - returned to the free list after Retire().
  int64_t allocated = 0;
  int64_t lent = 0;
  for (uint32_t i = 0; i <= num_caches_; ++i) {
    caches_[i].counters.AccumulateInto(s);
    allocated += caches_[i].counters.allocated.load(std::memory_order_relaxed);
  }
  shared_counters_.AccumulateInto(s);
  allocated += shared_counters_.allocated.load(std::memory_order_relaxed);
  allocated += static_cast<int64_t>(s.alloc_fast - s.recycle_cached -
                                    s.recycle_released);
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

uint64_t Region::FreeChunks() const {
  uint64_t free = 0;
  for (uint32_t i = 0; i <= num_caches_; ++i) free += caches_[i].Count();
  SpinLockHolder l(depot_->mu);
  return free + depot_->FreeLocked() +
         (num_chunks_ - depot_->carved.load(std::memory_order_relaxed));
}

size_t Region::MetadataBytesReserved() const { return meta_->bytes(); }

size_t Region::MetadataBytesTouched() const {
  const uint64_t used = depot_->carved.load(std::memory_order_relaxed);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t bytes = used * sizeof(pool_internal::ChunkMeta);
  return (bytes + page - 1) / page * page;
}

}  // namespace devmem
