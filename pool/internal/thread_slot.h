// Dense per-thread slot numbers and the fences of the per-thread caches.
//
// Every thread that touches a Region gets a small slot number, the lowest
// one free, kept until the thread exits and then handed to the next thread
// that asks (the handover goes through a mutex, so the new thread sees all
// that the old one wrote). A Region keeps one cache per slot; the thread
// holding the slot is the cache's owner and the only one to use it without
// a lock.
//
// Fences: the owner's fast path announces itself with a plain store and
// then reads a flag a remote thread (a stealer, Retire) may have set; the
// remote sets the flag and then reads the announcement. That is Dekker's
// pattern and needs a full fence on both sides. With
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) the owner's side is only a
// compiler barrier and the remote pays for both (an IPI to every CPU running
// one of our threads): the asymmetric fence of liburcu and folly. Without
// membarrier (old kernel, seccomp) both sides use seq_cst atomics, which is
// correct and costs the owner one locked instruction.
//
// Thread safety: all functions are thread-safe.
#ifndef DEVMEM_POOL_INTERNAL_THREAD_SLOT_H_
#define DEVMEM_POOL_INTERNAL_THREAD_SLOT_H_

#include <atomic>
#include <cstdint>

namespace devmem::pool_internal {

inline constexpr uint32_t kNoSlot = UINT32_MAX;
// A thread whose slot was already given back (its thread_local destructors
// are running): it uses the shared, locked cache.
inline constexpr uint32_t kExitedSlot = UINT32_MAX - 1;

// Constant-initialised: reading it needs no TLS guard.
inline thread_local uint32_t tls_thread_slot = kNoSlot;

// Takes the lowest free slot for this thread. Out of line.
uint32_t AssignThreadSlot();

inline uint32_t ThreadSlot() {
  uint32_t s = tls_thread_slot;
  if (s == kNoSlot) [[unlikely]]
    s = AssignThreadSlot();
  return s;
}

// Registers the process for private expedited membarrier, once. Returns
// whether the asymmetric fence is in use. Called by Region::Create, so every
// thread that can reach a cache sees the final answer.
bool InitAsymmetricFence();

namespace internal_fence {
inline std::atomic<bool> g_asymmetric{false};
}  // namespace internal_fence

inline bool AsymmetricFence() {
  return internal_fence::g_asymmetric.load(std::memory_order_relaxed);
}

// The remote side of the asymmetric fence: membarrier. Only called when
// AsymmetricFence(); aborts if the kernel refuses what it accepted before.
void HeavyFence();

}  // namespace devmem::pool_internal

#endif  // DEVMEM_POOL_INTERNAL_THREAD_SLOT_H_
