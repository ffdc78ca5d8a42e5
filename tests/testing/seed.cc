#include "tests/testing/seed.h"

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"

namespace devmem::testing {

uint64_t TestSeed() {
  uint64_t seed = 0;
  const char* env = std::getenv("DEVMEM_TEST_SEED");
  if (env == nullptr || !absl::SimpleAtoi(env, &seed)) {
    seed = static_cast<uint64_t>(
        ::testing::UnitTest::GetInstance()->random_seed());
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    if (info != nullptr) {
      // FNV-1a of the test name, so tests in one binary get different seeds.
      uint64_t h = 1469598103934665603ull;
      for (char c : std::string(info->test_suite_name()) + "." + info->name()) {
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
      }
      seed ^= h;
    }
  }
  ::testing::Test::RecordProperty("devmem_test_seed", std::to_string(seed));
  return seed;
}

}  // namespace devmem::testing
