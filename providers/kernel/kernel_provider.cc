#include "providers/kernel/kernel_provider.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "base/uapi.h"
#include "providers/common/dmabuf_check.h"
#include "providers/common/nic_settings.h"
#include "providers/flow.h"
#include "providers/kernel/genl_client.h"
#include "providers/kernel/netdev_family.h"

namespace devmem {
namespace {

using kernel::EthtoolOps;
using kernel::HostOps;
using kernel::NetdevClient;
using kernel::NetlinkTransport;
using kernel::RingsConfig;

// Kernel net_iovs are PAGE_SIZE on every architecture devmem runs on here.
constexpr uint32_t kKernelChunkSize = 4096;

std::string DeviceLabel(const std::string& name, uint32_t ifindex) {
  return absl::StrCat(name, " (ifindex ", ifindex, ")");
}

// "eth0: driver lacks ... (EOPNOTSUPP)" from "eth0 (ifindex 2): bind-rx:
// driver lacks ... (EOPNOTSUPP), bad attribute: ifindex".
std::string CapabilityReason(const std::string& device,
                             const std::string& prefix,
                             const absl::Status& status) {
  absl::string_view text(status.message().data(), status.message().size());
  if (absl::StartsWith(text, prefix)) text.remove_prefix(prefix.size());
  if (size_t cut = text.find(", bad attribute:"); cut != text.npos) {
    text = text.substr(0, cut);
  }
  return absl::StrCat(device, ": ", std::string(text));
}

// The NIC settings a preparation changes, over ethtool (netlink rings,
// ETHTOOL_GRXRINGS and the RSS indirection ioctls).
class EthtoolNicSettings final : public NicSettings {
 public:
  explicit EthtoolNicSettings(std::shared_ptr<EthtoolOps> ethtool)
      : ethtool_(std::move(ethtool)) {}

  absl::StatusOr<HeaderSplitConfig> GetHeaderSplit(
      const std::string& device) override {
    ASSIGN_OR_RETURN(RingsConfig rings, ethtool_->GetRings(device));
    HeaderSplitConfig c;
    c.split = static_cast<HeaderSplit>(rings.tcp_data_split);
    c.hds_thresh = rings.hds_thresh;
    return c;
  }
  absl::Status SetHeaderSplit(const std::string& device, HeaderSplit split,
                              std::optional<uint32_t> hds_thresh) override {
    // HeaderSplit's values are the uapi's ETHTOOL_TCP_DATA_SPLIT_*.
    return ethtool_->SetRings(device, static_cast<uint8_t>(split), hds_thresh);
  }
  absl::StatusOr<uint32_t> GetRxRingCount(const std::string& device) override {
    return ethtool_->GetRxRingCount(device);
  }
  absl::StatusOr<std::vector<uint32_t>> GetRssTable(
      const std::string& device) override {
    return ethtool_->GetRxfhIndir(device);
  }
  absl::Status SetRssTable(const std::string& device,
                           absl::Span<const uint32_t> table) override {
    return ethtool_->SetRxfhIndir(device, table);
  }

 private:
  const std::shared_ptr<EthtoolOps> ethtool_;
};
static_assert(static_cast<uint8_t>(HeaderSplit::kEnabled) ==
                  uapi::kTcpDataSplitEnabled &&
              static_cast<uint8_t>(HeaderSplit::kDisabled) ==
                  uapi::kTcpDataSplitDisabled);

// What the kernel provider shares with the bindings, preparations and rules
// it hands out (they may outlive the Provider object).
class KernelState {
 public:
  KernelState(std::shared_ptr<NetlinkTransport> transport,
              std::shared_ptr<EthtoolOps> ethtool,
              std::shared_ptr<HostOps> host, uint16_t family_id,
              std::unique_ptr<NetdevClient> query)
      : transport_(std::move(transport)),
        ethtool_(std::move(ethtool)),
        host_(std::move(host)),
        family_id_(family_id),
        query_(std::move(query)),
        preparations_(std::make_shared<EthtoolNicSettings>(ethtool_)) {}

