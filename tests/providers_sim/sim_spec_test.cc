#include "providers/sim/sim_spec.h"

#include "gtest/gtest.h"

namespace devmem {
namespace {

TEST(SimSpecTest, DefaultSpec) {
  absl::StatusOr<std::vector<SimDeviceSpec>> s =
      ParseSimSpec("sim0:rx=16,tx=16");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ((*s)[0].name, "sim0");
  EXPECT_EQ((*s)[0].rx_queues, 16u);
  EXPECT_EQ((*s)[0].tx_queues, 16u);
  EXPECT_EQ((*s)[0].numa_node, -1);
  EXPECT_EQ((*s)[0].header_split, HeaderSplit::kUnknown);
  EXPECT_TRUE((*s)[0].header_split_supported);
  EXPECT_TRUE((*s)[0].devmem);
  EXPECT_TRUE((*s)[0].link_up);
}

TEST(SimSpecTest, SeveralDevicesAndEveryKey) {
  absl::StatusOr<std::vector<SimDeviceSpec>> s = ParseSimSpec(
      " sim0:rx=16,tx=16 ; sim1:rx=8,tx=4,numa=1,hds=on,hds-thresh=128,"
      "devmem=no,link=down;eth9;x:hds=unsupported ");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 4u);
  const SimDeviceSpec& b = (*s)[1];
  EXPECT_EQ(b.name, "sim1");
  EXPECT_EQ(b.rx_queues, 8u);
  EXPECT_EQ(b.tx_queues, 4u);
  EXPECT_EQ(b.numa_node, 1);
  EXPECT_EQ(b.header_split, HeaderSplit::kEnabled);
  EXPECT_EQ(b.hds_thresh, 128u);
  EXPECT_FALSE(b.devmem);
  EXPECT_FALSE(b.link_up);
  EXPECT_EQ((*s)[2], SimDeviceSpec{.name = "eth9"});
  EXPECT_FALSE((*s)[3].header_split_supported);
  EXPECT_EQ((*s)[3].header_split, HeaderSplit::kUnknown);
}

TEST(SimSpecTest, RangeErrorNamesTheDeviceTheKeyAndTheRange) {
  absl::StatusOr<std::vector<SimDeviceSpec>> s =
      ParseSimSpec("sim0;sim1:rx=8,numa=2000");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "sim spec device 2 \"sim1:rx=8,numa=2000\": numa=2000 is not in "
            "[-1, 1023]");
}

struct BadCase {
  const char* spec;
  const char* names;  // a substring the error must contain
};

class SimSpecBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(SimSpecBadTest, IsInvalidArgumentNamingThePart) {
  absl::StatusOr<std::vector<SimDeviceSpec>> s = ParseSimSpec(GetParam().spec);
  ASSERT_FALSE(s.ok()) << GetParam().spec;
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find(GetParam().names),
            absl::string_view::npos)
      << s.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SimSpecBadTest,
    ::testing::Values(
        BadCase{"", "empty"}, BadCase{"   ", "empty"},
        BadCase{"sim0;;sim1", "device 2"},
        BadCase{"sim0;", "empty device entry"},
        BadCase{"sim0:rx=0", "rx=0 is not in [1, 1024]"},
        BadCase{"sim0:rx=1025", "rx=1025 is not in [1, 1024]"},
        BadCase{"sim0:rx=abc", "rx=abc is not in [1, 1024]"},
        BadCase{"sim0:rx=-1", "rx=-1 is not in [1, 1024]"},
        BadCase{"sim0:tx=0", "tx=0 is not in [1, 1024]"},
        BadCase{"sim0:numa=-2", "numa=-2 is not in [-1, 1023]"},
        BadCase{"sim0:hds=maybe",
                "hds=maybe is not one of auto, off, on, unsupported"},
        BadCase{"sim0:devmem=1", "devmem=1 is not yes or no"},
        BadCase{"sim0:link=sideways", "link=sideways is not up or down"},
        BadCase{"sim0:hds-thresh=70000",
                "hds-thresh=70000 is not in [0, 65535]"},
        BadCase{"sim0:speed=100", "unknown key \"speed\""},
        BadCase{"sim0:rx", "\"rx\" is not KEY=VALUE"},
        BadCase{"sim0:rx=4,rx=8", "key \"rx\" given twice"},
        BadCase{"sim0;sim1;sim0", "device \"sim0\" named twice"},
        BadCase{"sim0;sim1:rx=8,tx=0", "device 2 \"sim1:rx=8,tx=0\""},
        BadCase{"a-very-long-name-here", "bad device name"},
        BadCase{"sim 0", "bad device name"},
        BadCase{":rx=1", "bad device name"}, BadCase{"..", "bad device name"}));

}  // namespace
}  // namespace devmem
