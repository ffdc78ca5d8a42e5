#include "base/byte_size.h"

#include "gtest/gtest.h"

namespace devmem {
namespace {

TEST(ParseByteSize, NumbersAndSuffixes) {
  EXPECT_EQ(ParseByteSize("4096").value(), 4096u);
  EXPECT_EQ(ParseByteSize("2k").value(), 2048u);
  EXPECT_EQ(ParseByteSize("64M").value(), 64u << 20);
  EXPECT_EQ(ParseByteSize("3G").value(), uint64_t{3} << 30);
  EXPECT_EQ(ParseByteSize("2T").value(), uint64_t{2} << 40);
  EXPECT_EQ(ParseByteSize("1t").value(), uint64_t{1} << 40);
}

TEST(ParseByteSize, RejectsWhatIsNotASize) {
  for (const char* bad :
       {"", "M", "-1", "+5", "1.5G", "12Q", "G1", "99999999999999999999G",
        "17179869184G", "16777216T"}) {
    absl::StatusOr<uint64_t> v = ParseByteSize(bad);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseByteSize, MessageQuotesTheTextAndSaysWhatASizeIs) {
  EXPECT_EQ(ParseByteSize("12Q").status().message(),
            "\"12Q\" is not a size: want a whole number with an optional K, "
            "M, G or T (below 16E)");
}

TEST(ParseByteSizeFlag, SaysTheFlagOnceThenWhatWasWrong) {
  EXPECT_EQ(ParseByteSizeFlag("--size", "2T").value(), uint64_t{2} << 40);
  absl::StatusOr<uint64_t> v = ParseByteSizeFlag("--size", "12Q");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.status().message(),
            "--size \"12Q\" is not a size: want a whole number with an "
            "optional K, M, G or T (below 16E)");
}

}  // namespace
}  // namespace devmem
