// The lock-free owner path against everything that reaches a cache from
// outside: stealing (a small region, so caches run dry and threads take
// half of each other's), Stats() readers, threads that exit and hand their
// slot (and cache) to new threads, and Retire() draining every cache while
// owners keep freeing. Labelled tsan.
//
// Under TSan (DEVMEM_TSAN) the pool uses seq_cst atomics for the owner/remote
// handshake instead of membarrier, which TSan cannot see: this test checks
// the algorithm (every slot access ordered by the handshake or a lock), and
// the rel/asan trees run the same test with the membarrier fence.
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "pool/region.h"
#include "tests/testing/seed.h"

namespace devmem {
namespace {

#ifdef DEVMEM_TSAN
constexpr int kRounds = 3000;
#else
constexpr int kRounds = 30000;
#endif
constexpr int kOwners = 4;
constexpr uint64_t kChunks = 192;  // < owners * kCacheSize: forces steals

// One owner: allocates a random handful (single and bulk), frees them
// (single and bulk), keeps a few across rounds. Returns what it still holds.
std::vector<Chunk> OwnerLoop(Region& region, uint64_t seed, int rounds,
                             std::atomic<bool>* stop) {
  std::mt19937_64 rng(seed);
  std::vector<Chunk> held;
  for (int i = 0; i < rounds && !(stop && stop->load()); ++i) {
    const int n = static_cast<int>(rng() % 40);
    if (rng() % 2) {
      std::vector<Chunk> got(n);
      got.resize(region.AllocBulk(absl::MakeSpan(got)));
      held.insert(held.end(), got.begin(), got.end());
    } else {
      for (int k = 0; k < n; ++k) {
        absl::StatusOr<Chunk> c = region.Alloc();
        if (c.ok()) held.push_back(*c);
      }
    }
    const size_t keep = rng() % 8;
    if (held.size() > keep) {
      if (rng() % 2) {
        EXPECT_TRUE(region.UnrefBulk(absl::MakeSpan(held).subspan(keep)).ok());
      } else {
        for (size_t k = keep; k < held.size(); ++k) {
          EXPECT_TRUE(region.Free(held[k]).ok());
        }
      }
      held.resize(keep);
    }
  }
  return held;
}

TEST(RegionFastPath, StealsStatsAndThreadChurnAgainstOwners) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  auto region = Region::Create({.size_bytes = kChunks * 4096}).value();
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      const RegionStats s = region->Stats();
      EXPECT_LE(s.inflight_chunks, kChunks);
    }
  });
  // Two generations of owners: the second reuses the first's slots and so
  // inherits their caches, chunks included.
  for (int gen = 0; gen < 2; ++gen) {
    std::vector<std::thread> owners;
    for (int t = 0; t < kOwners; ++t) {
      owners.emplace_back([&, t] {
        std::vector<Chunk> left =
            OwnerLoop(*region, seed + gen * kOwners + t, kRounds, nullptr);
        EXPECT_TRUE(region->UnrefBulk(left).ok());
      });
    }
    for (std::thread& t : owners) t.join();
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(region->Stats().inflight_chunks, 0u);
  EXPECT_EQ(region->FreeChunks(), kChunks);
  EXPECT_GT(region->Stats().alloc_refill, 0u);
}

TEST(RegionFastPath, RetireDrainsCachesWhileOwnersRun) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  auto region = Region::Create({.size_bytes = kChunks * 4096}).value();
  std::atomic<int> fired{0};
  std::atomic<int> started{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> owners;
  for (int t = 0; t < kOwners; ++t) {
    owners.emplace_back([&, t] {
      started.fetch_add(1);
      // Runs until told to stop, then gives back what it holds: after the
      // retire every free goes to the free list, every alloc fails.
      std::vector<Chunk> left = OwnerLoop(*region, seed + t, 1 << 30, &stop);
      EXPECT_TRUE(region->UnrefBulk(left).ok());
    });
  }
  while (started.load() < kOwners) std::this_thread::yield();
  // Let the owners run a while (by work done, not by time).
  while (region->Stats().alloc_fast < 20000) std::this_thread::yield();
  absl::StatusOr<RetireReport> rep =
      region->Retire([&] { fired.fetch_add(1); });
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(region->Alloc().status().code(),
            absl::StatusCode::kFailedPrecondition);
  stop.store(true);
  for (std::thread& t : owners) t.join();
  EXPECT_EQ(fired.load(), 1);
  EXPECT_TRUE(region->released());
  EXPECT_EQ(region->Outstanding().outstanding_chunks, 0u);
  EXPECT_EQ(region->FreeChunks(), kChunks);
}

}  // namespace
}  // namespace devmem
