// A Region's per-thread cache and the handshake that lets other threads
// reach it without a lock on its owner's path. Internal to pool/.
//
// The owner (the thread holding the cache's slot, see thread_slot.h) runs
// its fast path between EnterOwner() and ExitOwner(): plain loads and
// stores, relaxed atomics where another thread may read. Anyone else (a
// thread stealing half of the cache, Retire() draining it) first takes the
// cache's lock and then AcquireRemote(): it raises `remote`, fences, and
// waits until the owner is outside its fast path. An owner that finds
// `remote` raised leaves at once and takes the slow path, which holds the
// lock. So the slots are touched either by the owner in its fast path, or
// by whoever holds the lock (the owner included), never by two at once.
//
// Deadlock freedom: nobody waits for `busy` while inside a fast path (the
// owner's slow path, stealing included, runs with busy == 0), and a thread
// that holds one cache's lock only TryLock()s another's.
#ifndef DEVMEM_POOL_INTERNAL_CACHE_H_
#define DEVMEM_POOL_INTERNAL_CACHE_H_

#include <sched.h>

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "pool/internal/spin_lock.h"
#include "pool/internal/thread_slot.h"
#include "pool/stats.h"

namespace devmem::pool_internal {

inline constexpr uint32_t kCacheSlots = 128;  // Region::kCacheSize

struct alignas(64) Cache {
  std::atomic<uint32_t> busy{0};    // owner inside its fast path
  std::atomic<uint32_t> remote{0};  // a lock holder wants the cache
  // Chunks in `slots`; relaxed atomic because Stats-like readers and the
  // handover may read it.
  std::atomic<uint32_t> count{0};
  // Serialises everyone but the owner's fast path (see the file comment).
  SpinLock lock;
  uint32_t slots[kCacheSlots];
  RegionCounters counters;  // written by the cache's current user only

  uint32_t Count() const { return count.load(std::memory_order_relaxed); }
  void SetCount(uint32_t n) { count.store(n, std::memory_order_relaxed); }
};

// Owner: returns true if the fast path may use the cache; false if a remote
// holds it (then call ExitOwner() and take the slow path).
inline bool EnterOwner(Cache& c) {
#if !defined(DEVMEM_TSAN)
  if (AsymmetricFence()) [[likely]] {
    c.busy.store(1, std::memory_order_relaxed);
    // The remote's membarrier is the hardware fence between the store above
    // and the load below; the compiler must not reorder them either.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return c.remote.load(std::memory_order_acquire) == 0;
  }
#endif
  c.busy.store(1, std::memory_order_seq_cst);
  return c.remote.load(std::memory_order_seq_cst) == 0;
}

inline void ExitOwner(Cache& c) { c.busy.store(0, std::memory_order_release); }

// Remote: the caller holds c.lock. On return the owner is outside its fast
// path and stays out until ReleaseRemote().
inline void AcquireRemote(Cache& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.lock) {
  c.remote.store(1, std::memory_order_seq_cst);
#if !defined(DEVMEM_TSAN)
  if (AsymmetricFence()) HeavyFence();
#endif
  for (int spins = 0; c.busy.load(std::memory_order_seq_cst) != 0;) {
    if (++spins > 64) {
      sched_yield();
      spins = 0;
    } else {
      CpuRelax();
    }
  }
}

// Remote: lets the owner's fast path back in. Not called after Retire(),
// which leaves `remote` raised for good.
inline void ReleaseRemote(Cache& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.lock) {
  c.remote.store(0, std::memory_order_release);
}

}  // namespace devmem::pool_internal

#endif  // DEVMEM_POOL_INTERNAL_CACHE_H_
