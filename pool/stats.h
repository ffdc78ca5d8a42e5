// RegionStats: counters shaped like the kernel's page pool stats
// (include/net/page_pool/types.h, CONFIG_PAGE_POOL_STATS), plus the gauges and
// error counters a daemon reports.
//
// RegionCounters is the internal, per-cache form: relaxed atomics written by
// one owner at a time (under that cache's lock) and read by anyone without a
// lock, so Region::Stats() never blocks an allocator.
#ifndef DEVMEM_POOL_STATS_H_
#define DEVMEM_POOL_STATS_H_

#include <atomic>
#include <cstdint>

namespace devmem {

struct RegionStats {
  // Allocation (the kernel's page_pool_alloc_stats).
  uint64_t alloc_fast = 0;    // served from a thread cache
  uint64_t alloc_slow = 0;    // taken from the provider free list / carved
  uint64_t alloc_empty = 0;   // ring was empty: slow path forced
  uint64_t alloc_refill = 0;  // chunks moved ring -> cache
  uint64_t alloc_failed = 0;  // nothing left (the kernel's rx-alloc-fail)
  // Recycling (page_pool_recycle_stats).
  uint64_t recycle_cached = 0;      // freed into a thread cache
  uint64_t recycle_cache_full = 0;  // cache full: a batch flushed to the ring
  uint64_t recycle_ring = 0;        // chunks moved cache -> ring
  uint64_t recycle_ring_full = 0;   // ring full: spilled to the free list
  uint64_t recycle_released = 0;    // returned after Retire()
  // Errors.
  uint64_t token_errors = 0;  // unknown, foreign or not-lent tokens
  uint64_t ref_errors = 0;    // Ref/Unref of a free or foreign chunk
  // Gauges.
  uint64_t inflight_chunks = 0;  // chunks with a reference held
  uint64_t inflight_bytes = 0;
  uint64_t lent_tokens = 0;  // tokens outstanding
  uint64_t capacity_chunks = 0;
  uint64_t chunk_size = 0;
  bool retired = false;
  bool released = false;
};

// Per-owner counters; see the file comment.
struct RegionCounters {
  std::atomic<uint64_t> alloc_fast{0};
  std::atomic<uint64_t> alloc_slow{0};
  std::atomic<uint64_t> alloc_empty{0};
  std::atomic<uint64_t> alloc_refill{0};
  std::atomic<uint64_t> alloc_failed{0};
  std::atomic<uint64_t> recycle_cached{0};
  std::atomic<uint64_t> recycle_cache_full{0};
  std::atomic<uint64_t> recycle_ring{0};
  std::atomic<uint64_t> recycle_ring_full{0};
  std::atomic<uint64_t> recycle_released{0};
  std::atomic<uint64_t> token_errors{0};
  std::atomic<uint64_t> ref_errors{0};
  // Allocations served by Region::AllocSlow (the other paths count
  // alloc_fast); Region::Stats() derives the inflight gauge from it, so the
  // fast paths update one counter each way, not two.
  std::atomic<int64_t> allocated{0};
  std::atomic<int64_t> lent{0};

  // Single-writer increment: no read-modify-write instruction needed.
  template <typename T>
  static void Add(std::atomic<T>& c, T n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Multi-writer increment for counters shared between threads.
  template <typename T>
  static void AddShared(std::atomic<T>& c, T n) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  void AccumulateInto(RegionStats& s) const;
};

}  // namespace devmem

#endif  // DEVMEM_POOL_STATS_H_
