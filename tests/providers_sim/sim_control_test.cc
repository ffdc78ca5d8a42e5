// The simulated NIC's control path: devices, the bind-rx/bind-tx error table
// (errno and message, in the kernel's 6.18 order of checks), binding ids,
// device preparation record/restore, flow rules and NIC knobs.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "base/errno_status.h"
#include "client/dmabuf/dmabuf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/sim/sim_provider.h"

namespace devmem {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSpec[] =
    "sim0:rx=16,tx=16;sim1:rx=4,tx=2,devmem=no;sim2:rx=8,tx=8,hds=unsupported";

std::vector<uint32_t> Range(uint32_t lo, uint32_t hi) {
  std::vector<uint32_t> v;
  for (uint32_t q = lo; q <= hi; ++q) v.push_back(q);
  return v;
}

class SimControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Provider>> p =
        CreateSimProvider(SimOptions{.spec = kSpec});
    ASSERT_TRUE(p.ok()) << p.status();
    provider_ = std::move(*p);
    nic_ = GetSimNic(provider_.get());
    ASSERT_NE(nic_, nullptr);
    absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("ctl", 1 << 20);
    ASSERT_TRUE(buf.ok()) << buf.status();
    buf_ = std::make_unique<Dmabuf>(std::move(*buf));
  }

  RxBindSpec Rx(std::string device, std::vector<uint32_t> queues) {
    return RxBindSpec{.device = std::move(device),
                      .queue_ids = std::move(queues),
                      .dmabuf = buf_->fd()};
  }

  // Binds and expects failure with `errnum` and `text` in the message.
  void ExpectBindRxError(const RxBindSpec& spec, int errnum,
                         const std::string& text) {
    absl::StatusOr<std::unique_ptr<ProviderBinding>> b =
        provider_->BindRx(spec);
    ASSERT_FALSE(b.ok()) << "bind-rx unexpectedly succeeded";
    EXPECT_EQ(StatusErrno(b.status()), errnum) << b.status();
    EXPECT_EQ(b.status().code(), ErrnoToCode(errnum)) << b.status();
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(text));
  }

  std::unique_ptr<DevicePreparation> Prepare(std::string_view device,
                                             std::vector<uint32_t> queues) {
    absl::StatusOr<std::unique_ptr<DevicePreparation>> p =
        provider_->PrepareDevice(device, queues);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  std::optional<uint32_t> BoundId(const std::string& device, uint32_t queue) {
    absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
    EXPECT_TRUE(devs.ok());
    for (const DeviceInfo& d : *devs) {
      if (d.name != device) continue;
      for (const QueueInfo& q : d.queues) {
        if (q.rx && q.id == queue) return q.binding_id;
      }
    }
    ADD_FAILURE() << "no queue " << device << "/" << queue;
    return std::nullopt;
  }

  std::unique_ptr<Provider> provider_;
  SimNic* nic_ = nullptr;
  std::unique_ptr<Dmabuf> buf_;
};

TEST_F(SimControlTest, ListsDevicesFromTheSpec) {
  EXPECT_EQ(provider_->name(), "sim");
  absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
  ASSERT_TRUE(devs.ok());
  ASSERT_EQ(devs->size(), 3u);
  const DeviceInfo& d = (*devs)[0];
  EXPECT_EQ(d.name, "sim0");
  EXPECT_EQ(d.ifindex, 1000u);
  EXPECT_EQ((*devs)[1].ifindex, 1001u);
  EXPECT_EQ(d.rx_queues, 16u);
  EXPECT_EQ(d.tx_queues, 16u);
  EXPECT_TRUE(d.up);
  EXPECT_EQ(d.header_split, HeaderSplit::kUnknown);
  EXPECT_EQ(d.rx_capability.state, Capability::State::kSupported);
  EXPECT_EQ((*devs)[1].rx_capability.state, Capability::State::kUnsupported);
  ASSERT_EQ(d.queues.size(), 32u);
  EXPECT_TRUE(d.queues[0].rx);
  EXPECT_FALSE(d.queues[16].rx);
  EXPECT_FALSE(d.queues[3].binding_id.has_value());
  EXPECT_TRUE(d.queues[3].napi_id.has_value());
}

