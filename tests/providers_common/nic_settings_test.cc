// PreparationTracker against a fake NIC that keeps its settings like a
// driver does and refuses what a driver refuses (a table entry past the RX
// rings, an hds-thresh on a device without one), with injectable failures.
#include "providers/common/nic_settings.h"

#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devmem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class FakeNic final : public NicSettings {
 public:
  struct State {
    HeaderSplit split = HeaderSplit::kDisabled;
    std::optional<uint32_t> hds_thresh = 256;
    uint32_t rx_rings = 4;
    std::vector<uint32_t> rss = {0, 1, 2, 3, 0, 1, 2, 3};
    bool operator==(const State&) const = default;
  };

  State state;
  std::vector<std::string> log;          // every Set, in order
  std::map<std::string, int> fail_next;  // op -> errno of its next call

  absl::StatusOr<HeaderSplitConfig> GetHeaderSplit(
      const std::string& dev) override {
    RETURN_IF_ERROR(Injected("get-header-split", dev));
    return HeaderSplitConfig{state.split, state.hds_thresh};
  }
  absl::Status SetHeaderSplit(const std::string& dev, HeaderSplit split,
                              std::optional<uint32_t> hds) override {
    RETURN_IF_ERROR(Injected("set-header-split", dev));
    if (hds.has_value() && !state.hds_thresh.has_value()) {
      return ErrnoToStatus(EOPNOTSUPP, dev + ": hds-thresh");
    }
    state.split = split;
    if (hds.has_value()) state.hds_thresh = hds;
    log.push_back(absl::StrCat("split ", HeaderSplitName(split), " hds ",
                               hds.has_value() ? absl::StrCat(*hds) : "-"));
    return absl::OkStatus();
  }
  absl::StatusOr<uint32_t> GetRxRingCount(const std::string& dev) override {
    RETURN_IF_ERROR(Injected("get-rx-rings", dev));
    return state.rx_rings;
  }
  absl::StatusOr<std::vector<uint32_t>> GetRssTable(
      const std::string& dev) override {
    RETURN_IF_ERROR(Injected("get-rss", dev));
    return state.rss;
  }
  absl::Status SetRssTable(const std::string& dev,
                           absl::Span<const uint32_t> table) override {
    RETURN_IF_ERROR(Injected("set-rss", dev));
    for (uint32_t q : table) {
      if (q >= state.rx_rings) return ErrnoToStatus(EINVAL, dev + ": rxfh");
    }
    state.rss.assign(table.begin(), table.end());
    log.push_back(absl::StrCat("rss ", absl::StrJoin(table, ",")));
    return absl::OkStatus();
  }

 private:
  absl::Status Injected(const std::string& op, const std::string& dev) {
    auto it = fail_next.find(op);
    if (it == fail_next.end()) return absl::OkStatus();
    const int e = it->second;
    fail_next.erase(it);
    return ErrnoToStatus(e, absl::StrCat(dev, ": ", op));
  }
};

class PreparationTrackerTest : public ::testing::Test {
 protected:
  std::shared_ptr<FakeNic> nic_ = std::make_shared<FakeNic>();
  const FakeNic::State original_ = nic_->state;
  PreparationTracker tracker_{nic_};
};

TEST_F(PreparationTrackerTest, RecordsOnTheFirstAndRestoresOnTheLast) {
  absl::StatusOr<PreparationTracker::Prepared> a =
      tracker_.Prepare("eth1", {3});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->changes,
            "tcp-data-split disabled->enabled; hds-thresh 256->0; rss "
            "excludes queues 3 of 4");
  absl::StatusOr<PreparationTracker::Prepared> b =
      tracker_.Prepare("eth1", {2, 2});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(tracker_.Preparations("eth1"), 2u);
  EXPECT_EQ(nic_->state.split, HeaderSplit::kEnabled);
  EXPECT_EQ(nic_->state.hds_thresh, 0u);
  EXPECT_EQ(nic_->state.rss, (std::vector<uint32_t>{0, 1, 0, 1, 0, 1, 0, 1}));

  EXPECT_TRUE(tracker_.Release("eth1", a->id).ok());
  EXPECT_EQ(nic_->state.rss, (std::vector<uint32_t>{0, 1, 3, 0, 1, 3, 0, 1}));
  EXPECT_EQ(nic_->state.split, HeaderSplit::kEnabled);  // b still needs it
  EXPECT_TRUE(tracker_.Release("eth1", b->id).ok());
  EXPECT_EQ(nic_->state, original_);
  EXPECT_EQ(tracker_.Preparations("eth1"), 0u);
  EXPECT_THAT(nic_->log,
              ElementsAre("split enabled hds 0", "rss 0,1,2,0,1,2,0,1",
                          "rss 0,1,0,1,0,1,0,1", "rss 0,1,3,0,1,3,0,1",
                          "rss 0,1,2,3,0,1,2,3", "split disabled hds 256"));
  // Unknown and repeated ids are ignored.
  EXPECT_TRUE(tracker_.Release("eth1", b->id).ok());
  EXPECT_TRUE(tracker_.Release("eth9", 77).ok());
}

