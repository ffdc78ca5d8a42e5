// The kernel provider against this machine's live kernel, inside a private
// network namespace (and mount namespace, for a matching /sys) that the test
// creates on a thread of its own, with a veth pair it creates and deletes.
// No NIC here supports devmem: bind-rx answers EOPNOTSUPP for every device and
// ENODEV for an unknown ifindex, which is what these tests check. They skip
// (never fail) where the machine gives no CAP_NET_ADMIN, namespaces or veth.
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/kernel/ethtool.h"
#include "providers/kernel/kernel_provider.h"
#include "providers/kernel/netdev_family.h"
#include "providers/kernel/netlink_message.h"
#include "providers/kernel/netlink_transport.h"

namespace devmem {
namespace {

using ::testing::HasSubstr;

constexpr char kUp[] = "dmv0";    // up, 4 RX / 4 TX queues
constexpr char kDown[] = "dmv1";  // its peer, left down, 2 RX / 3 TX

// One rtnetlink request answered by an ACK.
absl::Status Rtnl(std::vector<uint8_t> request) {
  auto endpoint = kernel::RealNetlinkTransport()->Open(NETLINK_ROUTE);
  if (!endpoint.ok()) return endpoint.status();
  kernel::SetSeq(request, 1);
  if (absl::Status s = (*endpoint)->Send(request); !s.ok()) return s;
  std::vector<uint8_t> buf(16384);
  absl::StatusOr<size_t> n = (*endpoint)->Recv(absl::MakeSpan(buf));
  if (!n.ok()) return n.status();
  auto msgs = kernel::SplitMessages(absl::MakeConstSpan(buf.data(), *n));
  if (!msgs.ok()) return msgs.status();
  for (const kernel::NlMsg& m : *msgs) {
    if (m.type != NLMSG_ERROR) continue;
    auto err = kernel::ParseNlError(m);
    if (!err.ok()) return err.status();
    if (err->errnum != 0) {
      return ErrnoToStatus(err->errnum,
                           absl::StrCat("rtnetlink: ", err->message));
    }
    return absl::OkStatus();
  }
  return absl::InternalError("rtnetlink: no ACK");
}

std::vector<uint8_t> IfInfo(int index, unsigned flags, unsigned change) {
  ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = flags;
  ifi.ifi_change = change;
  const auto* p = reinterpret_cast<const uint8_t*>(&ifi);
  return std::vector<uint8_t>(p, p + sizeof(ifi));
}

absl::Status CreateVethPair() {
  kernel::NlBuilder b(RTM_NEWLINK,
                      NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  b.PutRaw(IfInfo(0, 0, 0));
  b.PutString(IFLA_IFNAME, kUp);
  b.PutU32(IFLA_NUM_TX_QUEUES, 4);
  b.PutU32(IFLA_NUM_RX_QUEUES, 4);
  const size_t info = b.BeginNest(IFLA_LINKINFO);
  b.PutString(IFLA_INFO_KIND, "veth");
  const size_t data = b.BeginNest(IFLA_INFO_DATA);
  const size_t peer = b.BeginNest(VETH_INFO_PEER);
  b.PutRaw(IfInfo(0, 0, 0));
  b.PutString(IFLA_IFNAME, kDown);
  b.PutU32(IFLA_NUM_TX_QUEUES, 3);
  b.PutU32(IFLA_NUM_RX_QUEUES, 2);
  b.EndNest(peer);
  b.EndNest(data);
  b.EndNest(info);
  if (absl::Status s = Rtnl(std::move(b).Finish()); !s.ok()) return s;
  kernel::NlBuilder up(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  up.PutRaw(IfInfo(static_cast<int>(::if_nametoindex(kUp)), IFF_UP, IFF_UP));
  return Rtnl(std::move(up).Finish());
}

absl::Status DeleteVethPair() {
  kernel::NlBuilder b(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
  b.PutRaw(IfInfo(0, 0, 0));
  b.PutString(IFLA_IFNAME, kUp);
  return Rtnl(std::move(b).Finish());
}

// Runs `body` on a thread in a fresh network and mount namespace (sysfs
// remounted there, as `ip netns exec` does) holding the veth pair. Returns
// why it could not, for GTEST_SKIP; "" when `body` ran. Everything the thread
// created goes away with it: the namespaces die when the thread exits.
std::string RunInFreshNetns(const std::function<void()>& body) {
  std::string skip;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
      skip = ErrnoStatus("unshare(CLONE_NEWNET|CLONE_NEWNS)").ToString();
      return;
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) {
      skip = ErrnoStatus("remount /sys in the new namespace").ToString();
      return;
    }
    if (absl::Status s = CreateVethPair(); !s.ok()) {
      skip = absl::StrCat("cannot create a veth pair: ", s.ToString());
      return;
    }
    body();
    absl::Status s = DeleteVethPair();
    EXPECT_TRUE(s.ok()) << s;
  });
  t.join();
  return skip;
}

std::unique_ptr<Provider> LiveProvider(std::string* skip) {
  absl::StatusOr<std::unique_ptr<Provider>> p = CreateKernelProvider({});
  if (!p.ok()) {
    *skip = absl::StrCat("no devmem-capable netdev family: ",
                         p.status().ToString());
    return nullptr;
  }
  return *std::move(p);
}

uint32_t CountSysfs(const std::string& dev, const std::string& prefix) {
  uint32_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net/" +
                                                           dev + "/queues")) {
    if (absl::StartsWith(e.path().filename().string(), prefix)) ++n;
  }
  return n;
}

