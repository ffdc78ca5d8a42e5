// The kernel provider against a fake kernel (tests/providers_kernel/
// fake_kernel.h): the success paths no NIC on this machine can take, the
// socket-per-binding lifetime, and NIC preparation with restore.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "base/errno_status.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/kernel/kernel_provider.h"
#include "providers/kernel/netdev_family.h"
#include "tests/providers_kernel/fake_kernel.h"

namespace devmem {
namespace {

using ::devmem::testing::FakeDevice;
using ::devmem::testing::FakeKernel;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

UniqueFd SealedMemfd(size_t size) {
  UniqueFd fd(::memfd_create("kernel-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.ok()) return fd;
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0 ||
      ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0) {
    return UniqueFd();
  }
  return fd;
}

class KernelProviderFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeDevice eth0;  // virtio-like: no queue API, no ethtool rings
    eth0.ifindex = 2;
    eth0.name = "eth0";
    eth0.queue_api = false;
    eth0.rings_supported = false;
    eth0.qstats = false;
    kernel_.AddDevice(eth0);
    FakeDevice eth1;  // a devmem NIC with header split off, hds-thresh 256
    eth1.ifindex = 4;
    eth1.name = "eth1";
    eth1.rx_queues = 16;
    eth1.tx_queues = 16;
    eth1.numa_node = 1;
    eth1.netmem_tx = true;
    eth1.tcp_data_split = uapi::kTcpDataSplitDisabled;
    eth1.hds_thresh = 256;
    kernel_.AddDevice(eth1);
    FakeDevice eth2;  // down: queue-get skips it
    eth2.ifindex = 5;
    eth2.name = "eth2";
    eth2.rx_queues = 8;
    eth2.tx_queues = 4;
    eth2.up = false;
    kernel_.AddDevice(eth2);
    provider_ = MakeProvider();
    dmabuf_ = SealedMemfd(1 << 20);
    ASSERT_TRUE(dmabuf_.ok());
  }

  std::unique_ptr<Provider> MakeProvider() {
    KernelProviderOptions options;
    options.transport = kernel_.transport();
    options.ethtool = kernel_.ethtool();
    options.host = kernel_.host();
    absl::StatusOr<std::unique_ptr<Provider>> p = CreateKernelProvider(options);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  RxBindSpec Rx(std::string device, std::vector<uint32_t> queues) {
    RxBindSpec spec;
    spec.device = std::move(device);
    spec.queue_ids = std::move(queues);
    spec.dmabuf = dmabuf_.borrow();
    return spec;
  }

  const DeviceInfo* Find(const std::vector<DeviceInfo>& devs,
                         const std::string& name) {
    for (const DeviceInfo& d : devs) {
      if (d.name == name) return &d;
    }
    return nullptr;
  }

  FakeKernel kernel_;
  std::unique_ptr<Provider> provider_;
  UniqueFd dmabuf_;
};

TEST_F(KernelProviderFakeTest, ListDevices) {
  absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
  ASSERT_TRUE(devs.ok()) << devs.status();
  ASSERT_EQ(devs->size(), 3u);
  const DeviceInfo* eth1 = Find(*devs, "eth1");
  ASSERT_NE(eth1, nullptr);
  EXPECT_EQ(eth1->ifindex, 4u);
  EXPECT_TRUE(eth1->up);
  EXPECT_EQ(eth1->rx_queues, 16u);
  EXPECT_EQ(eth1->tx_queues, 16u);
  ASSERT_EQ(eth1->queues.size(), 32u);
  EXPECT_TRUE(eth1->queues[0].rx);
  EXPECT_EQ(eth1->queues[0].napi_id, 8192u);
  EXPECT_FALSE(eth1->queues[16].rx);
  EXPECT_EQ(eth1->numa_node, 1);
  EXPECT_EQ(eth1->header_split, HeaderSplit::kDisabled);
  EXPECT_EQ(eth1->hds_thresh, 256u);
  EXPECT_EQ(eth1->rx_capability.state, Capability::State::kUnknown);

  const DeviceInfo* eth2 = Find(*devs, "eth2");
  ASSERT_NE(eth2, nullptr);
  EXPECT_FALSE(eth2->up);
  EXPECT_EQ(eth2->rx_queues, 8u);  // from sysfs: queue-get skips it
  EXPECT_EQ(eth2->tx_queues, 4u);

  const DeviceInfo* eth0 = Find(*devs, "eth0");
  ASSERT_NE(eth0, nullptr);
  EXPECT_EQ(eth0->header_split, HeaderSplit::kUnknown);
  EXPECT_EQ(eth0->numa_node, -1);
}

TEST_F(KernelProviderFakeTest, MultiPartDumpsGiveTheSameDevices) {
  kernel_.set_one_record_per_datagram(true);
  absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
  ASSERT_TRUE(devs.ok()) << devs.status();
  ASSERT_EQ(devs->size(), 3u);
  EXPECT_EQ(Find(*devs, "eth1")->rx_queues, 16u);
}

TEST_F(KernelProviderFakeTest, EachBindingOwnsItsSocketAndClosingItUnbinds) {
  absl::StatusOr<std::unique_ptr<DevicePreparation>> prep =
      provider_->PrepareDevice("eth1", std::vector<uint32_t>{13, 14, 15});
  ASSERT_TRUE(prep.ok()) << prep.status();
  const int base_sockets = kernel_.open_endpoints();  // the query socket

  absl::StatusOr<std::unique_ptr<ProviderBinding>> a =
      provider_->BindRx(Rx("eth1", {14, 15}));
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::unique_ptr<ProviderBinding>> b =
      provider_->BindRx(Rx("eth1", {13}));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*a)->id(), 1u);
  EXPECT_EQ((*b)->id(), 2u);
  EXPECT_TRUE((*a)->rx());
  EXPECT_EQ((*a)->device(), "eth1");
  EXPECT_THAT((*a)->queue_ids(), ElementsAre(14, 15));
  EXPECT_EQ(kernel_.open_endpoints(), base_sockets + 2);

