// Region: lending chunks as tokens and taking them back (SO_DEVMEM_DONTNEED).
#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "pool/internal/meta.h"
#include "pool/region.h"

namespace devmem {

using pool_internal::Lent;
using pool_internal::LentBorrower;
using pool_internal::LentCount;
using pool_internal::PackLent;

namespace {

uint32_t SaturatingAdd(uint32_t a, uint64_t b) {
  return static_cast<uint32_t>(std::min<uint64_t>(uint64_t{a} + b, UINT32_MAX));
}

}  // namespace

absl::StatusOr<Token> Region::Lend(Chunk c, BorrowerId borrower) {
  if (borrower == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": lend to borrower 0 (nobody)"));
  }
  if (absl::Status s = Ref(c); !s.ok()) return s;
  auto lent = Lent(meta_base_[c.index]);
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

void Region::ReleaseRange(BorrowerId borrower, uint64_t start, uint64_t end,
                          TokenRelease& result, uint32_t* batch, size_t& n) {
  for (uint64_t t = start; t < end; ++t) {
    absl::Status bad;
    auto lent = Lent(meta_base_[t]);
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
  // Clamp each range to the chunks that exist, so the work below is bounded
  // by the region, never by the count asked; the cap is on what is walked.
  uint64_t inside = 0;
  for (const TokenRange& r : ranges) {
    if (r.start < num_chunks_) {
      inside += std::min<uint64_t>(r.count, num_chunks_ - r.start);
    }
  }
  if (inside > kMaxTokensPerRelease) {
    result.status = absl::InvalidArgumentError(
        absl::StrCat(name_, ": ", inside, " tokens in one release; at most ",
                     kMaxTokensPerRelease, " (E2BIG, as SO_DEVMEM_DONTNEED)"));
    return result;
  }
  uint32_t batch[kBatch];
  size_t n = 0;
  for (const TokenRange& r : ranges) {
    const uint64_t start = r.start;
    const uint64_t end = start + r.count;  // may pass 2^32: no wrap in 64 bits
    const uint64_t valid_end = std::min<uint64_t>(end, num_chunks_);
    if (start < valid_end) {
      ReleaseRange(borrower, start, valid_end, result, batch, n);
    }
    const uint64_t first_unknown = std::max(start, valid_end);
    if (first_unknown < end) {
      // Unknown tokens: rejected as a block, in O(1).
      if (result.rejected == 0) {
        result.status = absl::NotFoundError(
            end - first_unknown == 1
                ? absl::StrCat(name_, ": token ", first_unknown,
                               " is unknown (beyond ", num_chunks_, " chunks)")
                : absl::StrCat(name_, ": tokens ", first_unknown, "..", end - 1,
                               " are unknown (beyond ", num_chunks_,
                               " chunks)"));
      }
      result.rejected = SaturatingAdd(result.rejected, end - first_unknown);
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
    auto lent = Lent(meta_base_[i]);
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
    const uint64_t v = Lent(meta_base_[i]).load(std::memory_order_relaxed);
    if (LentCount(v) != 0 && LentBorrower(v) == borrower) held += LentCount(v);
  }
  return held;
}

}  // namespace devmem