TEST_F(SimControlTest, BindRxErrorTable) {
  auto prep = Prepare("sim0", {14, 15});
  // Request attributes first: an empty queue list wins over everything.
  ExpectBindRxError(Rx("sim0", {}), EINVAL, "sim0: bind-rx: no queues");
  ExpectBindRxError(Rx("nosuch", {}), EINVAL, "no queues");
  RxBindSpec odd = Rx("sim0", {3});
  odd.chunk_size = 3000;
  ExpectBindRxError(odd, EINVAL, "chunk size 3000");
  odd.chunk_size = 4 << 20;
  ExpectBindRxError(odd, EINVAL, "chunk size");
  ExpectBindRxError(Rx("sim9", {0}), ENODEV, "sim9: bind-rx");
  ExpectBindRxError(Rx("sim1", {0}), EOPNOTSUPP, "sim1: bind-rx");
  ExpectBindRxError(Rx("sim0", {3, 16}), EINVAL,
                    "sim0: bind-rx queue 16: rx queue index out of range");
  // Queue ids are checked before the fd.
  RxBindSpec bad_fd = Rx("sim0", {99});
  bad_fd.dmabuf = BorrowedFd(-1);
  ExpectBindRxError(bad_fd, EINVAL, "queue 99");
  bad_fd.queue_ids = {3};
  ExpectBindRxError(bad_fd, EBADF, "sim0: bind-rx");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  RxBindSpec pipe_fd = Rx("sim0", {3});
  pipe_fd.dmabuf = r.borrow();
  ExpectBindRxError(pipe_fd, EINVAL, "a pipe");
  RxBindSpec big_chunk = Rx("sim0", {3});
  big_chunk.chunk_size = 2 << 20;  // the buffer is 1 MiB
  ExpectBindRxError(big_chunk, EINVAL, "smaller than one chunk");
}

TEST_F(SimControlTest, BindRxNeedsHeaderSplitOnAndThresholdZero) {
  ExpectBindRxError(Rx("sim0", {3}), EINVAL,
                    "sim0: bind-rx: tcp-data-split is disabled");
  // The fd is judged before header split (6.18 order).
  RxBindSpec bad_fd = Rx("sim0", {3});
  bad_fd.dmabuf = BorrowedFd(-1);
  ExpectBindRxError(bad_fd, EBADF, "sim0");
  ASSERT_TRUE(nic_->SetHeaderSplit("sim0", HeaderSplit::kEnabled).ok());
  ASSERT_TRUE(nic_->SetHdsThresh("sim0", 256).ok());
  ExpectBindRxError(Rx("sim0", {3}), EINVAL, "hds-thresh is not zero");
  ASSERT_TRUE(nic_->SetHdsThresh("sim0", 0).ok());
  EXPECT_TRUE(provider_->BindRx(Rx("sim0", {3})).ok());
}

TEST_F(SimControlTest, BindRxQueueAlreadyBoundIsEexist) {
  auto prep = Prepare("sim0", {2, 3, 4});
  absl::StatusOr<std::unique_ptr<ProviderBinding>> a =
      provider_->BindRx(Rx("sim0", {2, 3}));
  ASSERT_TRUE(a.ok()) << a.status();
  ExpectBindRxError(Rx("sim0", {4, 3}), EEXIST,
                    "sim0: bind-rx queue 3: designated queue already memory "
                    "provider bound");
  absl::StatusOr<std::unique_ptr<ProviderBinding>> b =
      provider_->BindRx(Rx("sim0", {4}));
  EXPECT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(BoundId("sim0", 3), (*a)->id());
  EXPECT_EQ(BoundId("sim0", 4), (*b)->id());
  a->reset();
  EXPECT_EQ(BoundId("sim0", 3), std::nullopt);
  EXPECT_TRUE(provider_->BindRx(Rx("sim0", {3})).ok());
}

