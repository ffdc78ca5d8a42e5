// The DPDK peer of devmem_pool_bench: rte_mempool with a per-lcore cache,
// the structure the pool's per-thread caches are modelled on.
//
// The EAL starts once, on first use, unprivileged: no hugepages, no PCI
// scan, no shared config files under /var/run (--no-shconf; DPDK 22.11
// refuses --in-memory together with --no-huge, which implies legacy memory),
// one lcore on the calling
// thread. rte_eal_init pins that thread to the lcore's CPU; the affinity the
// process was started with (taskset) is put back so that the pool's own
// cases run under the same pinning.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <sched.h>

#include <cstdio>
#include <vector>

#include "benchmark/benchmark.h"

namespace {

constexpr unsigned kObjects = 16383;  // 2^n - 1, as rte_mempool prefers
constexpr unsigned kObjectSize = 64;  // a handle-sized object; no payload
constexpr unsigned kCacheSize = 256;  // per-lcore cache (<= 512)

rte_mempool* Pool() {
  static rte_mempool* pool = []() -> rte_mempool* {
    cpu_set_t saved;
    const bool have_mask = sched_getaffinity(0, sizeof(saved), &saved) == 0;
    char a0[] = "devmem_pool_bench";
    char a1[] = "--no-huge";
    char a2[] = "--no-pci";
    char a3[] = "--no-shconf";
    char a4[] = "--log-level=error";
    char a5[] = "-m";
    char a6[] = "64";
    char a7[] = "--no-telemetry";
    char* argv[] = {a0, a1, a2, a3, a4, a5, a6, a7};
    if (rte_eal_init(8, argv) < 0) {
      std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
      return nullptr;
    }
    if (have_mask) sched_setaffinity(0, sizeof(saved), &saved);
    rte_mempool* p = rte_mempool_create("devmem_bench", kObjects, kObjectSize,
                                        kCacheSize, 0, nullptr, nullptr,
                                        nullptr, nullptr, SOCKET_ID_ANY, 0);
    if (p == nullptr) {
      std::fprintf(stderr, "rte_mempool_create: %s\n", rte_strerror(rte_errno));
    }
    return p;
  }();
  return pool;
}

// One get + one put, served by the lcore cache (bulk 1).
void BM_DpdkMempoolGetPut(benchmark::State& state) {
  rte_mempool* mp = Pool();
  if (mp == nullptr || rte_lcore_id() == LCORE_ID_ANY) {
    state.SkipWithError("DPDK EAL or mempool unavailable");
    return;
  }
  for (auto _ : state) {
    void* obj;
    if (rte_mempool_get(mp, &obj) != 0) std::abort();
    benchmark::DoNotOptimize(obj);
    rte_mempool_put(mp, obj);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DpdkMempoolGetPut);

// get_bulk + put_bulk of N objects; time per object in ns_per_chunk.
void BM_DpdkMempoolBulk(benchmark::State& state) {
  rte_mempool* mp = Pool();
  if (mp == nullptr || rte_lcore_id() == LCORE_ID_ANY) {
    state.SkipWithError("DPDK EAL or mempool unavailable");
    return;
  }
  const unsigned n = static_cast<unsigned>(state.range(0));
  std::vector<void*> objs(n);
  for (auto _ : state) {
    if (rte_mempool_get_bulk(mp, objs.data(), n) != 0) std::abort();
    benchmark::DoNotOptimize(objs.data());
    rte_mempool_put_bulk(mp, objs.data(), n);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["ns_per_chunk"] = benchmark::Counter(
      static_cast<double>(state.iterations() * n),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_DpdkMempoolBulk)->Arg(64);

}  // namespace
