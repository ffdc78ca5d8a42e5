// Multi-threaded stress: allocating threads, freeing threads, token releases
// and a retire in the middle. Labelled tsan; run under ThreadSanitizer by
// ./dev test. Synchronisation is by conditions, never by sleeping.
#include <atomic>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "gtest/gtest.h"
#include "pool/region.h"
#include "tests/testing/seed.h"

namespace devmem {
namespace {

#ifdef DEVMEM_TSAN
constexpr uint64_t kOpsBeforeRetire = 20000;
#else
constexpr uint64_t kOpsBeforeRetire = 200000;
#endif

struct Item {
  Chunk chunk;
  BorrowerId borrower;  // 0: plain allocation reference; else a token
};

class Queue {
 public:
  void Push(std::vector<Item> items) {
    MutexLock l(mu_);
    for (Item& i : items) q_.push_back(i);
    cv_.SignalAll();
  }
  // Up to `max` (>= 1) items, waiting for the first; empty only once the
  // queue is closed and drained.
  std::vector<Item> Pop(size_t max) {
    MutexLock l(mu_);
    cv_.Await(mu_, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return !q_.empty() || closed_;
    });
    std::vector<Item> out;
    while (!q_.empty() && out.size() < max) {
      out.push_back(q_.front());
      q_.pop_front();
    }
    return out;
  }
  void Close() {
    MutexLock l(mu_);
    closed_ = true;
    cv_.SignalAll();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<Item> q_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

TEST(RegionStress, AllocFreeTokensAndRetireAcrossThreads) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  auto created = Region::Create({.size_bytes = 2048 * 4096, .ring_size = 256});
  ASSERT_TRUE(created.ok());
  std::shared_ptr<Region> region = *created;

  Queue queue;
  std::atomic<uint64_t> produced{0};
  std::atomic<int> fired{0};
  Mutex halfway_mu;
  CondVar halfway_cv;
  bool halfway = false;

  auto producer = [&](int k) {
    std::mt19937_64 rng(seed + k);
    const BorrowerId borrower = static_cast<BorrowerId>(k + 1);
    std::vector<Chunk> bulk(64);
    for (;;) {
      std::vector<Item> items;
      if (rng() % 2) {
        absl::StatusOr<Chunk> c = region->Alloc();
        if (!c.ok()) {
          if (c.status().code() == absl::StatusCode::kFailedPrecondition) break;
          continue;  // dry: consumers will give some back
        }
        items.push_back({*c, 0});
      } else {
        const size_t n =
            region->AllocBulk(absl::MakeSpan(bulk).subspan(0, 1 + rng() % 64));
        if (n == 0 && region->retired()) break;
        for (size_t i = 0; i < n; ++i) items.push_back({bulk[i], 0});
      }
      for (Item& it : items) {
        if (rng() % 3 == 0) {
          // Lend it, then drop the allocation ref: the token holds it.
          ASSERT_TRUE(region->Lend(it.chunk, borrower).ok());
          ASSERT_TRUE(region->Unref(it.chunk).ok());
          it.borrower = borrower;
        }
      }
      const uint64_t before =
          produced.fetch_add(items.size(), std::memory_order_relaxed);
      if (before < kOpsBeforeRetire &&
          before + items.size() >= kOpsBeforeRetire) {
        MutexLock l(halfway_mu);
        halfway = true;
        halfway_cv.SignalAll();
      }
      queue.Push(std::move(items));
    }
  };

  auto consumer = [&](int k) {
    std::mt19937_64 rng(seed * 31 + k);
    for (;;) {
      const std::vector<Item> items = queue.Pop(1 + rng() % 100);
      if (items.empty()) break;  // closed and drained
      std::vector<Chunk> plain;
      for (const Item& it : items) {
        if (it.borrower == 0) {
          plain.push_back(it.chunk);
        } else {
          TokenRelease rel =
              region->ReleaseTokens(it.borrower, {{it.chunk.index, 1}});
          ASSERT_TRUE(rel.status.ok()) << rel.status;
          ASSERT_EQ(rel.freed, 1u);
          // A foreign release of the same token must be refused.
          TokenRelease bad = region->ReleaseTokens(99, {{it.chunk.index, 1}});
          ASSERT_EQ(bad.freed, 0u);
        }
      }
      ASSERT_TRUE(region->UnrefBulk(plain).ok());
    }
  };

  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k) threads.emplace_back(producer, k);
  for (int k = 0; k < 2; ++k) threads.emplace_back(consumer, k);

  // Retire once enough work has happened (a condition, not a sleep).
  {
    MutexLock l(halfway_mu);
    halfway_cv.Await(halfway_mu, [&] { return halfway; });
  }
  absl::StatusOr<RetireReport> rep = region->Retire([&] { fired++; });
  ASSERT_TRUE(rep.ok());
  for (int k = 0; k < 2; ++k) threads[k].join();  // producers stop
  queue.Close();
  for (int k = 2; k < 4; ++k) threads[k].join();

  EXPECT_EQ(fired.load(), 1);
  EXPECT_TRUE(region->released());
  const RegionStats s = region->Stats();
  EXPECT_EQ(s.inflight_chunks, 0u);
  EXPECT_EQ(s.lent_tokens, 0u);
  EXPECT_EQ(region->Outstanding().outstanding_chunks, 0u);
  EXPECT_GE(s.token_errors, 1u);  // the foreign releases
  EXPECT_EQ(s.ref_errors, 0u);
}

}  // namespace
}  // namespace devmem