TEST_F(SimControlTest, BindRxOnADownLinkIsEnetdown) {
  auto prep = Prepare("sim0", {3});
  ASSERT_TRUE(nic_->SetLinkUp("sim0", false).ok());
  ExpectBindRxError(Rx("sim0", {3}), ENETDOWN, "sim0: bind-rx: device is down");
  EXPECT_EQ(provider_->BindRx(Rx("sim0", {3})).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(nic_->SetLinkUp("sim0", true).ok());
  EXPECT_TRUE(provider_->BindRx(Rx("sim0", {3})).ok());
}

TEST_F(SimControlTest, BindRxCollapsesDuplicateQueues) {
  auto prep = Prepare("sim0", {5, 7});
  absl::StatusOr<std::unique_ptr<ProviderBinding>> b =
      provider_->BindRx(Rx("sim0", {7, 5, 7}));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT((*b)->queue_ids(), ElementsAre(5, 7));
  EXPECT_TRUE((*b)->rx());
  EXPECT_EQ((*b)->device(), "sim0");
  ASSERT_NE((*b)->region(), nullptr);
  EXPECT_EQ((*b)->region()->chunk_size(), 4096u);
  EXPECT_EQ((*b)->region()->num_chunks(), 256u);
}

TEST_F(SimControlTest, BindingIdsAreGlobalCyclicAndNotReusedWhileLive) {
  auto prep = Prepare("sim0", {1, 2, 3});
  auto a = provider_->BindRx(Rx("sim0", {1}));
  auto b =
      provider_->BindTx(TxBindSpec{.device = "sim0", .dmabuf = buf_->fd()});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->id(), 1u);
  EXPECT_EQ((*b)->id(), 2u);
  a->reset();
  auto c = provider_->BindRx(Rx("sim0", {2}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->id(), 3u);  // cyclic: 1 is free but not reused yet
}

TEST_F(SimControlTest, BindTxErrors) {
  auto tx = [&](std::string dev, BorrowedFd fd) {
    return provider_->BindTx(
        TxBindSpec{.device = std::move(dev), .dmabuf = fd});
  };
  EXPECT_EQ(StatusErrno(tx("sim9", buf_->fd()).status()), ENODEV);
  absl::Status s = tx("sim1", buf_->fd()).status();
  EXPECT_EQ(StatusErrno(s), EOPNOTSUPP);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("Driver does not support netmem TX"));
  EXPECT_EQ(StatusErrno(tx("sim0", BorrowedFd(-1)).status()), EBADF);
  // TX needs no header split.
  absl::StatusOr<std::unique_ptr<ProviderBinding>> b = tx("sim0", buf_->fd());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE((*b)->rx());
  EXPECT_EQ((*b)->region(), nullptr);
  EXPECT_EQ((*b)->AddFlow(Flow{.dst_port = 80}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // One data path, taken once; a TX one has no endpoint.
  std::optional<DataPath> dp = (*b)->TakeDataPath();
  ASSERT_TRUE(dp.has_value());
  EXPECT_TRUE(dp->job_end.ok());
  EXPECT_EQ(dp->rx_endpoint, "");
  EXPECT_FALSE((*b)->TakeDataPath().has_value());
}

TEST_F(SimControlTest, RxBindingHasOneDataPathAndAnEndpoint) {
  auto prep = Prepare("sim0", {3});
  auto b = provider_->BindRx(Rx("sim0", {3}));
  ASSERT_TRUE(b.ok());
  std::optional<DataPath> dp = (*b)->TakeDataPath();
  ASSERT_TRUE(dp.has_value());
  EXPECT_TRUE(dp->job_end.ok());
  EXPECT_THAT(dp->rx_endpoint, HasSubstr("127.0.0.1:"));
  EXPECT_FALSE((*b)->TakeDataPath().has_value());
}

TEST_F(SimControlTest, StackedPreparationsRecordAndRestore) {
  ASSERT_TRUE(nic_->SetHdsThresh("sim0", 64).ok());
  std::unique_ptr<DevicePreparation> a = Prepare("sim0", {14, 15});
  ASSERT_NE(a, nullptr);
  EXPECT_THAT(a->Describe(), HasSubstr("tcp-data-split auto->on"));
  EXPECT_THAT(a->Describe(), HasSubstr("hds-thresh 64->0"));
  EXPECT_THAT(a->Describe(), HasSubstr("rss 0-15 -> 0-13"));
  EXPECT_EQ(*nic_->RssQueues("sim0"), Range(0, 13));

  std::unique_ptr<DevicePreparation> b = Prepare("sim0", {12, 13});
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->Describe(), "sim0: rss 0-13 -> 0-11");
  EXPECT_EQ(*nic_->Preparations("sim0"), 2u);
  EXPECT_EQ(*nic_->RssQueues("sim0"), Range(0, 11));

  // The first goes: its queues come back to RSS, the second's stay out.
  a.reset();
  EXPECT_EQ(*nic_->Preparations("sim0"), 1u);
  std::vector<uint32_t> want = Range(0, 11);
  want.push_back(14);
  want.push_back(15);
  EXPECT_EQ(*nic_->RssQueues("sim0"), want);
  absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
  EXPECT_EQ((*devs)[0].header_split, HeaderSplit::kEnabled);
  EXPECT_EQ((*devs)[0].hds_thresh, 0u);

  // The last goes: everything as it was.
  b.reset();
  EXPECT_EQ(*nic_->Preparations("sim0"), 0u);
  EXPECT_EQ(*nic_->RssQueues("sim0"), Range(0, 15));
  devs = provider_->ListDevices();
  EXPECT_EQ((*devs)[0].header_split, HeaderSplit::kUnknown);
  EXPECT_EQ((*devs)[0].hds_thresh, 64u);
}

TEST_F(SimControlTest, PreparationOfAPreparedDeviceChangesNothing) {
  ASSERT_TRUE(nic_->SetHeaderSplit("sim0", HeaderSplit::kEnabled).ok());
  std::unique_ptr<DevicePreparation> p = Prepare("sim0", {});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->Describe(), "sim0: nothing changed");
}