  std::vector<testing::FakeBinding> bound = kernel_.bindings();
  ASSERT_EQ(bound.size(), 2u);
  EXPECT_NE(bound[0].endpoint, bound[1].endpoint);
  const uint64_t a_socket = bound[0].endpoint;

  // The kernel's view shows the binding on the queues and the capability.
  absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
  ASSERT_TRUE(devs.ok());
  const DeviceInfo* eth1 = Find(*devs, "eth1");
  EXPECT_EQ(eth1->queues[14].binding_id, 1u);
  EXPECT_EQ(eth1->queues[13].binding_id, 2u);
  EXPECT_FALSE(eth1->queues[12].binding_id.has_value());
  EXPECT_EQ(eth1->rx_capability.state, Capability::State::kSupported);
  EXPECT_EQ(eth1->header_split, HeaderSplit::kEnabled);

  // Destroying one binding closes exactly its socket.
  a->reset();
  EXPECT_THAT(kernel_.closed_endpoints(), ElementsAre(a_socket));
  bound = kernel_.bindings();
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound[0].id, 2u);
  EXPECT_EQ(kernel_.open_endpoints(), base_sockets + 1);

  // The freed queues can be bound again.
  absl::StatusOr<std::unique_ptr<ProviderBinding>> c =
      provider_->BindRx(Rx("eth1", {14}));
  ASSERT_TRUE(c.ok()) << c.status();
  b->reset();
  c->reset();
  EXPECT_THAT(kernel_.bindings(), IsEmpty());
  EXPECT_EQ(kernel_.open_endpoints(), base_sockets);
}

