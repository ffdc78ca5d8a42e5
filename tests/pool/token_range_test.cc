#include "pool/token_range.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/seed.h"

namespace devmem {
namespace {

using ::testing::SizeIs;

std::vector<uint32_t> Expand(
    const std::vector<std::vector<TokenRange>>& calls) {
  std::vector<uint32_t> out;
  for (const auto& c : calls) {
    for (const auto& r : c) {
      for (uint32_t i = 0; i < r.count; ++i) {
        out.push_back(r.start + i);
      }
    }
  }
  return out;
}

TEST(CoalesceTokens, CoalescesConsecutiveTokens) {
  auto calls = CoalesceTokens({5, 1, 2, 3, 9, 4, 11, 10});
  ASSERT_THAT(calls, SizeIs(1));
  ASSERT_THAT(calls[0], SizeIs(2));
  EXPECT_EQ(calls[0][0].start, 1u);
  EXPECT_EQ(calls[0][0].count, 5u);
  EXPECT_EQ(calls[0][1].start, 9u);
  EXPECT_EQ(calls[0][1].count, 3u);
}

TEST(CoalesceTokens, EmptyIsNoCall) { EXPECT_TRUE(CoalesceTokens({}).empty()); }

TEST(CoalesceTokens, AtMost128RangesPerCall) {
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 300; ++i) tokens.push_back(i * 2);  // no runs
  auto calls = CoalesceTokens(tokens);
  ASSERT_THAT(calls, SizeIs(3));
  EXPECT_THAT(calls[0], SizeIs(128));
  EXPECT_THAT(calls[1], SizeIs(128));
  EXPECT_THAT(calls[2], SizeIs(44));
  EXPECT_EQ(Expand(calls), tokens);
}

TEST(CoalesceTokens, AtMost1024TokensPerCallSplittingARange) {
  std::vector<uint32_t> tokens;
  for (uint32_t i = 1; i <= 2500; ++i) tokens.push_back(i);
  auto calls = CoalesceTokens(tokens);
  ASSERT_THAT(calls, SizeIs(3));
  EXPECT_EQ(calls[0][0].count, kMaxTokensPerRelease);
  EXPECT_EQ(calls[1][0].start, 1025u);
  EXPECT_EQ(calls[2][0].count, 2500u - 2048u);
  EXPECT_EQ(Expand(calls), tokens);
}

TEST(CoalesceTokens, DuplicatesStaySeparate) {
  auto calls = CoalesceTokens({3, 3, 4});
  ASSERT_THAT(calls, SizeIs(1));
  ASSERT_THAT(calls[0], SizeIs(2));
  EXPECT_EQ(calls[0][0].count, 1u);
  EXPECT_EQ(calls[0][1].start, 3u);
  EXPECT_EQ(calls[0][1].count, 2u);
}

TEST(CoalesceTokens, RandomSetsRoundTrip) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200; ++i) {
    std::vector<uint32_t> tokens;
    const int n = static_cast<int>(rng() % 3000);
    for (int j = 0; j < n; ++j) tokens.push_back(rng() % 4000);
    auto calls = CoalesceTokens(tokens);
    for (const auto& c : calls) {
      EXPECT_LE(c.size(), kMaxTokenRanges);
      uint64_t count = 0;
      for (const auto& r : c) count += r.count;
      EXPECT_LE(count, kMaxTokensPerRelease);
    }
    std::sort(tokens.begin(), tokens.end());
    EXPECT_EQ(Expand(calls), tokens);
  }
}

}  // namespace
}  // namespace devmem