TEST_F(SimControlTest, PrepareErrors) {
  EXPECT_EQ(StatusErrno(provider_->PrepareDevice("sim9", {1}).status()),
            ENODEV);
  absl::Status s = provider_->PrepareDevice("sim0", {16}).status();
  EXPECT_EQ(StatusErrno(s), EINVAL);
  EXPECT_THAT(std::string(s.message()), HasSubstr("sim0: prepare queue 16"));
  EXPECT_EQ(StatusErrno(provider_->PrepareDevice("sim2", {1}).status()),
            EOPNOTSUPP);
  s = provider_->PrepareDevice("sim0", Range(0, 15)).status();
  EXPECT_EQ(StatusErrno(s), EINVAL);
  EXPECT_THAT(std::string(s.message()), HasSubstr("RSS would have no queue"));
  EXPECT_EQ(*nic_->Preparations("sim0"), 0u);  // failures record nothing
}

TEST_F(SimControlTest, HeaderSplitIsPinnedWhileBound) {
  auto prep = Prepare("sim0", {3});
  auto b = provider_->BindRx(Rx("sim0", {3}));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(StatusErrno(nic_->SetHeaderSplit("sim0", HeaderSplit::kDisabled)),
            EINVAL);
  EXPECT_EQ(StatusErrno(nic_->SetHdsThresh("sim0", 1)), EINVAL);
  EXPECT_EQ(StatusErrno(nic_->SetHeaderSplitSupported("sim0", false)), EINVAL);
  EXPECT_TRUE(nic_->SetHeaderSplit("sim0", HeaderSplit::kEnabled).ok());
  // Destroying the preparation before the binding (the wrong order): RSS is
  // restored, header split stays on as the kernel would insist.
  prep.reset();
  EXPECT_EQ(*nic_->RssQueues("sim0"), Range(0, 15));
  EXPECT_EQ((*provider_->ListDevices())[0].header_split, HeaderSplit::kEnabled);
  b->reset();
  EXPECT_TRUE(nic_->SetHeaderSplit("sim0", HeaderSplit::kDisabled).ok());
}

TEST_F(SimControlTest, NicKnobErrors) {
  EXPECT_EQ(StatusErrno(nic_->SetLinkUp("sim9", true)), ENODEV);
  EXPECT_EQ(StatusErrno(nic_->SetHeaderSplit("sim9", HeaderSplit::kEnabled)),
            ENODEV);
  EXPECT_EQ(StatusErrno(nic_->RssQueues("sim9").status()), ENODEV);
  EXPECT_EQ(StatusErrno(nic_->SetHeaderSplit("sim2", HeaderSplit::kEnabled)),
            EOPNOTSUPP);
  ASSERT_TRUE(nic_->SetHeaderSplitSupported("sim2", true).ok());
  EXPECT_TRUE(nic_->SetHeaderSplit("sim2", HeaderSplit::kEnabled).ok());
  ASSERT_TRUE(nic_->SetHeaderSplitSupported("sim0", false).ok());
  EXPECT_EQ(StatusErrno(provider_->PrepareDevice("sim0", {1}).status()),
            EOPNOTSUPP);
}