TEST_F(PreparationTrackerTest, ADeviceAlreadyRightIsNeverWritten) {
  nic_->state.split = HeaderSplit::kEnabled;
  nic_->state.hds_thresh = std::nullopt;
  absl::StatusOr<PreparationTracker::Prepared> p = tracker_.Prepare("eth1", {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->changes, "tcp-data-split already enabled");
  EXPECT_TRUE(tracker_.Release("eth1", p->id).ok());
  EXPECT_THAT(nic_->log, IsEmpty());
}

TEST_F(PreparationTrackerTest, ADeviceWithoutHdsThreshGetsNone) {
  nic_->state.hds_thresh = std::nullopt;
  absl::StatusOr<PreparationTracker::Prepared> p = tracker_.Prepare("eth1", {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->changes, "tcp-data-split disabled->enabled");
  EXPECT_TRUE(tracker_.Release("eth1", p->id).ok());
  EXPECT_THAT(nic_->log,
              ElementsAre("split enabled hds -", "split disabled hds -"));
}

TEST_F(PreparationTrackerTest, ApplyFailingHalfWayRestoresWhatWasDone) {
  nic_->fail_next["set-rss"] = EBUSY;
  absl::StatusOr<PreparationTracker::Prepared> p =
      tracker_.Prepare("eth1", {1});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(StatusErrno(p.status()), EBUSY) << p.status();
  // Header split had been turned on: it is turned off again.
  EXPECT_EQ(nic_->state, original_);
  EXPECT_THAT(nic_->log,
              ElementsAre("split enabled hds 0", "rss 0,1,2,3,0,1,2,3",
                          "split disabled hds 256"));
  EXPECT_EQ(tracker_.Preparations("eth1"), 0u);
  // Nothing is remembered: the next preparation records afresh.
  nic_->state.hds_thresh = 128;
  absl::StatusOr<PreparationTracker::Prepared> again =
      tracker_.Prepare("eth1", {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(again->changes, HasSubstr("hds-thresh 128->0"));
  EXPECT_TRUE(tracker_.Release("eth1", again->id).ok());
  EXPECT_EQ(nic_->state.hds_thresh, 128u);
}

TEST_F(PreparationTrackerTest, ASecondPreparationFailingKeepsTheFirst) {
  absl::StatusOr<PreparationTracker::Prepared> a =
      tracker_.Prepare("eth1", {3});
  ASSERT_TRUE(a.ok()) << a.status();
  const FakeNic::State with_a = nic_->state;
  absl::StatusOr<PreparationTracker::Prepared> b =
      tracker_.Prepare("eth1", {0, 1, 2});  // would leave RSS nothing
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(b.status().message(), HasSubstr("leaves none for RSS"));
  EXPECT_EQ(nic_->state, with_a);
  EXPECT_EQ(tracker_.Preparations("eth1"), 1u);
  EXPECT_TRUE(tracker_.Release("eth1", a->id).ok());
  EXPECT_EQ(nic_->state, original_);
}

TEST_F(PreparationTrackerTest, RefusalsLeaveTheDeviceAsItWas) {
  absl::StatusOr<PreparationTracker::Prepared> p =
      tracker_.Prepare("eth1", {4});
  EXPECT_EQ(StatusErrno(p.status()), EINVAL) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("RX queue 4 out of range"));
  EXPECT_EQ(nic_->state, original_);

  nic_->fail_next["get-header-split"] = EOPNOTSUPP;
  p = tracker_.Prepare("eth1", {});
  EXPECT_EQ(StatusErrno(p.status()), EOPNOTSUPP);
  EXPECT_THAT(p.status().message(), HasSubstr("cannot read header split"));

  nic_->fail_next["set-header-split"] = EPERM;
  p = tracker_.Prepare("eth1", {});
  EXPECT_EQ(StatusErrno(p.status()), EPERM);
  EXPECT_THAT(p.status().message(), HasSubstr("cannot turn on header split"));

  nic_->state.rss.clear();  // a device without an indirection table
  const FakeNic::State no_table = nic_->state;
  p = tracker_.Prepare("eth1", {1});
  EXPECT_EQ(StatusErrno(p.status()), EOPNOTSUPP);
  EXPECT_THAT(p.status().message(), HasSubstr("no RSS indirection table"));
  EXPECT_EQ(nic_->state, no_table);
  EXPECT_EQ(tracker_.Preparations("eth1"), 0u);
}

TEST_F(PreparationTrackerTest, RestoreFailingIsReportedAndTheRestIsTried) {
  absl::StatusOr<PreparationTracker::Prepared> p =
      tracker_.Prepare("eth1", {2});
  ASSERT_TRUE(p.ok()) << p.status();
  nic_->fail_next["set-rss"] = EIO;
  absl::Status s = tracker_.Release("eth1", p->id);
  EXPECT_EQ(StatusErrno(s), EIO) << s;
  EXPECT_THAT(s.message(), HasSubstr("cannot restore RSS"));
  // Header split was still put back, and the preparation is gone.
  EXPECT_EQ(nic_->state.split, HeaderSplit::kDisabled);
  EXPECT_EQ(nic_->state.hds_thresh, 256u);
  EXPECT_EQ(tracker_.Preparations("eth1"), 0u);

  p = tracker_.Prepare("eth1", {});
  ASSERT_TRUE(p.ok()) << p.status();
  nic_->fail_next["set-header-split"] = EBUSY;
  s = tracker_.Release("eth1", p->id);
  EXPECT_EQ(StatusErrno(s), EBUSY) << s;
  EXPECT_THAT(s.message(), HasSubstr("cannot restore header split"));
}

TEST_F(PreparationTrackerTest, DevicesAreTrackedApart) {
  absl::StatusOr<PreparationTracker::Prepared> a = tracker_.Prepare("eth1", {});
  absl::StatusOr<PreparationTracker::Prepared> b = tracker_.Prepare("eth2", {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(tracker_.Preparations("eth1"), 1u);
  EXPECT_EQ(tracker_.Preparations("eth2"), 1u);
  EXPECT_TRUE(tracker_.Release("eth2", a->id).ok());  // a is not eth2's
  EXPECT_EQ(tracker_.Preparations("eth1"), 1u);
  EXPECT_EQ(tracker_.Preparations("eth2"), 1u);
}

}  // namespace
}  // namespace devmem
