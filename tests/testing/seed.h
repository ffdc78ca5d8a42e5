// Seeded randomness for tests: every randomized test takes its seed from here
// and the seed is printed on failure, so any failure reproduces with
//   DEVMEM_TEST_SEED=<seed> ./the_test --gtest_filter=...
// Without DEVMEM_TEST_SEED the seed is gtest's --gtest_random_seed (which is
// fixed unless --gtest_shuffle asks otherwise), mixed with the test name.
#ifndef DEVMEM_TESTS_TESTING_SEED_H_
#define DEVMEM_TESTS_TESTING_SEED_H_

#include <cstdint>

#include "gtest/gtest.h"

namespace devmem::testing {

// The seed for the current test; also records it as a gtest property and
// adds a SCOPED_TRACE-like message so it is printed with any failure.
uint64_t TestSeed();

}  // namespace devmem::testing

#define DEVMEM_SEEDED_TRACE(seed) \
  SCOPED_TRACE(::testing::Message() << "DEVMEM_TEST_SEED=" << (seed))

#endif  // DEVMEM_TESTS_TESTING_SEED_H_