  NetlinkTransport& transport() const { return *transport_; }
  EthtoolOps& ethtool() const { return *ethtool_; }
  HostOps& host() const { return *host_; }
  uint16_t family_id() const { return family_id_; }

  // Runs `f` on the shared query socket (dumps); reopens it after a timeout.
  template <typename F>
  auto Query(F f) -> decltype(f(std::declval<NetdevClient&>())) {
    MutexLock lock(query_mu_);
    if (query_ == nullptr) {
      absl::StatusOr<std::unique_ptr<NetdevClient>> client =
          NetdevClient::Open(*transport_, family_id_);
      if (!client.ok()) return client.status();
      query_ = *std::move(client);
    }
    auto result = f(*query_);
    if (!result.ok() && absl::IsUnavailable(result.status())) query_.reset();
    return result;
  }

  void SetCapability(uint32_t ifindex, bool rx, Capability cap) {
    MutexLock lock(mu_);
    (rx ? rx_caps_ : tx_caps_)[ifindex] = std::move(cap);
  }
  Capability GetCapability(uint32_t ifindex, bool rx) {
    MutexLock lock(mu_);
    const auto& caps = rx ? rx_caps_ : tx_caps_;
    auto it = caps.find(ifindex);
    return it == caps.end() ? Capability{} : it->second;
  }

  absl::StatusOr<std::pair<uint64_t, std::string>> Prepare(
      const std::string& device, std::vector<uint32_t> queues);
  void Unprepare(const std::string& device, uint64_t prep_id);

 private:
  const std::shared_ptr<NetlinkTransport> transport_;
  const std::shared_ptr<EthtoolOps> ethtool_;
  const std::shared_ptr<HostOps> host_;
  const uint16_t family_id_;

  Mutex query_mu_;
  std::unique_ptr<NetdevClient> query_ ABSL_GUARDED_BY(query_mu_);

  // Records and restores header split and RSS (providers/common).
  PreparationTracker preparations_;

  Mutex mu_;
  std::map<uint32_t, Capability> rx_caps_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, Capability> tx_caps_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::pair<uint64_t, std::string>> KernelState::Prepare(
    const std::string& device, std::vector<uint32_t> queues) {
  ASSIGN_OR_RETURN(PreparationTracker::Prepared p,
                   preparations_.Prepare(device, std::move(queues)));
  return std::make_pair(p.id, std::move(p.changes));
}

void KernelState::Unprepare(const std::string& device, uint64_t prep_id) {
  // Errors are logged by the tracker; a destructor has no one to tell.
  (void)preparations_.Release(device, prep_id);
}

class KernelPreparation final : public DevicePreparation {
 public:
  KernelPreparation(std::shared_ptr<KernelState> state, std::string device,
                    uint64_t prep_id, std::string describe)
      : state_(std::move(state)),
        device_(std::move(device)),
        prep_id_(prep_id),
        describe_(std::move(describe)) {}
  ~KernelPreparation() override { state_->Unprepare(device_, prep_id_); }

  std::string Describe() const override { return describe_; }

 private:
  const std::shared_ptr<KernelState> state_;
  const std::string device_;
  const uint64_t prep_id_;
  const std::string describe_;
};

class KernelFlowRule final : public FlowRule {
 public:
  KernelFlowRule(std::shared_ptr<KernelState> state, std::string device,
                 uint32_t location)
      : state_(std::move(state)),
        device_(std::move(device)),
        location_(location) {}
  ~KernelFlowRule() override {
    absl::Status s = state_->ethtool().DeleteRule(device_, location_);
    LogLine(s.ok() ? LogLevel::kInfo : LogLevel::kError, "kernel_flow_remove")
        .Kv("device", device_)
        .Kv("rule", absl::StrCat(location_))
        .Kv("status", s.ToString());
  }
  uint32_t rule_id() const override { return location_; }