TEST_F(KernelProviderFakeTest, PrepareTurnsOnHeaderSplitSteersRssAndRestores) {
  const FakeDevice before = kernel_.device("eth1");
  std::vector<uint32_t> original_indir;
  {
    // The fake fills the default table on first read; read it the same way.
    absl::StatusOr<std::vector<uint32_t>> t =
        kernel_.ethtool()->GetRxfhIndir("eth1");
    ASSERT_TRUE(t.ok());
    original_indir = *t;
  }
  absl::StatusOr<std::unique_ptr<DevicePreparation>> p1 =
      provider_->PrepareDevice("eth1", std::vector<uint32_t>{15});
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_THAT((*p1)->Describe(),
              HasSubstr("tcp-data-split disabled->enabled; hds-thresh 256->0"));
  EXPECT_THAT((*p1)->Describe(), HasSubstr("rss excludes queues 15 of 16"));
  FakeDevice now = kernel_.device("eth1");
  EXPECT_EQ(now.tcp_data_split, uapi::kTcpDataSplitEnabled);
  EXPECT_EQ(now.hds_thresh, 0u);
  EXPECT_EQ(std::count(now.indir.begin(), now.indir.end(), 15u), 0);

  // A second preparation stacks: RSS avoids the union of reserved queues.
  absl::StatusOr<std::unique_ptr<DevicePreparation>> p2 =
      provider_->PrepareDevice("eth1", std::vector<uint32_t>{12, 13});
  ASSERT_TRUE(p2.ok()) << p2.status();
  now = kernel_.device("eth1");
  std::set<uint32_t> used(now.indir.begin(), now.indir.end());
  EXPECT_FALSE(used.contains(12) || used.contains(13) || used.contains(15));
  EXPECT_EQ(used.size(), 13u);

  // Releasing the first keeps the second's queues out of RSS.
  p1->reset();
  now = kernel_.device("eth1");
  used = std::set<uint32_t>(now.indir.begin(), now.indir.end());
  EXPECT_TRUE(used.contains(15));
  EXPECT_FALSE(used.contains(12) || used.contains(13));
  EXPECT_EQ(now.tcp_data_split, uapi::kTcpDataSplitEnabled);

  // The last one restores everything it changed.
  p2->reset();
  now = kernel_.device("eth1");
  EXPECT_EQ(now.tcp_data_split, before.tcp_data_split);
  EXPECT_EQ(now.hds_thresh, before.hds_thresh);
  EXPECT_EQ(now.indir, original_indir);
  EXPECT_THAT(kernel_.ethtool_log(),
              ElementsAre("rings-set eth1 split=2 hds=0",
                          "rss eth1 queues=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14",
                          "rss eth1 queues=0,1,2,3,4,5,6,7,8,9,10,11,14",
                          "rss eth1 queues=0,1,2,3,4,5,6,7,8,9,10,11,14,15",
                          "rss eth1 queues=0,1,2,3,4,5,6,7,8,9,10,11,12,13,"
                          "14,15",
                          "rings-set eth1 split=1 hds=256"));
}

TEST_F(KernelProviderFakeTest, PrepareFailuresLeaveTheNicAsItWas) {
  // No ethtool rings on eth0: nothing to turn on, nothing changed.
  absl::StatusOr<std::unique_ptr<DevicePreparation>> p =
      provider_->PrepareDevice("eth0", {});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnimplemented) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("cannot read header split"));
  // Reserving every RX queue leaves none for RSS: undone, restored.
  std::vector<uint32_t> all(16);
  for (uint32_t i = 0; i < 16; ++i) all[i] = i;
  p = provider_->PrepareDevice("eth1", all);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition)
      << p.status();
  FakeDevice now = kernel_.device("eth1");
  EXPECT_EQ(now.tcp_data_split, uapi::kTcpDataSplitDisabled);
  EXPECT_EQ(now.hds_thresh, 256u);
  // A queue beyond the device is EINVAL.
  p = provider_->PrepareDevice("eth1", std::vector<uint32_t>{99});
  EXPECT_EQ(StatusErrno(p.status()), EINVAL) << p.status();
  EXPECT_EQ(kernel_.device("eth1").tcp_data_split, uapi::kTcpDataSplitDisabled);
  p = provider_->PrepareDevice("nope0", {});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KernelProviderFakeTest, BindRxWithoutPreparationIsTheKernelsEinval) {
  absl::StatusOr<std::unique_ptr<ProviderBinding>> b =
      provider_->BindRx(Rx("eth1", {15}));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusErrno(b.status()), EINVAL);
  EXPECT_EQ(b.status().message(),
            "eth1 (ifindex 4): bind-rx: tcp-data-split is disabled (EINVAL)");
  // The failed bind's socket was closed.
  EXPECT_EQ(kernel_.open_endpoints(), 1);
}