UniqueFd Memfd() { return UniqueFd(::memfd_create("live-test", MFD_CLOEXEC)); }

TEST(KernelLiveTest, DevicesAndQueueCountsMatchSysfs) {
  std::string skip;
  const std::string why = RunInFreshNetns([&] {
    std::unique_ptr<Provider> provider = LiveProvider(&skip);
    if (provider == nullptr) return;
    absl::StatusOr<std::vector<DeviceInfo>> devs = provider->ListDevices();
    ASSERT_TRUE(devs.ok()) << devs.status();
    std::set<std::string> names;
    for (const DeviceInfo& d : *devs) {
      names.insert(d.name);
      SCOPED_TRACE(d.name);
      EXPECT_EQ(d.rx_queues, CountSysfs(d.name, "rx-"));
      EXPECT_EQ(d.tx_queues, CountSysfs(d.name, "tx-"));
      EXPECT_EQ(d.queues.size(), d.rx_queues + d.tx_queues);
      EXPECT_EQ(d.ifindex, ::if_nametoindex(d.name.c_str()));
      EXPECT_EQ(d.rx_capability.state, Capability::State::kUnknown);
      if (d.name == kUp) {
        EXPECT_TRUE(d.up);
        EXPECT_EQ(d.rx_queues, 4u);
        EXPECT_EQ(d.tx_queues, 4u);
        EXPECT_EQ(d.header_split, HeaderSplit::kUnknown);  // veth: no rings
      }
      if (d.name == kDown) {
        EXPECT_FALSE(d.up);
        EXPECT_EQ(d.rx_queues, 2u);  // sysfs: queue-get skips down devices
        EXPECT_EQ(d.tx_queues, 3u);
      }
    }
    EXPECT_EQ(names, (std::set<std::string>{"lo", kUp, kDown}));
  });
  if (!why.empty()) GTEST_SKIP() << why;
  if (!skip.empty()) GTEST_SKIP() << skip;
}

TEST(KernelLiveTest, BindRxOnVethSaysTheDriverLacksTheQueueApi) {
  std::string skip;
  const std::string why = RunInFreshNetns([&] {
    std::unique_ptr<Provider> provider = LiveProvider(&skip);
    if (provider == nullptr) return;
    UniqueFd buf = Memfd();
    RxBindSpec spec;
    spec.device = kUp;
    spec.queue_ids = {0, 1};
    spec.dmabuf = buf.borrow();
    absl::Status s = provider->BindRx(spec).status();
    std::cout << "live bind-rx on veth: " << s << "\n";
    EXPECT_TRUE(s.code() == absl::StatusCode::kUnimplemented ||
                s.code() == absl::StatusCode::kFailedPrecondition)
        << s;
    EXPECT_EQ(StatusErrno(s), EOPNOTSUPP);
    EXPECT_THAT(s.message(), HasSubstr(kUp));
    EXPECT_THAT(s.message(),
                HasSubstr("driver lacks the queue management API"));

    absl::StatusOr<std::vector<DeviceInfo>> devs = provider->ListDevices();
    ASSERT_TRUE(devs.ok()) << devs.status();
    for (const DeviceInfo& d : *devs) {
      if (d.name != kUp) continue;
      EXPECT_EQ(d.rx_capability.state, Capability::State::kUnsupported);
      EXPECT_EQ(d.rx_capability.reason,
                absl::StrCat(kUp,
                             ": driver lacks the queue management API "
                             "needed for devmem (EOPNOTSUPP)"));
    }
  });
  if (!why.empty()) GTEST_SKIP() << why;
  if (!skip.empty()) GTEST_SKIP() << skip;
}

