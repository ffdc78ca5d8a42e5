#include "pool/internal/thread_slot.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <vector>

namespace devmem::pool_internal {
namespace {

std::mutex g_slot_mu;
// Min-heap of slots given back by exited threads.
std::vector<uint32_t> g_free_slots;
uint32_t g_next_slot = 0;

void ReleaseSlot(uint32_t slot) {
  std::lock_guard<std::mutex> l(g_slot_mu);
  g_free_slots.push_back(slot);
  std::push_heap(g_free_slots.begin(), g_free_slots.end(),
                 std::greater<uint32_t>());
}

// Gives the slot back when the thread exits.
struct SlotOwner {
  uint32_t slot = kNoSlot;
  ~SlotOwner() {
    if (slot != kNoSlot) ReleaseSlot(slot);
    tls_thread_slot = kExitedSlot;
  }
};
thread_local SlotOwner t_slot_owner;

long Membarrier(int cmd) { return ::syscall(__NR_membarrier, cmd, 0u, -1); }

}  // namespace

uint32_t AssignThreadSlot() {
  uint32_t slot;
  {
    std::lock_guard<std::mutex> l(g_slot_mu);
    if (!g_free_slots.empty()) {
      std::pop_heap(g_free_slots.begin(), g_free_slots.end(),
                    std::greater<uint32_t>());
      slot = g_free_slots.back();
      g_free_slots.pop_back();
    } else {
      slot = g_next_slot++;
    }
  }
  t_slot_owner.slot = slot;
  tls_thread_slot = slot;
  return slot;
}

bool InitAsymmetricFence() {
  static const bool asymmetric = [] {
#if defined(DEVMEM_TSAN)
    // TSan does not know that membarrier orders the owner's plain accesses:
    // the TSan build uses the seq_cst fallback, so the test checks the
    // algorithm (the handshake and the handover), not the fence.
    return false;
#else
    const long cmds = Membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    if (Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
      return false;
    }
    internal_fence::g_asymmetric.store(true, std::memory_order_relaxed);
    return true;
#endif
  }();
  return asymmetric;
}

void HeavyFence() {
  if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    std::fputs("devmem pool: membarrier failed after registration\n", stderr);
    std::abort();
  }
}

}  // namespace devmem::pool_internal