TEST_F(KernelProviderFakeTest, BindRxErrors) {
  absl::StatusOr<std::unique_ptr<DevicePreparation>> prep =
      provider_->PrepareDevice("eth1", std::vector<uint32_t>{15});
  ASSERT_TRUE(prep.ok());

  absl::Status s = provider_->BindRx(Rx("nope0", {1})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;

  RxBindSpec big = Rx("eth1", {15});
  big.chunk_size = 8192;
  s = provider_->BindRx(big).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("PAGE_SIZE"));

  s = provider_->BindRx(Rx("eth1", {})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  s = provider_->BindRx(Rx("eth1", {40})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("bad attribute: queues.id"));

  RxBindSpec closed = Rx("eth1", {15});
  {
    UniqueFd gone = SealedMemfd(4096);
    closed.dmabuf = BorrowedFd(gone.get());
  }
  s = provider_->BindRx(closed).status();
  EXPECT_EQ(StatusErrno(s), EBADF) << s;

  absl::StatusOr<std::unique_ptr<ProviderBinding>> first =
      provider_->BindRx(Rx("eth1", {15}));
  ASSERT_TRUE(first.ok()) << first.status();
  s = provider_->BindRx(Rx("eth1", {15})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(s.message(),
              HasSubstr("designated queue already memory provider bound"));

  kernel_.set_caller_is_admin(false);
  s = provider_->BindRx(Rx("eth1", {14})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_EQ(StatusErrno(s), EPERM);
}

TEST_F(KernelProviderFakeTest, EopnotsuppMakesTheDeviceUnsupported) {
  absl::Status s = provider_->BindRx(Rx("eth0", {0})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
  EXPECT_EQ(StatusErrno(s), EOPNOTSUPP);
  EXPECT_THAT(s.message(),
              HasSubstr("eth0 (ifindex 2): bind-rx: driver lacks the queue "
                        "management API needed for devmem (EOPNOTSUPP)"));
  s = provider_->BindTx({.device = "eth0", .dmabuf = dmabuf_.borrow()})
          .status();
  EXPECT_EQ(StatusErrno(s), EOPNOTSUPP) << s;
  EXPECT_THAT(s.message(), HasSubstr("Driver does not support netmem TX"));

  absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
  ASSERT_TRUE(devs.ok());
  const DeviceInfo* eth0 = Find(*devs, "eth0");
  EXPECT_EQ(eth0->rx_capability.state, Capability::State::kUnsupported);
  EXPECT_EQ(eth0->rx_capability.reason,
            "eth0: driver lacks the queue management API needed for devmem "
            "(EOPNOTSUPP)");
  EXPECT_EQ(eth0->tx_capability.state, Capability::State::kUnsupported);
  EXPECT_EQ(eth0->tx_capability.reason,
            "eth0: Driver does not support netmem TX (EOPNOTSUPP)");
  EXPECT_EQ(Find(*devs, "eth1")->rx_capability.state,
            Capability::State::kUnknown);
}

TEST_F(KernelProviderFakeTest, TxBindingAndItsLimits) {
  absl::StatusOr<std::unique_ptr<ProviderBinding>> tx =
      provider_->BindTx({.device = "eth1", .dmabuf = dmabuf_.borrow()});
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_FALSE((*tx)->rx());
  EXPECT_THAT((*tx)->queue_ids(), IsEmpty());
  absl::Status s = (*tx)->AddFlow({.dst_port = 80}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  ASSERT_EQ(kernel_.bindings().size(), 1u);
  EXPECT_FALSE(kernel_.bindings()[0].rx);
  tx->reset();
  EXPECT_THAT(kernel_.bindings(), IsEmpty());
}

TEST_F(KernelProviderFakeTest, FlowRulesAreRemovedWithTheirObject) {
  auto prep = provider_->PrepareDevice("eth1", std::vector<uint32_t>{14, 15});
  ASSERT_TRUE(prep.ok());
  auto binding = provider_->BindRx(Rx("eth1", {14, 15}));
  ASSERT_TRUE(binding.ok()) << binding.status();
  absl::StatusOr<std::unique_ptr<FlowRule>> r1 =
      (*binding)->AddFlow({.dst_ip = "192.0.2.1", .dst_port = 5201});
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<std::unique_ptr<FlowRule>> r2 = (*binding)->AddFlow(
      {.ipv6 = true, .src_ip = "2001:db8::1", .dst_port = 5202});
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_NE((*r1)->rule_id(), (*r2)->rule_id());
  EXPECT_EQ(kernel_.rules("eth1").size(), 2u);
  EXPECT_EQ(kernel_.rules("eth1").at((*r1)->rule_id()),
            "tcp4 dst-port 5201 queue 14");

  EXPECT_EQ((*binding)
                ->AddFlow({.dst_ip = "300.1.1.1", .dst_port = 1})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*binding)->AddFlow({.dst_ip = "10.0.0.1"}).status().code(),
            absl::StatusCode::kInvalidArgument);

  r1->reset();
  EXPECT_EQ(kernel_.rules("eth1").size(), 1u);
  // Reverse order of creation: flows, binding, preparation.
  r2->reset();
  binding->reset();
  prep->reset();
  EXPECT_THAT(kernel_.rules("eth1"), IsEmpty());
  EXPECT_EQ(kernel_.device("eth1").tcp_data_split, uapi::kTcpDataSplitDisabled);
}

TEST_F(KernelProviderFakeTest, StatsFromPagePoolsAndQstats) {
  kernel_.set_pool_inflight(5);
  auto prep = provider_->PrepareDevice("eth1", std::vector<uint32_t>{14, 15});
  ASSERT_TRUE(prep.ok());
  auto binding = provider_->BindRx(Rx("eth1", {14, 15}));
  ASSERT_TRUE(binding.ok()) << binding.status();
  const uint32_t id = (*binding)->id();
  BindingStats stats = (*binding)->Stats();
  EXPECT_EQ(stats.id, id);
  EXPECT_EQ(stats.kernel_inflight, 10u);
  EXPECT_FALSE(stats.kernel_detach_time.has_value());
  // rx-bytes come as 8-byte uints (> 4 GiB per queue).
  EXPECT_EQ(stats.bytes_received, 10'000'000'000ull + 14 + 15);
  EXPECT_EQ(stats.alloc_fail, 14u + 15u);

  absl::StatusOr<std::vector<QueueStats>> qs = provider_->GetQueueStats("eth1");
  ASSERT_TRUE(qs.ok()) << qs.status();
  ASSERT_EQ(qs->size(), 32u);
  EXPECT_TRUE((*qs)[3].rx);
  EXPECT_EQ((*qs)[3].queue_id, 3u);
  EXPECT_EQ((*qs)[3].bytes, 5'000'000'003ull);
  EXPECT_EQ((*qs)[3].packets, 1003u);
  EXPECT_EQ((*qs)[3].hw_drops, 7u);
  EXPECT_FALSE((*qs)[16].rx);
  EXPECT_EQ((*qs)[16].bytes, 3000u);

  // After the unbind the pools stay, detached, until their buffers return.
  binding->reset();
  auto client = kernel::NetdevClient::Open(*kernel_.transport(), std::nullopt);
  ASSERT_TRUE(client.ok());
  auto pools = (*client)->DumpPagePools();
  ASSERT_TRUE(pools.ok()) << pools.status();
  ASSERT_EQ(pools->size(), 2u);
  for (const kernel::PagePoolRecord& p : *pools) {
    EXPECT_EQ(p.dmabuf, id);
    EXPECT_EQ(p.inflight, 5u);
    EXPECT_TRUE(p.detach_time.has_value());
  }

  // A device without qstats ops: the kernel's EOPNOTSUPP from NLMSG_DONE.
  absl::Status s = provider_->GetQueueStats("eth0").status();
  EXPECT_EQ(StatusErrno(s), EOPNOTSUPP) << s;
  EXPECT_THAT(s.message(), HasSubstr("eth0"));
}

TEST_F(KernelProviderFakeTest, ReleasedInflightCountsTheDetachedPools) {
  kernel_.set_pool_inflight(5);
  auto prep = provider_->PrepareDevice("eth1", std::vector<uint32_t>{14, 15});
  ASSERT_TRUE(prep.ok());
  auto binding = provider_->BindRx(Rx("eth1", {14, 15}));
  ASSERT_TRUE(binding.ok()) << binding.status();
  const uint32_t id = (*binding)->id();
  binding->reset();  // the unbind: the pools stay, detached
  absl::StatusOr<uint64_t> inflight = provider_->ReleasedInflight(id);
  ASSERT_TRUE(inflight.ok()) << inflight.status();
  EXPECT_EQ(*inflight, 10u);  // two pools, 5 pages each
  EXPECT_EQ(*provider_->ReleasedInflight(id + 1), 0u);  // not ours
  kernel_.ReturnPages(id);
  inflight = provider_->ReleasedInflight(id);
  ASSERT_TRUE(inflight.ok());
  EXPECT_EQ(*inflight, 0u);
}

TEST_F(KernelProviderFakeTest, DataPathIsTheJobsOwnSocket) {
  auto prep = provider_->PrepareDevice("eth1", std::vector<uint32_t>{15});
  ASSERT_TRUE(prep.ok());
  auto binding = provider_->BindRx(Rx("eth1", {15}));
  ASSERT_TRUE(binding.ok());
  ProviderBinding& b = **binding;
  // No provider-made data path: the job's own TCP socket is it.
  EXPECT_FALSE(b.TakeDataPath().has_value());
  EXPECT_EQ(b.region(), nullptr);
}

TEST_F(KernelProviderFakeTest, CheckDmabufUsesTheCommonCheck) {
  absl::StatusOr<DmabufInfo> info = provider_->CheckDmabuf(dmabuf_.borrow());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size_bytes, 1u << 20);
  EXPECT_EQ(StatusErrno(provider_->CheckDmabuf(BorrowedFd(-1)).status()),
            EBADF);
}

TEST_F(KernelProviderFakeTest, BindingsOutliveTheProvider) {
  auto prep = provider_->PrepareDevice("eth1", std::vector<uint32_t>{15});
  ASSERT_TRUE(prep.ok());
  auto binding = provider_->BindRx(Rx("eth1", {15}));
  ASSERT_TRUE(binding.ok());
  provider_.reset();
  EXPECT_EQ(kernel_.bindings().size(), 1u);
  EXPECT_EQ((*binding)->Stats().id, (*binding)->id());
  binding->reset();
  prep->reset();
  EXPECT_THAT(kernel_.bindings(), IsEmpty());
  EXPECT_EQ(kernel_.open_endpoints(), 0);
  EXPECT_EQ(kernel_.device("eth1").tcp_data_split, uapi::kTcpDataSplitDisabled);
}

TEST_F(KernelProviderFakeTest, ConcurrentBindsGetOneSocketEach) {
  auto prep =
      provider_->PrepareDevice("eth1", std::vector<uint32_t>{8, 9, 10, 11});
  ASSERT_TRUE(prep.ok());
  std::vector<std::unique_ptr<ProviderBinding>> bindings(4);
  std::vector<absl::Status> statuses(4);
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto b = provider_->BindRx(Rx("eth1", {8 + i}));
      statuses[i] = b.status();
      if (b.ok()) bindings[i] = *std::move(b);
      (void)provider_->ListDevices();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  std::set<uint64_t> sockets;
  for (const testing::FakeBinding& b : kernel_.bindings()) {
    sockets.insert(b.endpoint);
  }
  EXPECT_EQ(sockets.size(), 4u);
  bindings.clear();
  EXPECT_THAT(kernel_.bindings(), IsEmpty());
}

TEST(KernelProviderFactoryTest, KernelWithoutNetdevFamilyIsNotFound) {
  FakeKernel kernel;
  kernel.set_netdev_family_present(false);
  KernelProviderOptions options;
  options.transport = kernel.transport();
  options.ethtool = kernel.ethtool();
  options.host = kernel.host();
  absl::StatusOr<std::unique_ptr<Provider>> p = CreateKernelProvider(options);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("netdev"));
}

}  // namespace
}  // namespace devmem
