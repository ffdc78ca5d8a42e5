// devmem_pool_bench: the chunk pool against an in-run baseline (a std::mutex
// around a std::vector<uint32_t> free list doing the same work).
//
//   ./dev bench            (or build/release/bin/devmem_pool_bench)
// Quote medians with --benchmark_repetitions=10
// --benchmark_report_aggregates_only=true; see docs/BENCHMARKS.md.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "pool/region.h"

namespace devmem {
namespace {

std::shared_ptr<Region> MakeRegion(uint64_t chunks) {
  auto r = Region::Create({.size_bytes = chunks * 4096, .chunk_size = 4096});
  if (!r.ok()) std::abort();
  return *r;
}

// One Alloc + Free pair on one thread: the per-thread cache fast path.
void BM_PoolAllocFree(benchmark::State& state) {
  auto region = MakeRegion(1 << 16);
  for (auto _ : state) {
    absl::StatusOr<Chunk> c = region->Alloc();
    benchmark::DoNotOptimize(c);
    (void)region->Free(*c);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolAllocFree);

// Bulk allocation and bulk free of N chunks; time per chunk.
void BM_PoolAllocFreeBulk(benchmark::State& state) {
  auto region = MakeRegion(1 << 16);
  std::vector<Chunk> chunks(state.range(0));
  for (auto _ : state) {
    size_t n = region->AllocBulk(absl::MakeSpan(chunks));
    benchmark::DoNotOptimize(n);
    (void)region->UnrefBulk(chunks);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["ns_per_chunk"] = benchmark::Counter(
      static_cast<double>(state.iterations() * state.range(0)),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PoolAllocFreeBulk)->Arg(64);

// A single-producer single-consumer ring of chunk handles.
class Spsc {
 public:
  bool Push(Chunk c) {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == kSize) return false;
    ring_[t % kSize] = c;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  bool Pop(Chunk& c) {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return false;
    c = ring_[h % kSize];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

 private:
  static constexpr uint64_t kSize = 4096;
  Chunk ring_[kSize];
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

// Alloc on this thread, free on another: cross-thread returns go through the
// freeing thread's cache and reach the allocator in batches via the ring.
void BM_PoolCrossThreadFree(benchmark::State& state) {
  auto region = MakeRegion(1 << 16);
  Spsc queue;
  std::atomic<bool> stop{false};
  std::thread freer([&] {
    Chunk c;
    for (;;) {
      if (queue.Pop(c)) {
        (void)region->Free(c);
      } else if (stop.load(std::memory_order_acquire)) {
        while (queue.Pop(c)) (void)region->Free(c);
        return;
      }
    }
  });
  for (auto _ : state) {
    absl::StatusOr<Chunk> c = region->Alloc();
    while (!c.ok()) c = region->Alloc();  // freer is behind: wait for it
    while (!queue.Push(*c)) {
    }
  }
  stop.store(true, std::memory_order_release);
  freer.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolCrossThreadFree)->UseRealTime();

// Release 128 single-token ranges (one SO_DEVMEM_DONTNEED-sized call).
void BM_TokenRelease128(benchmark::State& state) {
  auto region = MakeRegion(1 << 12);
  std::vector<Chunk> chunks(128);
  std::vector<TokenRange> ranges(128);
  for (auto _ : state) {
    (void)region->AllocBulk(absl::MakeSpan(chunks));
    for (size_t i = 0; i < chunks.size(); ++i) {
      (void)region->Lend(chunks[i], 1);
      ranges[i] = {chunks[i].index, 1};
    }
    (void)region->UnrefBulk(chunks);  // tokens now hold the only reference
    const auto start = std::chrono::steady_clock::now();
    TokenRelease rel = region->ReleaseTokens(1, ranges);
    const auto end = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(rel);
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  state.SetItemsProcessed(state.iterations() * 128);
}
BENCHMARK(BM_TokenRelease128)->UseManualTime();

// Baseline: a std::mutex around a std::vector<uint32_t> free list, with the
// same refcount store/clear per chunk.
void BM_MutexFreelistAllocFree(benchmark::State& state) {
  std::mutex mu;
  std::vector<uint32_t> free_list(1 << 16);
  std::vector<uint32_t> refs(1 << 16, 0);
  for (uint32_t i = 0; i < free_list.size(); ++i) free_list[i] = i;
  for (auto _ : state) {
    uint32_t c;
    {
      std::lock_guard<std::mutex> l(mu);
      c = free_list.back();
      free_list.pop_back();
    }
    refs[c] = 1;
    benchmark::DoNotOptimize(c);
    refs[c] = 0;
    {
      std::lock_guard<std::mutex> l(mu);
      free_list.push_back(c);
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexFreelistAllocFree);

// Metadata cost of a 64 GiB region of 4 KiB chunks (16 Mi chunks).
void BM_RegionMetadata(benchmark::State& state) {
  const uint64_t size = uint64_t{64} << 30;
  size_t reserved = 0, touched = 0;
  uint64_t chunks = 0;
  for (auto _ : state) {
    auto r = Region::Create({.size_bytes = size, .chunk_size = 4096});
    if (!r.ok()) std::abort();
    reserved = (*r)->MetadataBytesReserved();
    touched = (*r)->MetadataBytesTouched();
    chunks = (*r)->num_chunks();
  }
  state.counters["bytes_per_chunk"] =
      static_cast<double>(reserved) / static_cast<double>(chunks);
  state.counters["touched_bytes_idle"] = static_cast<double>(touched);
  state.counters["chunks"] = static_cast<double>(chunks);
}
BENCHMARK(BM_RegionMetadata)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace devmem

// glibc skips the atomic instructions of pthread mutexes while a process has
// a single thread, which no daemon ever is: park one thread for the whole run
// so the mutex baseline pays what it pays in devmemd.
int main(int argc, char** argv) {
  std::mutex park_mu;
  park_mu.lock();
  std::thread parked([&] { std::lock_guard<std::mutex> l(park_mu); });
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  park_mu.unlock();
  parked.join();
  return 0;
}