TEST_F(SimControlTest, FlowsAreValidatedRecordedAndRemoved) {
  auto prep = Prepare("sim0", {6, 7});
  auto b = provider_->BindRx(Rx("sim0", {7, 6}));
  ASSERT_TRUE(b.ok());
  absl::StatusOr<std::unique_ptr<FlowRule>> f1 =
      (*b)->AddFlow(Flow{.src_ip = "10.0.0.1",
                         .dst_ip = "10.0.0.2",
                         .src_port = 1234,
                         .dst_port = 5201});
  ASSERT_TRUE(f1.ok()) << f1.status();
  absl::StatusOr<std::unique_ptr<FlowRule>> f2 =
      (*b)->AddFlow(Flow{.ipv6 = true, .dst_ip = "fd00::2", .dst_port = 5202});
  ASSERT_TRUE(f2.ok()) << f2.status();
  EXPECT_NE((*f1)->rule_id(), (*f2)->rule_id());
  absl::StatusOr<std::vector<SimFlowRuleInfo>> rules = nic_->FlowRules("sim0");
  ASSERT_TRUE(rules.ok());
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].rule_id, (*f1)->rule_id());
  EXPECT_EQ((*rules)[0].binding_id, (*b)->id());
  EXPECT_EQ((*rules)[0].queue, 6u);  // the binding's first queue
  EXPECT_EQ((*rules)[0].flow.dst_port, 5201);

  auto expect_einval = [&](const Flow& f, const std::string& text) {
    absl::Status s = (*b)->AddFlow(f).status();
    EXPECT_EQ(StatusErrno(s), EINVAL) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(text));
  };
  expect_einval(Flow{.dst_ip = "10.0.0.2"}, "dst_port is required");
  // Parsed on the exact bytes: nothing after a NUL is cut off silently.
  expect_einval(
      Flow{.dst_ip = std::string("10.0.0.2\0junk", 13), .dst_port = 1},
      "dst_ip \"10.0.0.2\\000junk\" is not an IPv4");
  expect_einval(Flow{.dst_ip = "10.0.0.256", .dst_port = 1}, "dst_ip");
  expect_einval(Flow{.src_ip = "fd00::1", .dst_port = 1}, "not an IPv4");
  expect_einval(Flow{.ipv6 = true, .dst_ip = "10.0.0.1", .dst_port = 1},
                "not an IPv6");
  absl::Status dup =
      (*b)->AddFlow(Flow{.ipv6 = true, .dst_ip = "fd00::2", .dst_port = 5202})
          .status();
  EXPECT_EQ(StatusErrno(dup), EEXIST);
  EXPECT_THAT(std::string(dup.message()), HasSubstr("sim0 binding"));

  f1->reset();
  rules = nic_->FlowRules("sim0");
  ASSERT_EQ(rules->size(), 1u);
  EXPECT_EQ((*rules)[0].flow.dst_ip, "fd00::2");
  // A rule may outlive its binding (flows, binding, preparation is the right
  // order, but nothing breaks otherwise).
  b->reset();
  f2->reset();
  EXPECT_TRUE(nic_->FlowRules("sim0")->empty());
}

TEST_F(SimControlTest, QueueStatsShape) {
  EXPECT_EQ(StatusErrno(provider_->GetQueueStats("sim9").status()), ENODEV);
  absl::StatusOr<std::vector<QueueStats>> qs = provider_->GetQueueStats("sim1");
  ASSERT_TRUE(qs.ok());
  ASSERT_EQ(qs->size(), 6u);
  EXPECT_TRUE((*qs)[3].rx);
  EXPECT_EQ((*qs)[3].queue_id, 3u);
  EXPECT_FALSE((*qs)[4].rx);
  EXPECT_EQ((*qs)[5].queue_id, 1u);
}

TEST_F(SimControlTest, CheckDmabufAndGetSimNic) {
  absl::StatusOr<DmabufInfo> info = provider_->CheckDmabuf(buf_->fd());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size_bytes, 1u << 20);
  EXPECT_EQ(StatusErrno(provider_->CheckDmabuf(BorrowedFd(-1)).status()),
            EBADF);
  EXPECT_EQ(GetSimNic(nullptr), nullptr);
}

TEST_F(SimControlTest, BindingsMayOutliveTheProvider) {
  auto prep = Prepare("sim0", {3});
  auto b = provider_->BindRx(Rx("sim0", {3}));
  ASSERT_TRUE(b.ok());
  provider_.reset();
  b->reset();
  prep.reset();
}

TEST(SimProviderTest, BadSpecIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<Provider>> p =
      CreateSimProvider(SimOptions{.spec = "sim0:rx=0"});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CreateSimProvider(SimOptions{}).ok());
}

}  // namespace
}  // namespace devmem