 private:
  const std::shared_ptr<KernelState> state_;
  const std::string device_;
  const uint32_t location_;
};

absl::StatusOr<kernel::NtupleRule> ToNtupleRule(const std::string& device,
                                                const Flow& flow,
                                                uint32_t queue) {
  if (flow.dst_port == 0) {
    return ErrnoToStatus(EINVAL,
                         absl::StrCat(device, ": flow needs a dst_port"));
  }
  kernel::NtupleRule rule;
  rule.ipv6 = flow.ipv6;
  rule.src_port = flow.src_port;
  rule.dst_port = flow.dst_port;
  rule.queue = queue;
  auto parse =
      [&](const std::string& text, absl::string_view field,
          std::optional<std::array<uint8_t, 16>>& out) -> absl::Status {
    absl::StatusOr<std::optional<std::array<uint8_t, 16>>> addr =
        ParseFlowAddress(text, flow.ipv6, field);
    if (!addr.ok()) return WithContext(addr.status(), device);
    out = *addr;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(parse(flow.src_ip, "src_ip", rule.src_ip));
  RETURN_IF_ERROR(parse(flow.dst_ip, "dst_ip", rule.dst_ip));
  return rule;
}

class KernelBinding final : public ProviderBinding {
 public:
  KernelBinding(std::shared_ptr<KernelState> state,
                std::unique_ptr<NetdevClient> socket, uint32_t id, bool rx,
                std::string device, uint32_t ifindex,
                std::vector<uint32_t> queues)
      : state_(std::move(state)),
        socket_(std::move(socket)),
        id_(id),
        rx_(rx),
        device_(std::move(device)),
        ifindex_(ifindex),
        queues_(std::move(queues)) {}

  ~KernelBinding() override {
    // Closing the socket that made the binding is the unbind.
    socket_.reset();
    DEVMEM_LOG(kInfo, "kernel_unbind")
        .Kv("device", device_)
        .Kv("binding", absl::StrCat(id_))
        .Kv("direction", absl::string_view(rx_ ? "rx" : "tx"));
  }

  uint32_t id() const override { return id_; }
  bool rx() const override { return rx_; }
  const std::string& device() const override { return device_; }
  const std::vector<uint32_t>& queue_ids() const override { return queues_; }

  absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(const Flow& flow) override {
    if (!rx_ || queues_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          device_, ": binding ", id_, " is a TX binding: flows steer RX"));
    }
    ASSIGN_OR_RETURN(kernel::NtupleRule rule,
                     ToNtupleRule(device_, flow, queues_.front()));
    ASSIGN_OR_RETURN(uint32_t location,
                     state_->ethtool().InsertRule(device_, rule));
    DEVMEM_LOG(kInfo, "kernel_flow_add")
        .Kv("device", device_)
        .Kv("binding", absl::StrCat(id_))
        .Kv("rule", absl::StrCat(location))
        .Kv("queue", absl::StrCat(rule.queue))
        .Kv("dst_port", absl::StrCat(flow.dst_port));
    return std::make_unique<KernelFlowRule>(state_, device_, location);
  }

  BindingStats Stats() const override {
    BindingStats stats;
    stats.id = id_;
    absl::StatusOr<std::vector<kernel::PagePoolRecord>> pools =
        state_->Query([](NetdevClient& c) { return c.DumpPagePools(); });
    if (pools.ok()) {
      for (const kernel::PagePoolRecord& p : *pools) {
        if (p.dmabuf != id_) continue;
        stats.kernel_inflight =
            stats.kernel_inflight.value_or(0) + p.inflight.value_or(0);
        if (p.detach_time.has_value()) {
          stats.kernel_detach_time =
              std::max(stats.kernel_detach_time.value_or(0), *p.detach_time);
        }
      }
    }
    if (!rx_) return stats;
    absl::StatusOr<std::vector<kernel::QstatsRecord>> qstats =
        state_->Query([this](NetdevClient& c) {
          return c.DumpQstats(ifindex_, /*per_queue=*/true);
        });
    if (!qstats.ok()) return stats;
    for (const kernel::QstatsRecord& r : *qstats) {
      if (r.queue_type != uapi::kNetdevQueueTypeRx || !r.queue_id ||
          std::find(queues_.begin(), queues_.end(), *r.queue_id) ==
              queues_.end()) {
        continue;
      }
      stats.bytes_received += r.Counter(uapi::kNetdevAQstatsRxBytes);
      stats.alloc_fail += r.Counter(uapi::kNetdevAQstatsRxAllocFail);
    }
    return stats;
  }

