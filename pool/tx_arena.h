// TxArena: contiguous send ranges inside a TX-bound buffer, released by
// MSG_ZEROCOPY-style completion notifications.
//
// A sender asks for `bytes`; the arena hands out a run of contiguous chunks
// (a TxRange) and the send's notification id (0, 1, 2, ... wrapping at 2^32,
// exactly as the kernel numbers zerocopy sends on a socket). When the
// completion [lo, hi] arrives (SO_EE_ORIGIN_ZEROCOPY: ee_info..ee_data), the
// runs of those sends are released. Completions may arrive out of order; the
// space of a send is reused only after it completed, and space is handed out
// ring-wise, so a long-outstanding send blocks reuse of the space after it
// (as a ring buffer does) but never corrupts it.
//
// Errors: InvalidArgument for 0 bytes or more than the arena; Unavailable when
// the space is in flight (retry after completions); FailedPrecondition after
// Retire(); Complete() of an id that is not in flight is NotFound and changes
// nothing.
//
// Thread safety: thread-safe (one short spin-locked section per call; the
// arena is per binding).
#ifndef DEVMEM_POOL_TX_ARENA_H_
#define DEVMEM_POOL_TX_ARENA_H_

#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pool/internal/spin_lock.h"

namespace devmem {

struct TxRange {
  uint32_t id = 0;      // notification id of this send
  uint64_t offset = 0;  // byte offset in the buffer (chunk aligned)
  uint64_t length = 0;  // bytes asked for
  uint32_t first_chunk = 0;
  uint32_t num_chunks = 0;
};

struct TxArenaStats {
  uint64_t sends = 0;
  uint64_t completed = 0;
  uint64_t in_flight = 0;        // sends not yet completed
  uint64_t in_flight_bytes = 0;  // chunk bytes held by them
  uint64_t busy = 0;             // Allocate() answered Unavailable
  uint64_t bad_completions = 0;
};

class TxArena {
 public:
  // size_bytes is cut into chunk_size chunks (power of two, >= 4096).
  static absl::StatusOr<TxArena> Create(uint64_t size_bytes,
                                        uint32_t chunk_size);
  TxArena(TxArena&&) noexcept;
  TxArena& operator=(TxArena&&) noexcept;
  ~TxArena();

  absl::StatusOr<TxRange> Allocate(uint64_t bytes);
  // Completes sends lo..hi inclusive (ids wrap: lo > hi means across 2^32).
  // Returns how many sends were completed.
  absl::StatusOr<uint32_t> Complete(uint32_t lo, uint32_t hi);
  // No new sends; returns how many are still in flight.
  uint64_t Retire();
  TxArenaStats Stats() const;

  uint64_t size_bytes() const { return num_chunks_ * uint64_t{chunk_size_}; }
  uint32_t chunk_size() const { return chunk_size_; }

 private:
  struct Send {
    uint32_t id;
    uint32_t first_chunk;
    uint32_t num_chunks;
    uint32_t skipped;  // ring end skipped so the run need not wrap
    uint64_t start;    // where this send's footprint (skipped + run) begins
    uint64_t length;
    bool done;
  };
  TxArena(uint64_t num_chunks, uint32_t chunk_size);

  uint64_t num_chunks_ = 0;
  uint32_t chunk_size_ = 0;
  mutable pool_internal::SpinLock mu_;
  std::deque<Send> sends_ ABSL_GUARDED_BY(mu_);  // oldest first
  uint64_t head_ ABSL_GUARDED_BY(mu_) = 0;  // next free chunk (ring position)
  uint64_t used_ ABSL_GUARDED_BY(mu_) = 0;  // chunks between tail and head
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool retired_ ABSL_GUARDED_BY(mu_) = false;
  TxArenaStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace devmem

#endif  // DEVMEM_POOL_TX_ARENA_H_
