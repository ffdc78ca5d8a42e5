// devmem_pool_pairs N: N Alloc + Free pairs on one thread, nothing else.
// For bench/pool/callgrind.sh, which runs it under callgrind twice and
// divides the difference in instructions by the difference in pairs (so
// start-up and the region's creation cancel out). Not a benchmark: not run
// by ./dev bench.
#include <cstdio>
#include <cstdlib>

#include "pool/region.h"

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  auto region = devmem::Region::Create({.size_bytes = 1 << 28}).value();
  long failed = 0;
  for (long i = 0; i < n; ++i) {
    absl::StatusOr<devmem::Chunk> c = region->Alloc();
    if (!c.ok() || !region->Free(*c).ok()) ++failed;
  }
  if (failed != 0) {
    std::fprintf(stderr, "%ld pairs failed\n", failed);
    return 1;
  }
  return 0;
}