TEST(KernelLiveTest, UnknownDeviceAndIfindexAreNotFound) {
  std::string skip;
  const std::string why = RunInFreshNetns([&] {
    std::unique_ptr<Provider> provider = LiveProvider(&skip);
    if (provider == nullptr) return;
    UniqueFd buf = Memfd();
    RxBindSpec spec;
    spec.device = "nosuch0";
    spec.queue_ids = {0};
    spec.dmabuf = buf.borrow();
    absl::Status s = provider->BindRx(spec).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;

    // The kernel's own answer for an ifindex that does not exist.
    auto client = kernel::NetdevClient::Open(*kernel::RealNetlinkTransport(),
                                             std::nullopt);
    ASSERT_TRUE(client.ok()) << client.status();
    s = (*client)->BindRx("ifindex 9999", 9999, buf.borrow(), {0}).status();
    std::cout << "live bind-rx on ifindex 9999: " << s << "\n";
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
    EXPECT_EQ(StatusErrno(s), ENODEV);
    s = (*client)->DumpQueues(9999).status();
    EXPECT_EQ(StatusErrno(s), ENODEV) << s;  // from the NLMSG_DONE payload
  });
  if (!why.empty()) GTEST_SKIP() << why;
  if (!skip.empty()) GTEST_SKIP() << skip;
}

TEST(KernelLiveTest, BindTxIsEopnotsupp) {
  std::string skip;
  const std::string why = RunInFreshNetns([&] {
    std::unique_ptr<Provider> provider = LiveProvider(&skip);
    if (provider == nullptr) return;
    UniqueFd buf = Memfd();
    TxBindSpec spec;
    spec.device = kUp;
    spec.dmabuf = buf.borrow();
    absl::Status s = provider->BindTx(spec).status();
    std::cout << "live bind-tx on veth: " << s << "\n";
    EXPECT_EQ(StatusErrno(s), EOPNOTSUPP) << s;
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
    EXPECT_THAT(s.message(), HasSubstr("Driver does not support netmem TX"));
  });
  if (!why.empty()) GTEST_SKIP() << why;
  if (!skip.empty()) GTEST_SKIP() << skip;
}

TEST(KernelLiveTest, PreparationAndStatsOnVethReportTheDriversLimits) {
  std::string skip;
  const std::string why = RunInFreshNetns([&] {
    std::unique_ptr<Provider> provider = LiveProvider(&skip);
    if (provider == nullptr) return;
    const uint32_t queue = 3;
    absl::Status s =
        provider->PrepareDevice(kUp, absl::MakeConstSpan(&queue, 1)).status();
    std::cout << "live prepare on veth: " << s << "\n";
    EXPECT_EQ(StatusErrno(s), EOPNOTSUPP) << s;
    EXPECT_THAT(s.message(), HasSubstr("rings-get"));
    absl::StatusOr<std::vector<QueueStats>> qs = provider->GetQueueStats(kUp);
    std::cout << "live qstats on veth: " << qs.status() << "\n";
    if (!qs.ok()) {
      EXPECT_EQ(StatusErrno(qs.status()), EOPNOTSUPP);
    }
    // Plain dumps work unprivileged and unconditionally.
    auto client = kernel::NetdevClient::Open(*kernel::RealNetlinkTransport(),
                                             std::nullopt);
    ASSERT_TRUE(client.ok());
    EXPECT_TRUE((*client)->DumpNapis().ok());
    EXPECT_TRUE((*client)->DumpPagePools().ok());
    EXPECT_TRUE((*client)->DumpDevs().ok());
  });
  if (!why.empty()) GTEST_SKIP() << why;
  if (!skip.empty()) GTEST_SKIP() << skip;
}

TEST(KernelLiveTest, HostNamespaceDevicesMatchSysfsAndEthtoolAnswers) {
  // Read-only: lists the devices of the namespace the test runs in.
  std::set<std::string> indexed;
  if (struct if_nameindex* all = ::if_nameindex()) {
    for (struct if_nameindex* i = all; i->if_index != 0; ++i) {
      indexed.insert(i->if_name);
    }
    ::if_freenameindex(all);
  }
  std::set<std::string> in_sysfs;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/sys/class/net", ec)) {
    in_sysfs.insert(e.path().filename().string());
  }
  if (ec || indexed != in_sysfs) {
    GTEST_SKIP() << "/sys/class/net does not show this network namespace";
  }
  std::string skip;
  std::unique_ptr<Provider> provider = LiveProvider(&skip);
  if (provider == nullptr) GTEST_SKIP() << skip;
  absl::StatusOr<std::vector<DeviceInfo>> devs = provider->ListDevices();
  ASSERT_TRUE(devs.ok()) << devs.status();
  std::set<std::string> listed;
  std::unique_ptr<kernel::EthtoolOps> ethtool =
      kernel::CreateRealEthtoolOps(kernel::RealNetlinkTransport());
  for (const DeviceInfo& d : *devs) {
    SCOPED_TRACE(d.name);
    listed.insert(d.name);
    EXPECT_EQ(d.rx_queues, CountSysfs(d.name, "rx-"));
    EXPECT_EQ(d.tx_queues, CountSysfs(d.name, "tx-"));
    // ethtool rings-get answers or says the driver cannot (lo, ifb).
    absl::StatusOr<kernel::RingsConfig> rings = ethtool->GetRings(d.name);
    std::cout << d.name << " up=" << d.up << " rx=" << d.rx_queues
              << " tx=" << d.tx_queues << " numa=" << d.numa_node
              << " rings-get: " << rings.status() << "\n";
    if (!rings.ok()) {
      EXPECT_EQ(StatusErrno(rings.status()), EOPNOTSUPP) << rings.status();
    }
  }
  EXPECT_EQ(listed, indexed);
}