  std::shared_ptr<Region> region() const override { return nullptr; }

 private:
  const std::shared_ptr<KernelState> state_;
  std::unique_ptr<NetdevClient> socket_;  // the binding's own socket
  const uint32_t id_;
  const bool rx_;
  const std::string device_;
  const uint32_t ifindex_;
  const std::vector<uint32_t> queues_;
};

class KernelProvider final : public Provider {
 public:
  explicit KernelProvider(std::shared_ptr<KernelState> state)
      : state_(std::move(state)) {}

  std::string_view name() const override { return "kernel"; }

  absl::StatusOr<std::vector<DeviceInfo>> ListDevices() override;
  absl::StatusOr<uint64_t> ReleasedInflight(uint32_t binding_id) override {
    ASSIGN_OR_RETURN(
        std::vector<kernel::PagePoolRecord> pools,
        state_->Query([](NetdevClient& c) { return c.DumpPagePools(); }));
    uint64_t inflight = 0;
    for (const kernel::PagePoolRecord& p : pools) {
      if (p.dmabuf == binding_id) inflight += p.inflight.value_or(0);
    }
    return inflight;
  }

  absl::StatusOr<DmabufInfo> CheckDmabuf(BorrowedFd fd) override {
    return CheckDmabufFd(fd);
  }
  absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
      std::string_view device, absl::Span<const uint32_t> rx_queues) override;
  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
      const RxBindSpec& spec) override;
  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
      const TxBindSpec& spec) override;
  absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      std::string_view device) override;

 private:
  absl::StatusOr<std::unique_ptr<ProviderBinding>> Bind(
      bool rx, const std::string& device, BorrowedFd dmabuf,
      std::vector<uint32_t> queues);

  const std::shared_ptr<KernelState> state_;
};

