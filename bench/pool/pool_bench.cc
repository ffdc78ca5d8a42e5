// devmem_pool_bench: the chunk pool against in-run baselines and peers: a
// std::mutex around a std::vector<uint32_t> free list doing the same work,
// and (where dpdk-dev is installed) DPDK's rte_mempool with a per-lcore
// cache (dpdk_mempool_bench.cc).
//
//   ./dev bench            (or build/release/bin/devmem_pool_bench)
// Quote medians with --benchmark_repetitions=10
// --benchmark_report_aggregates_only=true; see docs/BENCHMARKS.md.
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "pool/internal/spin_lock.h"
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

// A single-producer single-consumer ring of batches of chunk handles.
struct Batch {
  Chunk chunks[64];
};
class Spsc {
 public:
  bool Push(const Batch& b) {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == kSize) return false;
    ring_[t % kSize] = b;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  // The oldest batch, or nullopt when the ring is empty.
  std::optional<Batch> Pop() {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return std::nullopt;
    std::optional<Batch> b = ring_[h % kSize];
    head_.store(h + 1, std::memory_order_release);
    return b;
  }

 private:
  static constexpr uint64_t kSize = 32;  // 2048 chunks in flight at most
  Batch ring_[kSize];
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

// Alloc on this thread (one Alloc() per chunk), free on another, the frees
// batched 64 at a time (UnrefBulk), as an RX path returns a burst of
// buffers: the freed chunks reach the allocator through the freeing
// thread's cache and the ring. Real time per chunk, the handoff included.
void BM_PoolCrossThreadFree(benchmark::State& state) {
  auto region = MakeRegion(1 << 16);
  Spsc queue;
  std::atomic<bool> stop{false};
  std::thread freer([&] {
    for (;;) {
      if (std::optional<Batch> b = queue.Pop()) {
        (void)region->UnrefBulk(b->chunks);
      } else if (stop.load(std::memory_order_acquire)) {
        while (std::optional<Batch> rest = queue.Pop()) {
          (void)region->UnrefBulk(rest->chunks);
        }
        return;
      } else {
        pool_internal::CpuRelax();
      }
    }
  });
  Batch b;
  size_t n = 0;
  for (auto _ : state) {
    absl::StatusOr<Chunk> c = region->Alloc();
    while (!c.ok()) c = region->Alloc();  // cannot happen: 2048 in flight
    b.chunks[n++] = *c;
    if (n == 64) {
      while (!queue.Push(b)) pool_internal::CpuRelax();
      n = 0;
    }
  }
  stop.store(true, std::memory_order_release);
  freer.join();
  (void)region->UnrefBulk(absl::MakeSpan(b.chunks, n));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolCrossThreadFree)->UseRealTime();

// Alloc + Free per thread with 1, 2, 4, 8 threads on one region (this
// machine has 2 vCPUs: 4 and 8 oversubscribe it). CPU time per pair and
// thread; each thread runs on its own cache.
std::shared_ptr<Region> g_threads_region;
void BM_PoolAllocFreeThreads(benchmark::State& state) {
  if (state.thread_index() == 0) g_threads_region = MakeRegion(1 << 16);
  // Google Benchmark starts the timed loop of all threads together, after
  // thread 0's setup above.
  for (auto _ : state) {
    absl::StatusOr<Chunk> c = g_threads_region->Alloc();
    benchmark::DoNotOptimize(c);
    if (c.ok()) (void)g_threads_region->Free(*c);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolAllocFreeThreads)
    ->Threads(1)
    ->Threads(2)
    ->Threads(4)
    ->Threads(8);

// Token release cost vs ranges per call: N single-token ranges per
// ReleaseTokens (manual time: the release only). Reports ns per call.
void BM_TokenReleaseRanges(benchmark::State& state) {
  const size_t ranges_per_call = static_cast<size_t>(state.range(0));
  auto region = MakeRegion(1 << 12);
  std::vector<Chunk> chunks(ranges_per_call);
  std::vector<TokenRange> ranges(ranges_per_call);
  for (auto _ : state) {
    (void)region->AllocBulk(absl::MakeSpan(chunks));
    for (size_t i = 0; i < chunks.size(); ++i) {
      (void)region->Lend(chunks[i], 1);
      ranges[i] = {chunks[i].index, 1};
    }
    (void)region->UnrefBulk(chunks);
    const auto start = std::chrono::steady_clock::now();
    TokenRelease rel = region->ReleaseTokens(1, ranges);
    const auto end = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(rel);
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  state.SetItemsProcessed(state.iterations() * ranges_per_call);
}
BENCHMARK(BM_TokenReleaseRanges)->Arg(1)->Arg(16)->Arg(128)->UseManualTime();

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
