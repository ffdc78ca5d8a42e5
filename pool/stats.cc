#include "pool/stats.h"

namespace devmem {

void RegionCounters::AccumulateInto(RegionStats& s) const {
  constexpr auto r = std::memory_order_relaxed;
  s.alloc_fast += alloc_fast.load(r);
  s.alloc_slow += alloc_slow.load(r);
  s.alloc_empty += alloc_empty.load(r);
  s.alloc_refill += alloc_refill.load(r);
  s.alloc_failed += alloc_failed.load(r);
  s.recycle_cached += recycle_cached.load(r);
  s.recycle_cache_full += recycle_cache_full.load(r);
  s.recycle_ring += recycle_ring.load(r);
  s.recycle_ring_full += recycle_ring_full.load(r);
  s.recycle_released += recycle_released.load(r);
  s.token_errors += token_errors.load(r);
  s.ref_errors += ref_errors.load(r);
}

}  // namespace devmem