absl::StatusOr<std::vector<DeviceInfo>> KernelProvider::ListDevices() {
  ASSIGN_OR_RETURN(std::vector<kernel::DevRecord> devs,
                   state_->Query([](NetdevClient& c) { return c.DumpDevs(); }));
  ASSIGN_OR_RETURN(std::vector<kernel::QueueRecord> queues,
                   state_->Query([](NetdevClient& c) {
                     return c.DumpQueues(std::nullopt);
                   }));
  std::vector<DeviceInfo> out;
  for (const kernel::DevRecord& dev : devs) {
    absl::StatusOr<std::string> name = state_->host().IndexToName(dev.ifindex);
    if (!name.ok()) continue;  // went away since the dump
    DeviceInfo info;
    info.name = *name;
    info.ifindex = dev.ifindex;
    info.up = state_->host().IsUp(info.name).value_or(false);
    std::vector<QueueInfo> rx, tx;
    for (const kernel::QueueRecord& q : queues) {
      if (q.ifindex != dev.ifindex) continue;
      QueueInfo qi;
      qi.id = q.id;
      qi.rx = q.type == uapi::kNetdevQueueTypeRx;
      qi.binding_id = q.dmabuf;
      qi.napi_id = q.napi_id;
      (qi.rx ? rx : tx).push_back(qi);
    }
    if (rx.empty() && tx.empty()) {
      // queue-get skips devices that are down: sysfs still lists them.
      absl::StatusOr<kernel::QueueCounts> counts =
          state_->host().SysfsQueueCounts(info.name);
      if (counts.ok()) {
        for (uint32_t i = 0; i < counts->rx; ++i) rx.push_back({.id = i});
        for (uint32_t i = 0; i < counts->tx; ++i) {
          tx.push_back({.id = i, .rx = false});
        }
      } else {
        DEVMEM_LOG(kWarning, "kernel_queue_count_unknown")
            .Kv("device", info.name)
            .Kv("status", counts.status().ToString());
      }
    }
    auto by_id = [](const QueueInfo& a, const QueueInfo& b) {
      return a.id < b.id;
    };
    std::sort(rx.begin(), rx.end(), by_id);
    std::sort(tx.begin(), tx.end(), by_id);
    info.rx_queues = static_cast<uint32_t>(rx.size());
    info.tx_queues = static_cast<uint32_t>(tx.size());
    info.queues = std::move(rx);
    info.queues.insert(info.queues.end(), tx.begin(), tx.end());
    info.numa_node = state_->host().NumaNode(info.name).value_or(-1);
    absl::StatusOr<RingsConfig> rings = state_->ethtool().GetRings(info.name);
    if (rings.ok()) {
      switch (rings->tcp_data_split) {
        case uapi::kTcpDataSplitDisabled:
          info.header_split = HeaderSplit::kDisabled;
          break;
        case uapi::kTcpDataSplitEnabled:
          info.header_split = HeaderSplit::kEnabled;
          break;
        default:
          info.header_split = HeaderSplit::kUnknown;
      }
      info.hds_thresh = rings->hds_thresh.value_or(0);
    }
    info.rx_capability = state_->GetCapability(dev.ifindex, /*rx=*/true);
    info.tx_capability = state_->GetCapability(dev.ifindex, /*rx=*/false);
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<DevicePreparation>>
KernelProvider::PrepareDevice(std::string_view device,
                              absl::Span<const uint32_t> rx_queues) {
  const std::string name(device);
  RETURN_IF_ERROR(state_->host().NameToIndex(name).status());
  ASSIGN_OR_RETURN(
      auto prepared,
      state_->Prepare(
          name, std::vector<uint32_t>(rx_queues.begin(), rx_queues.end())));
  DEVMEM_LOG(kInfo, "kernel_prepare")
      .Kv("device", name)
      .Kv("changes", prepared.second);
  return std::make_unique<KernelPreparation>(state_, name, prepared.first,
                                             std::move(prepared.second));
}

absl::StatusOr<std::unique_ptr<ProviderBinding>> KernelProvider::BindRx(
    const RxBindSpec& spec) {
  if (spec.chunk_size != kKernelChunkSize) {
    return ErrnoToStatus(
        EINVAL,
        absl::StrCat(spec.device, ": bind-rx chunk_size ", spec.chunk_size,
                     ": kernel net_iovs are PAGE_SIZE (", kKernelChunkSize,
                     " bytes)"));
  }
  if (spec.queue_ids.empty()) {
    return ErrnoToStatus(EINVAL,
                         absl::StrCat(spec.device, ": bind-rx needs queues"));
  }
  return Bind(/*rx=*/true, spec.device, spec.dmabuf, spec.queue_ids);
}

absl::StatusOr<std::unique_ptr<ProviderBinding>> KernelProvider::BindTx(
    const TxBindSpec& spec) {
  return Bind(/*rx=*/false, spec.device, spec.dmabuf, {});
}

absl::StatusOr<std::unique_ptr<ProviderBinding>> KernelProvider::Bind(
    bool rx, const std::string& device, BorrowedFd dmabuf,
    std::vector<uint32_t> queues) {
  const char* op = rx ? "bind-rx" : "bind-tx";
  if (!dmabuf.ok()) {
    return ErrnoToStatus(EBADF, absl::StrCat(device, ": ", op, " dmabuf fd"));
  }
  ASSIGN_OR_RETURN(uint32_t ifindex, state_->host().NameToIndex(device));
  const std::string label = DeviceLabel(device, ifindex);
  // A socket of its own: closing it is this binding's unbind.
  ASSIGN_OR_RETURN(
      std::unique_ptr<NetdevClient> socket,
      NetdevClient::Open(state_->transport(), state_->family_id()));
  absl::StatusOr<uint32_t> id =
      rx ? socket->BindRx(label, ifindex, dmabuf, queues)
         : socket->BindTx(label, ifindex, dmabuf);
  if (!id.ok()) {
    if (StatusErrno(id.status()) == EOPNOTSUPP) {
      Capability cap;
      cap.state = Capability::State::kUnsupported;
      cap.reason = CapabilityReason(device, absl::StrCat(label, ": ", op, ": "),
                                    id.status());
      state_->SetCapability(ifindex, rx, std::move(cap));
    }
    DEVMEM_LOG(kWarning, rx ? "kernel_bind_rx_failed" : "kernel_bind_tx_failed")
        .Kv("device", device)
        .Kv("status", id.status().ToString());
    return id.status();
  }
  Capability cap;
  cap.state = Capability::State::kSupported;
  cap.reason = absl::StrCat(op, " succeeded (binding ", *id, ")");
  state_->SetCapability(ifindex, rx, std::move(cap));
  DEVMEM_LOG(kInfo, rx ? "kernel_bind_rx" : "kernel_bind_tx")
      .Kv("device", device)
      .Kv("binding", absl::StrCat(*id))
      .Kv("queues", absl::StrJoin(queues, ","));
  return std::make_unique<KernelBinding>(state_, std::move(socket), *id, rx,
                                         device, ifindex, std::move(queues));
}

absl::StatusOr<std::vector<QueueStats>> KernelProvider::GetQueueStats(
    std::string_view device) {
  const std::string name(device);
  ASSIGN_OR_RETURN(uint32_t ifindex, state_->host().NameToIndex(name));
  absl::StatusOr<std::vector<kernel::QstatsRecord>> records =
      state_->Query([ifindex](NetdevClient& c) {
        return c.DumpQstats(ifindex, /*per_queue=*/true);
      });
  if (!records.ok()) return WithContext(records.status(), name);
  std::vector<QueueStats> out;
  for (const kernel::QstatsRecord& r : *records) {
    if (!r.queue_id.has_value() || !r.queue_type.has_value()) continue;
    QueueStats s;
    s.queue_id = *r.queue_id;
    s.rx = *r.queue_type == uapi::kNetdevQueueTypeRx;
    using namespace uapi;  // NOLINT: the qstats attribute ids
    s.packets =
        r.Counter(s.rx ? kNetdevAQstatsRxPackets : kNetdevAQstatsTxPackets);
    s.bytes = r.Counter(s.rx ? kNetdevAQstatsRxBytes : kNetdevAQstatsTxBytes);
    s.alloc_fail = s.rx ? r.Counter(kNetdevAQstatsRxAllocFail) : 0;
    s.hw_drops = r.Counter(s.rx ? kNetdevAQstatsRxHwDrops
                                : uapi::kNetdevAQstatsTxHwDrops);
    out.push_back(s);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Provider>> CreateKernelProvider(
    const KernelProviderOptions& options) {
  std::shared_ptr<NetlinkTransport> transport =
      options.transport ? options.transport : kernel::RealNetlinkTransport();
  std::shared_ptr<EthtoolOps> ethtool =
      options.ethtool ? options.ethtool
                      : std::shared_ptr<EthtoolOps>(
                            kernel::CreateRealEthtoolOps(transport));
  std::shared_ptr<HostOps> host =
      options.host ? options.host
                   : std::shared_ptr<HostOps>(kernel::CreateRealHostOps());
  ASSIGN_OR_RETURN(std::unique_ptr<kernel::GenlClient> genl,
                   kernel::GenlClient::Open(*transport));
  absl::StatusOr<kernel::GenlFamily> family =
      genl->ResolveFamily(uapi::kNetdevFamilyName);
  if (!family.ok()) {
    return WithContext(family.status(),
                       "kernel provider (the netdev family needs Linux 6.3+)");
  }
  if (!family->HasOp(uapi::kNetdevCmdBindRx)) {
    return ErrnoToStatus(EOPNOTSUPP,
                         "kernel provider: netdev has no bind-rx (devmem TCP "
                         "needs Linux 6.12+ with CONFIG_NET_DEVMEM)");
  }
  DEVMEM_LOG(kInfo, "kernel_provider_ready")
      .Kv("netdev_family", absl::StrCat(family->id))
      .Kv("bind_tx", absl::string_view(
                         family->HasOp(uapi::kNetdevCmdBindTx) ? "yes" : "no"));
  auto query = std::make_unique<NetdevClient>(std::move(genl), family->id);
  auto state = std::make_shared<KernelState>(
      std::move(transport), std::move(ethtool), std::move(host), family->id,
      std::move(query));
  return std::make_unique<KernelProvider>(std::move(state));
}

}  // namespace devmem
