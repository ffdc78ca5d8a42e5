#include "pool/tx_arena.h"

#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"

namespace devmem {

absl::StatusOr<TxArena> TxArena::Create(uint64_t size_bytes,
                                        uint32_t chunk_size) {
  if (!std::has_single_bit(chunk_size) || chunk_size < 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("tx arena: chunk size ", chunk_size,
                     " must be a power of two >= 4096"));
  }
  const uint64_t n = size_bytes / chunk_size;
  if (n == 0 || n > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("tx arena: ", size_bytes, " bytes gives ", n,
                     " chunks of ", chunk_size, "; need 1 to ", UINT32_MAX));
  }
  return TxArena(n, chunk_size);
}

TxArena::TxArena(uint64_t num_chunks, uint32_t chunk_size)
    : num_chunks_(num_chunks), chunk_size_(chunk_size) {}

TxArena::TxArena(TxArena&& o) noexcept { *this = std::move(o); }

TxArena& TxArena::operator=(TxArena&& o) noexcept {
  if (this == &o) return *this;
  pool_internal::SpinLockHolder a(mu_);
  pool_internal::SpinLockHolder b(o.mu_);
  num_chunks_ = o.num_chunks_;
  chunk_size_ = o.chunk_size_;
  sends_ = std::move(o.sends_);
  head_ = o.head_;
  used_ = o.used_;
  next_id_ = o.next_id_;
  retired_ = o.retired_;
  stats_ = o.stats_;
  return *this;
}

TxArena::~TxArena() = default;

absl::StatusOr<TxRange> TxArena::Allocate(uint64_t bytes) {
  pool_internal::SpinLockHolder l(mu_);
  if (retired_) {
    return absl::FailedPreconditionError("tx arena: retired, no new sends");
  }
  if (bytes == 0 || bytes > num_chunks_ * chunk_size_) {
    return absl::InvalidArgumentError(absl::StrCat("tx arena: send of ", bytes,
                                                   " bytes; must be 1 to ",
                                                   num_chunks_ * chunk_size_));
  }
  const uint64_t n = (bytes + chunk_size_ - 1) / chunk_size_;
  if (sends_.empty()) head_ = 0;  // Everything is free: start at the bottom.
  // Free space runs from head_ to the oldest send's footprint start, around
  // the ring. A run never wraps: if it does not fit before the end, the tail
  // end is skipped (charged to this send) and the run starts at 0.
  const uint64_t tail = sends_.empty() ? head_ : sends_.front().start;
  const bool empty_ring = used_ == 0;
  uint64_t place = 0;
  uint64_t skipped = 0;
  bool fits = false;
  if (empty_ring || head_ > tail || (head_ == tail && used_ == 0)) {
    if (n <= num_chunks_ - head_) {
      place = head_;
      fits = true;
    } else if (n <= tail) {
      skipped = num_chunks_ - head_;
      place = 0;
      fits = true;
    }
  } else if (head_ < tail && n <= tail - head_) {
    place = head_;
    fits = true;
  }
  if (!fits) {
    ++stats_.busy;
    return absl::UnavailableError(absl::StrCat(
        "tx arena: no contiguous ", n, " chunks free (", used_, " of ",
        num_chunks_, " in flight); retry after completions"));
  }
  Send s{.id = next_id_++,
         .first_chunk = static_cast<uint32_t>(place),
         .num_chunks = static_cast<uint32_t>(n),
         .skipped = static_cast<uint32_t>(skipped),
         .start = head_,
         .length = bytes,
         .done = false};
  sends_.push_back(s);
  used_ += n + skipped;
  head_ = (place + n) % num_chunks_;
  ++stats_.sends;
  return TxRange{.id = s.id,
                 .offset = place * chunk_size_,
                 .length = bytes,
                 .first_chunk = s.first_chunk,
                 .num_chunks = s.num_chunks};
}

absl::StatusOr<uint32_t> TxArena::Complete(uint32_t lo, uint32_t hi) {
  pool_internal::SpinLockHolder l(mu_);
  const uint64_t count = uint64_t{static_cast<uint32_t>(hi - lo)} + 1;
  if (sends_.empty() || count > sends_.size()) {
    ++stats_.bad_completions;
    return absl::NotFoundError(absl::StrCat("tx arena: completion ", lo, "..",
                                            hi, " names sends not in flight (",
                                            sends_.size(), " in flight)"));
  }
  const uint32_t first = sends_.front().id;
  // Check everything before changing anything.
  for (uint64_t k = 0; k < count; ++k) {
    const uint32_t id = lo + static_cast<uint32_t>(k);
    const uint32_t pos = id - first;
    if (pos >= sends_.size() || sends_[pos].done) {
      ++stats_.bad_completions;
      return absl::NotFoundError(absl::StrCat(
          "tx arena: completion of send ", id, ", which is not in flight",
          pos < sends_.size() ? " (already completed)" : ""));
    }
  }
  for (uint64_t k = 0; k < count; ++k) {
    sends_[static_cast<uint32_t>(lo + k) - first].done = true;
  }
  while (!sends_.empty() && sends_.front().done) {
    used_ -= uint64_t{sends_.front().num_chunks} + sends_.front().skipped;
    sends_.pop_front();
  }
  stats_.completed += count;
  return static_cast<uint32_t>(count);
}

uint64_t TxArena::Retire() {
  pool_internal::SpinLockHolder l(mu_);
  retired_ = true;
  uint64_t in_flight = 0;
  for (const Send& s : sends_) in_flight += s.done ? 0 : 1;
  return in_flight;
}

TxArenaStats TxArena::Stats() const {
  pool_internal::SpinLockHolder l(mu_);
  TxArenaStats s = stats_;
  s.in_flight = 0;
  s.in_flight_bytes = 0;
  for (const Send& send : sends_) {
    if (send.done) continue;
    ++s.in_flight;
    s.in_flight_bytes += uint64_t{send.num_chunks} * chunk_size_;
  }
  return s;
}

}  // namespace devmem