// What a forked child saw.
struct ChildResult {
  int bind_rx_code = -1;
  int bind_rx_errno = -1;
  int bind_tx_errno = -1;
  char message[400] = {};
};

enum class Drop { kCapability, kSetuidNobody };

// Forks a child that gives up CAP_NET_ADMIN (libcap) or becomes nobody, then
// tries bind-rx and bind-tx on lo. EPERM is checked before anything else.
ChildResult RunUnprivileged(Drop how, std::string* skip) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    *skip = "pipe2 failed";
    return {};
  }
  UniqueFd rd(fds[0]), wr(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) {
    *skip = "fork failed";
    return {};
  }
  if (pid == 0) {
    ChildResult r;
    if (how == Drop::kCapability) {
      cap_t caps = cap_get_proc();
      const cap_value_t admin = CAP_NET_ADMIN;
      if (caps == nullptr ||
          cap_set_flag(caps, CAP_EFFECTIVE, 1, &admin, CAP_CLEAR) != 0 ||
          cap_set_flag(caps, CAP_PERMITTED, 1, &admin, CAP_CLEAR) != 0 ||
          cap_set_proc(caps) != 0) {
        ::_exit(2);
      }
      cap_free(caps);
    } else if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(2);
    }
    absl::StatusOr<std::unique_ptr<Provider>> provider =
        CreateKernelProvider({});
    if (!provider.ok()) ::_exit(3);
    UniqueFd buf(::memfd_create("unpriv", MFD_CLOEXEC));
    RxBindSpec rx;
    rx.device = "lo";
    rx.queue_ids = {0};
    rx.dmabuf = buf.borrow();
    absl::Status s = (*provider)->BindRx(rx).status();
    r.bind_rx_code = static_cast<int>(s.code());
    r.bind_rx_errno = StatusErrno(s);
    std::strncpy(r.message, std::string(s.message()).c_str(),
                 sizeof(r.message) - 1);
    TxBindSpec tx;
    tx.device = "lo";
    tx.dmabuf = buf.borrow();
    r.bind_tx_errno = StatusErrno((*provider)->BindTx(tx).status());
    const bool ok = ::write(wr.get(), &r, sizeof(r)) == sizeof(r);
    ::_exit(ok ? 0 : 4);
  }
  wr.reset();
  ChildResult r;
  const ssize_t n = ::read(rd.get(), &r, sizeof(r));
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (n != sizeof(r)) {
    *skip = absl::StrCat("the unprivileged child could not run (exit ",
                         WEXITSTATUS(wstatus), ")");
  }
  return r;
}

TEST(KernelLiveTest, WithoutCapNetAdminBindRxIsPermissionDenied) {
  std::string skip;
  ChildResult r = RunUnprivileged(Drop::kCapability, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  std::cout << "live bind-rx without CAP_NET_ADMIN: " << r.message << "\n";
  EXPECT_EQ(r.bind_rx_code,
            static_cast<int>(absl::StatusCode::kPermissionDenied))
      << r.message;
  EXPECT_EQ(r.bind_rx_errno, EPERM);
  // bind-tx has no permission check at all: the driver answers.
  EXPECT_EQ(r.bind_tx_errno, EOPNOTSUPP);
}

TEST(KernelLiveTest, NobodyGetsPermissionDenied) {
  std::string skip;
  ChildResult r = RunUnprivileged(Drop::kSetuidNobody, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  EXPECT_EQ(r.bind_rx_code,
            static_cast<int>(absl::StatusCode::kPermissionDenied))
      << r.message;
  EXPECT_EQ(r.bind_rx_errno, EPERM);
  EXPECT_EQ(r.bind_tx_errno, EOPNOTSUPP);
}

}  // namespace
}  // namespace devmem
