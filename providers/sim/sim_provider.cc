#include "providers/sim/sim_provider.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "providers/common/dmabuf_check.h"
#include "providers/flow.h"
#include "providers/sim/internal/mapping.h"
#include "providers/sim/internal/rx_path.h"
#include "providers/sim/internal/tx_path.h"
#include "providers/sim/sim_spec.h"

namespace devmem {
namespace sim_internal {
namespace {

constexpr uint32_t kFirstIfindex = 1000;

const char* HdsName(HeaderSplit h) {
  switch (h) {
    case HeaderSplit::kUnknown:
      return "auto";
    case HeaderSplit::kDisabled:
      return "off";
    case HeaderSplit::kEnabled:
      return "on";
  }
  return "?";
}

// "0-13" / "0-3,6-15" / "none".
std::string FormatQueueSet(const std::vector<bool>& set) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < set.size();) {
    if (!set[i]) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < set.size() && set[j + 1]) ++j;
    parts.push_back(i == j ? absl::StrCat(i) : absl::StrCat(i, "-", j));
    i = j + 1;
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ",");
}

}  // namespace

// The simulated kernel + NIC state shared by the provider, its bindings,
// preparations and flow rules. All fields are guarded by mu_; the data paths
// (RxPath/TxPath) never take it.
class SimKernel {
 public:
  struct LiveBinding {
    uint32_t id = 0;
    bool rx = true;
    std::vector<uint32_t> queues;
    RxPath* rx_path = nullptr;  // null until attached / after detach
    TxPath* tx_path = nullptr;
  };
  struct Saved {
    HeaderSplit hds;
    uint32_t hds_thresh;
    std::vector<bool> rss;
  };
  struct Device {
    SimDeviceSpec spec;
    uint32_t ifindex = 0;
    bool up = true;
    HeaderSplit hds = HeaderSplit::kUnknown;
    uint32_t hds_thresh = 0;
    bool hds_supported = true;
    std::vector<bool> rss;                          // per RX queue
    std::vector<std::optional<uint32_t>> rx_bound;  // binding id per RX queue
    std::vector<QueueStats> rx_totals;  // folded in from released bindings
    std::vector<QueueStats> tx_totals;
    std::map<uint64_t, std::vector<uint32_t>> preps;  // prep id -> queues
    std::optional<Saved> saved;  // settings before the first preparation
    std::map<uint32_t, SimFlowRuleInfo> flows;
    uint32_t next_rule = 1;
    std::vector<LiveBinding> bindings;

    bool AnyBoundLocked() const {
      return std::any_of(rx_bound.begin(), rx_bound.end(),
                         [](const auto& b) { return b.has_value(); });
    }
  };

  explicit SimKernel(std::vector<SimDeviceSpec> specs) {
    uint32_t ifindex = kFirstIfindex;
    for (SimDeviceSpec& s : specs) {
      Device d;
      d.ifindex = ifindex++;
      d.up = s.link_up;
      d.hds = s.header_split;
      d.hds_thresh = s.hds_thresh;
      d.hds_supported = s.header_split_supported;
      d.rss.assign(s.rx_queues, true);
      d.rx_bound.resize(s.rx_queues);
      d.rx_totals.resize(s.rx_queues);
      d.tx_totals.resize(s.tx_queues);
      for (uint32_t q = 0; q < s.rx_queues; ++q) {
        d.rx_totals[q].queue_id = q;
        d.rx_totals[q].rx = true;
      }
      for (uint32_t q = 0; q < s.tx_queues; ++q) {
        d.tx_totals[q].queue_id = q;
        d.tx_totals[q].rx = false;
      }
      d.spec = std::move(s);
      devices_.push_back(std::move(d));
    }
  }

  Mutex mu_;

  Device* FindLocked(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Device& d : devices_) {
      if (d.spec.name == name) return &d;
    }
    return nullptr;
  }
  absl::StatusOr<Device*> GetLocked(absl::string_view name,
                                    absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Device* d = FindLocked(name);
    if (d == nullptr) {
      return ErrnoToStatus(ENODEV,
                           absl::StrCat(name, ": ", op, ": no such device"));
    }
    return d;
  }
  std::vector<Device>& devices() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return devices_;
  }

  // Binding ids: global, cyclic from 1, never 0, skipping live ones (the
  // kernel's xa_alloc_cyclic over [1, U32_MAX]).
  uint32_t AllocIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (true) {
      const uint32_t id = next_id_;
      next_id_ = next_id_ == UINT32_MAX ? 1 : next_id_ + 1;
      if (live_ids_.insert(id).second) return id;
    }
  }
  void FreeIdLocked(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    live_ids_.erase(id);
  }
  uint64_t NextPrepIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return next_prep_id_++;
  }

  // Applies the union of the live preparations' queues to RSS.
  static void ApplyRssLocked(Device& d) {
    d.rss = d.saved ? d.saved->rss : d.rss;
    for (const auto& [id, queues] : d.preps) {
      for (uint32_t q : queues) d.rss[q] = false;
    }
  }

  void Unprepare(const std::string& device, uint64_t prep_id) {
    MutexLock lock(mu_);
    Device* d = FindLocked(device);
    if (d == nullptr || d->preps.erase(prep_id) == 0) return;
    if (!d->preps.empty()) {
      ApplyRssLocked(*d);
      return;
    }
    const Saved saved = *d->saved;
    d->saved.reset();
    d->rss = saved.rss;
    if (d->AnyBoundLocked() &&
        (saved.hds != HeaderSplit::kEnabled || saved.hds_thresh != 0)) {
      // ethtool would refuse (EINVAL) while a memory provider is installed.
      DEVMEM_LOG(kWarning, "sim_restore_skipped")
          .Kv("device", device)
          .Kv("reason",
              std::string("queues still bound; tcp-data-split left on"));
      return;
    }
    d->hds = saved.hds;
    d->hds_thresh = saved.hds_thresh;
  }

  void RemoveFlow(const std::string& device, uint32_t rule_id) {
    MutexLock lock(mu_);
    if (Device* d = FindLocked(device)) d->flows.erase(rule_id);
  }

  LiveBinding* FindBindingLocked(Device& d, uint32_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (LiveBinding& b : d.bindings) {
      if (b.id == id) return &b;
    }
    return nullptr;
  }

  // Stops link notifications to a binding's data path (before it is
  // destroyed).
  void DetachPath(const std::string& device, uint32_t id) {
    MutexLock lock(mu_);
    Device* d = FindLocked(device);
    if (d == nullptr) return;
    if (LiveBinding* b = FindBindingLocked(*d, id)) {
      b->rx_path = nullptr;
      b->tx_path = nullptr;
    }
  }

  // The binding is gone: its queues are free, its id too, its counters stay
  // in the queue totals (qstats are monotonic).
  void ReleaseBinding(const std::string& device, uint32_t id, bool rx,
                      const RxPathCounters& rx_counters, uint64_t tx_bytes) {
    MutexLock lock(mu_);
    FreeIdLocked(id);
    Device* d = FindLocked(device);
    if (d == nullptr) return;
    for (auto& bound : d->rx_bound) {
      if (bound == id) bound.reset();
    }
    auto it = std::find_if(d->bindings.begin(), d->bindings.end(),
                           [id](const LiveBinding& b) { return b.id == id; });
    if (it != d->bindings.end()) {
      if (rx && !it->queues.empty()) {
        AddRx(d->rx_totals[it->queues.front()], rx_counters);
      } else if (!rx && !d->tx_totals.empty()) {
        d->tx_totals[0].bytes += tx_bytes;
      }
      d->bindings.erase(it);
    }
  }

  static void AddRx(QueueStats& q, const RxPathCounters& c) {
    q.bytes += c.bytes;
    q.packets += c.packets;
    q.alloc_fail += c.alloc_fail;
  }

 private:
  std::vector<Device> devices_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint32_t> live_ids_ ABSL_GUARDED_BY(mu_);
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_prep_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace sim_internal

namespace {

using sim_internal::FormatQueueSet;
using sim_internal::HdsName;
using sim_internal::Mapping;
using sim_internal::RxPath;
using sim_internal::RxPathCounters;
using sim_internal::SimKernel;
using sim_internal::TxPath;

absl::Status ValidateFlow(const Flow& flow, const std::string& ctx) {
  absl::Status status = CheckFlow(flow);
  if (status.ok()) return status;
  return ErrnoToStatus(EINVAL, absl::StrCat(ctx, ": ", status.message()));
}

bool SameFlow(const Flow& a, const Flow& b) {
  return a.ipv6 == b.ipv6 && a.src_ip == b.src_ip && a.dst_ip == b.dst_ip &&
         a.src_port == b.src_port && a.dst_port == b.dst_port;
}

class SimFlowRule final : public FlowRule {
 public:
  SimFlowRule(std::shared_ptr<SimKernel> kernel, std::string device,
              uint32_t rule_id)
      : kernel_(std::move(kernel)),
        device_(std::move(device)),
        rule_id_(rule_id) {}
  ~SimFlowRule() override { kernel_->RemoveFlow(device_, rule_id_); }
  uint32_t rule_id() const override { return rule_id_; }

 private:
  std::shared_ptr<SimKernel> kernel_;
  const std::string device_;
  const uint32_t rule_id_;
};

class SimPreparation final : public DevicePreparation {
 public:
  SimPreparation(std::shared_ptr<SimKernel> kernel, std::string device,
                 uint64_t prep_id, std::string description)
      : kernel_(std::move(kernel)),
        device_(std::move(device)),
        prep_id_(prep_id),
        description_(std::move(description)) {}
  ~SimPreparation() override { kernel_->Unprepare(device_, prep_id_); }
  std::string Describe() const override { return description_; }

 private:
  std::shared_ptr<SimKernel> kernel_;
  const std::string device_;
  const uint64_t prep_id_;
  const std::string description_;
};

// What RX and TX bindings share.
class SimBindingBase : public ProviderBinding {
 public:
  SimBindingBase(std::shared_ptr<SimKernel> kernel, uint32_t id, bool rx,
                 std::string device, std::vector<uint32_t> queues)
      : kernel_(std::move(kernel)),
        id_(id),
        rx_(rx),
        device_(std::move(device)),
        queues_(std::move(queues)),
        name_(absl::StrCat(device_, " binding ", id_)) {}

  uint32_t id() const override { return id_; }
  bool rx() const override { return rx_; }
  const std::string& device() const override { return device_; }
  const std::vector<uint32_t>& queue_ids() const override { return queues_; }

 protected:
  absl::Status NotRx(const char* op) const {
    return absl::FailedPreconditionError(
        absl::StrCat(name_, ": ", op, ": a TX binding has no RX path"));
  }

  const std::shared_ptr<SimKernel> kernel_;
  const uint32_t id_;
  const bool rx_;
  const std::string device_;
  const std::vector<uint32_t> queues_;
  const std::string name_;
};

class SimRxBinding final : public SimBindingBase {
 public:
  SimRxBinding(std::shared_ptr<SimKernel> kernel, uint32_t id,
               std::string device, std::vector<uint32_t> queues,
               std::shared_ptr<Mapping> mapping, std::shared_ptr<Region> region,
               std::unique_ptr<RxPath> path)
      : SimBindingBase(std::move(kernel), id, /*rx=*/true, std::move(device),
                       std::move(queues)),
        mapping_(std::move(mapping)),
        region_(std::move(region)),
        path_(std::move(path)) {}

  ~SimRxBinding() override {
    // The kernel's unbind: stop steering link events here, stop the queue
    // (our thread), drop every token the user still holds, and let the
    // pool drain; the mapping goes when the last chunk is back.
    kernel_->DetachPath(device_, id_);
    path_->Stop();
    const RxPathCounters counters = path_->Counters();
    const BorrowerId borrower = path_->borrower();
    path_.reset();
    const uint64_t tokens = region_->ReleaseAllTokens(borrower);
    absl::StatusOr<RetireReport> report = region_->Retire(
        [mapping = std::move(mapping_)]() mutable { mapping.reset(); });
    kernel_->ReleaseBinding(device_, id_, /*rx=*/true, counters, 0);
    LogLine line(LogLevel::kInfo, "sim_unbind");
    line.Kv("binding", absl::StrCat(id_))
        .Kv("device", device_)
        .Kv("tokens_released", absl::StrCat(tokens));
    if (report.ok()) {
      line.Kv("outstanding_chunks", absl::StrCat(report->outstanding_chunks))
          .Kv("released", std::string(report->released ? "true" : "false"));
    } else {
      line.Kv("retire_error", report.status().ToString());
    }
  }

  absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(const Flow& flow) override {
    const std::string ctx = absl::StrCat(name_, ": add-flow");
    RETURN_IF_ERROR(ValidateFlow(flow, ctx));
    uint32_t rule_id = 0;
    {
      MutexLock lock(kernel_->mu_);
      ASSIGN_OR_RETURN(SimKernel::Device * d,
                       kernel_->GetLocked(device_, "add-flow"));
      for (const auto& [id, rule] : d->flows) {
        if (SameFlow(rule.flow, flow)) {
          return ErrnoToStatus(
              EEXIST, absl::StrCat(ctx, ": flow already steered by rule ", id));
        }
      }
      rule_id = d->next_rule++;
      d->flows[rule_id] = SimFlowRuleInfo{.rule_id = rule_id,
                                          .binding_id = id_,
                                          .queue = queues_.front(),
                                          .flow = flow};
    }
    return std::unique_ptr<FlowRule>(
        new SimFlowRule(kernel_, device_, rule_id));
  }

  BindingStats Stats() const override {
    const RxPathCounters c = path_->Counters();
    BindingStats s;
    s.id = id_;
    s.bytes_received = c.bytes;
    s.frags = c.frags;
    s.alloc_fail = c.alloc_fail;
    s.pool = region_->Stats();
    return s;
  }

  std::optional<DataPath> TakeDataPath() override {
    UniqueFd job_end = path_->TakeJobEnd();
    if (!job_end.ok()) return std::nullopt;
    return DataPath{std::move(job_end), path_->endpoint()};
  }
  std::shared_ptr<Region> region() const override { return region_; }

  RxPath* path() const { return path_.get(); }

 private:
  std::shared_ptr<Mapping> mapping_;  // moved into the retire callback
  const std::shared_ptr<Region> region_;
  std::unique_ptr<RxPath> path_;
};

class SimTxBinding final : public SimBindingBase {
 public:
  SimTxBinding(std::shared_ptr<SimKernel> kernel, uint32_t id,
               std::string device, std::shared_ptr<Mapping> mapping,
               std::unique_ptr<TxPath> path)
      : SimBindingBase(std::move(kernel), id, /*rx=*/false, std::move(device),
                       {}),
        mapping_(std::move(mapping)),
        path_(std::move(path)) {}

  ~SimTxBinding() override {
    kernel_->DetachPath(device_, id_);
    path_->Stop();
    const uint64_t sent = path_->bytes_sent();
    path_.reset();
    kernel_->ReleaseBinding(device_, id_, /*rx=*/false, {}, sent);
    DEVMEM_LOG(kInfo, "sim_unbind")
        .Kv("binding", absl::StrCat(id_))
        .Kv("device", device_);
  }

  absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(const Flow&) override {
    return NotRx("add-flow");
  }
  BindingStats Stats() const override {
    BindingStats s;
    s.id = id_;
    s.bytes_sent = path_->bytes_sent();
    return s;
  }
  std::optional<DataPath> TakeDataPath() override {
    UniqueFd job_end = path_->TakeJobEnd();
    if (!job_end.ok()) return std::nullopt;
    return DataPath{std::move(job_end), ""};
  }
  std::shared_ptr<Region> region() const override { return nullptr; }

  TxPath* path() const { return path_.get(); }

 private:
  const std::shared_ptr<Mapping> mapping_;
  std::unique_ptr<TxPath> path_;
};

class SimProvider final : public Provider {
 public:
  explicit SimProvider(std::vector<SimDeviceSpec> specs)
      : kernel_(std::make_shared<SimKernel>(std::move(specs))), nic_(kernel_) {}

  std::string_view name() const override { return "sim"; }
  SimNic* nic() { return &nic_; }

  absl::StatusOr<std::vector<DeviceInfo>> ListDevices() override {
    MutexLock lock(kernel_->mu_);
    std::vector<DeviceInfo> out;
    for (const SimKernel::Device& d : kernel_->devices()) {
      DeviceInfo info;
      info.name = d.spec.name;
      info.ifindex = d.ifindex;
      info.rx_queues = d.spec.rx_queues;
      info.tx_queues = d.spec.tx_queues;
      info.numa_node = d.spec.numa_node;
      info.up = d.up;
      info.header_split = d.hds;
      info.hds_thresh = d.hds_thresh;
      const Capability::State cap = d.spec.devmem
                                        ? Capability::State::kSupported
                                        : Capability::State::kUnsupported;
      info.rx_capability = {
          cap, d.spec.devmem ? "sim: devmem=yes" : "sim: devmem=no"};
      info.tx_capability = info.rx_capability;
      const uint32_t napi_base =
          8192 + (d.ifindex - sim_internal::kFirstIfindex) * 2048;
      for (uint32_t q = 0; q < d.spec.rx_queues; ++q) {
        QueueInfo qi;
        qi.id = q;
        qi.rx = true;
        qi.binding_id = d.rx_bound[q];
        if (d.up) qi.napi_id = napi_base + q;
        info.queues.push_back(qi);
      }
      for (uint32_t q = 0; q < d.spec.tx_queues; ++q) {
        QueueInfo qi;
        qi.id = q;
        qi.rx = false;
        if (d.up) qi.napi_id = napi_base + q;
        info.queues.push_back(qi);
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  absl::StatusOr<DmabufInfo> CheckDmabuf(BorrowedFd fd) override {
    return CheckDmabufFd(fd);
  }

  absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
      std::string_view device_view,
      absl::Span<const uint32_t> rx_queues) override {
    const std::string device(device_view);
    const std::string ctx = absl::StrCat(device, ": prepare");
    MutexLock lock(kernel_->mu_);
    ASSIGN_OR_RETURN(SimKernel::Device * d,
                     kernel_->GetLocked(device, "prepare"));
    std::vector<uint32_t> queues;
    for (uint32_t q : rx_queues) {
      if (q >= d->spec.rx_queues) {
        return ErrnoToStatus(EINVAL, absl::StrCat(ctx, " queue ", q,
                                                  ": rx queue index out of "
                                                  "range (device has ",
                                                  d->spec.rx_queues, ")"));
      }
      queues.push_back(q);
    }
    std::sort(queues.begin(), queues.end());
    queues.erase(std::unique(queues.begin(), queues.end()), queues.end());
    if (!d->hds_supported) {
      return ErrnoToStatus(EOPNOTSUPP,
                           absl::StrCat(ctx, ": tcp-data-split not supported"));
    }
    std::vector<bool> rss = d->rss;
    for (uint32_t q : queues) rss[q] = false;
    if (std::none_of(rss.begin(), rss.end(), [](bool b) { return b; })) {
      return ErrnoToStatus(
          EINVAL, absl::StrCat(ctx, ": RSS would have no queue left (rss ",
                               FormatQueueSet(d->rss), ", taking ",
                               absl::StrJoin(queues, ","), ")"));
    }
    const std::string before_rss = FormatQueueSet(d->rss);
    std::vector<std::string> changes;
    if (d->hds != HeaderSplit::kEnabled) {
      changes.push_back(
          absl::StrCat("tcp-data-split ", HdsName(d->hds), "->on"));
    }
    if (d->hds_thresh != 0) {
      changes.push_back(absl::StrCat("hds-thresh ", d->hds_thresh, "->0"));
    }
    if (rss != d->rss) {
      changes.push_back(
          absl::StrCat("rss ", before_rss, " -> ", FormatQueueSet(rss)));
    }
    if (!d->saved) {
      d->saved = SimKernel::Saved{d->hds, d->hds_thresh, d->rss};
    }
    d->hds = HeaderSplit::kEnabled;
    d->hds_thresh = 0;
    const uint64_t prep_id = kernel_->NextPrepIdLocked();
    d->preps[prep_id] = queues;
    SimKernel::ApplyRssLocked(*d);
    std::string description = absl::StrCat(
        device, ": ",
        changes.empty() ? "nothing changed" : absl::StrJoin(changes, "; "));
    DEVMEM_LOG(kInfo, "sim_prepare")
        .Kv("device", device)
        .Kv("changes", description);
    return std::unique_ptr<DevicePreparation>(new SimPreparation(
        kernel_, std::string(device), prep_id, std::move(description)));
  }

  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
      const RxBindSpec& spec) override {
    const std::string ctx = absl::StrCat(spec.device, ": bind-rx");
    // 1. Request attributes (the kernel's policy and GENL_REQ_ATTR_CHECK).
    if (spec.queue_ids.empty()) {
      return ErrnoToStatus(EINVAL,
                           absl::StrCat(ctx,
                                        ": no queues given (missing queues "
                                        "attribute)"));
    }
    const uint32_t cs = spec.chunk_size;
    if (!Region::ValidChunkSize(cs)) {
      return ErrnoToStatus(EINVAL, absl::StrCat(ctx, ": chunk size ", cs,
                                                " is not a power of two in [",
                                                Region::kMinChunkSize, ", ",
                                                Region::kMaxChunkSize, "]"));
    }
    uint32_t id = 0;
    std::vector<uint32_t> queues;
    DmabufInfo info;
    bool link_up = true;
    {
      MutexLock lock(kernel_->mu_);
      // 2. The device, and whether its driver can take a memory provider.
      ASSIGN_OR_RETURN(SimKernel::Device * d,
                       kernel_->GetLocked(spec.device, "bind-rx"));
      if (!d->spec.devmem) {
        return ErrnoToStatus(
            EOPNOTSUPP,
            absl::StrCat(ctx, ": device does not support memory providers"));
      }
      // 3. Queue ids, parsed into a bitmap as 6.18 does.
      for (uint32_t q : spec.queue_ids) {
        if (q >= d->spec.rx_queues) {
          return ErrnoToStatus(
              EINVAL, absl::StrCat(ctx, " queue ", q,
                                   ": rx queue index out of range (device "
                                   "has ",
                                   d->spec.rx_queues, ")"));
        }
      }
      queues = spec.queue_ids;
      std::sort(queues.begin(), queues.end());
      queues.erase(std::unique(queues.begin(), queues.end()), queues.end());
      // 4. Link (the sim's choice; see sim_provider.h).
      if (!d->up) {
        return ErrnoToStatus(ENETDOWN, absl::StrCat(ctx, ": device is down"));
      }
      // 5. The fd, as dma_buf_get() and the attachment would judge it.
      absl::StatusOr<DmabufInfo> checked = CheckDmabufFd(spec.dmabuf);
      if (!checked.ok()) return WithContext(checked.status(), ctx);
      info = *checked;
      if (!info.cpu_mappable) {
        return ErrnoToStatus(EINVAL,
                             absl::StrCat(ctx,
                                          ": the simulated NIC needs a "
                                          "CPU-mappable buffer (exporter ",
                                          info.exporter, ")"));
      }
      // 6. Header split, then each queue's provider slot.
      if (d->hds != HeaderSplit::kEnabled) {
        return ErrnoToStatus(EINVAL,
                             absl::StrCat(ctx, ": tcp-data-split is disabled"));
      }
      if (d->hds_thresh != 0) {
        return ErrnoToStatus(EINVAL,
                             absl::StrCat(ctx, ": hds-thresh is not zero"));
      }
      for (uint32_t q : queues) {
        if (d->rx_bound[q].has_value()) {
          return ErrnoToStatus(EEXIST,
                               absl::StrCat(ctx, " queue ", q,
                                            ": designated queue already memory "
                                            "provider bound"));
        }
      }
      if (info.size_bytes < cs) {
        return ErrnoToStatus(
            EINVAL,
            absl::StrCat(ctx, ": dmabuf of ", info.size_bytes,
                         " bytes is smaller than one chunk (", cs, ")"));
      }
      id = kernel_->AllocIdLocked();
      for (uint32_t q : queues) d->rx_bound[q] = id;
      d->bindings.push_back(
          SimKernel::LiveBinding{.id = id, .rx = true, .queues = queues});
      link_up = d->up;
    }
    // From here a failure undoes the reservation.
    auto undo = absl::MakeCleanup(
        [&] { kernel_->ReleaseBinding(spec.device, id, /*rx=*/true, {}, 0); });
    const std::string name = absl::StrCat(spec.device, " binding ", id);
    ASSIGN_OR_RETURN(std::shared_ptr<Mapping> mapping,
                     Mapping::Create(spec.dmabuf, info.size_bytes, name));
    absl::StatusOr<std::shared_ptr<Region>> region =
        Region::Create(RegionOptions{.size_bytes = info.size_bytes,
                                     .chunk_size = cs,
                                     .cpu_base = mapping->data(),
                                     .name = name});
    if (!region.ok()) return WithContext(region.status(), ctx);
    ASSIGN_OR_RETURN(
        std::unique_ptr<RxPath> path,
        RxPath::Create(sim_internal::RxPathOptions{.name = name,
                                                   .binding_id = id,
                                                   .region = *region,
                                                   .cpu_base = mapping->data(),
                                                   .link_up = link_up}));
    std::unique_ptr<SimRxBinding> binding(
        new SimRxBinding(kernel_, id, spec.device, queues, std::move(mapping),
                         std::move(*region), std::move(path)));
    std::move(undo).Cancel();
    {
      MutexLock lock(kernel_->mu_);
      SimKernel::Device* d = kernel_->FindLocked(spec.device);
      SimKernel::LiveBinding* b = kernel_->FindBindingLocked(*d, id);
      b->rx_path = binding->path();
      // The link may have changed while we were unlocked.
      binding->path()->SetLinkUp(d->up);
    }
    DEVMEM_LOG(kInfo, "sim_bind_rx")
        .Kv("binding", absl::StrCat(id))
        .Kv("device", spec.device)
        .Kv("queues", absl::StrJoin(queues, ","))
        .Kv("bytes", absl::StrCat(info.size_bytes))
        .Kv("chunk_size", absl::StrCat(cs))
        .Kv("exporter", info.exporter);
    return std::unique_ptr<ProviderBinding>(std::move(binding));
  }

  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
      const TxBindSpec& spec) override {
    const std::string ctx = absl::StrCat(spec.device, ": bind-tx");
    uint32_t id = 0;
    DmabufInfo info;
    bool link_up = true;
    {
      MutexLock lock(kernel_->mu_);
      ASSIGN_OR_RETURN(SimKernel::Device * d,
                       kernel_->GetLocked(spec.device, "bind-tx"));
      if (!d->spec.devmem) {
        return ErrnoToStatus(
            EOPNOTSUPP,
            absl::StrCat(ctx, ": Driver does not support netmem TX"));
      }
      absl::StatusOr<DmabufInfo> checked = CheckDmabufFd(spec.dmabuf);
      if (!checked.ok()) return WithContext(checked.status(), ctx);
      info = *checked;
      if (!info.cpu_mappable) {
        return ErrnoToStatus(EINVAL,
                             absl::StrCat(ctx,
                                          ": the simulated NIC needs a "
                                          "CPU-mappable buffer (exporter ",
                                          info.exporter, ")"));
      }
      id = kernel_->AllocIdLocked();
      d->bindings.push_back(SimKernel::LiveBinding{.id = id, .rx = false});
      link_up = d->up;
    }
    auto undo = absl::MakeCleanup(
        [&] { kernel_->ReleaseBinding(spec.device, id, /*rx=*/false, {}, 0); });
    const std::string name = absl::StrCat(spec.device, " binding ", id);
    ASSIGN_OR_RETURN(std::shared_ptr<Mapping> mapping,
                     Mapping::Create(spec.dmabuf, info.size_bytes, name));
    ASSIGN_OR_RETURN(
        std::unique_ptr<TxPath> path,
        TxPath::Create(sim_internal::TxPathOptions{.name = name,
                                                   .cpu_base = mapping->data(),
                                                   .size = mapping->size(),
                                                   .link_up = link_up}));
    std::unique_ptr<SimTxBinding> binding(new SimTxBinding(
        kernel_, id, spec.device, std::move(mapping), std::move(path)));
    std::move(undo).Cancel();
    {
      MutexLock lock(kernel_->mu_);
      SimKernel::Device* d = kernel_->FindLocked(spec.device);
      SimKernel::LiveBinding* b = kernel_->FindBindingLocked(*d, id);
      b->tx_path = binding->path();
      binding->path()->SetLinkUp(d->up);
    }
    DEVMEM_LOG(kInfo, "sim_bind_tx")
        .Kv("binding", absl::StrCat(id))
        .Kv("device", spec.device)
        .Kv("bytes", absl::StrCat(info.size_bytes));
    return std::unique_ptr<ProviderBinding>(std::move(binding));
  }

  absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      std::string_view device_view) override {
    const std::string device(device_view);
    MutexLock lock(kernel_->mu_);
    ASSIGN_OR_RETURN(SimKernel::Device * d,
                     kernel_->GetLocked(device, "qstats-get"));
    std::vector<QueueStats> rx = d->rx_totals;
    std::vector<QueueStats> tx = d->tx_totals;
    for (const SimKernel::LiveBinding& b : d->bindings) {
      if (b.rx_path != nullptr && !b.queues.empty()) {
        SimKernel::AddRx(rx[b.queues.front()], b.rx_path->Counters());
      }
      if (b.tx_path != nullptr && !tx.empty()) {
        tx[0].bytes += b.tx_path->bytes_sent();
      }
    }
    rx.insert(rx.end(), tx.begin(), tx.end());
    return rx;
  }

 private:
  std::shared_ptr<SimKernel> kernel_;
  SimNic nic_;
};

}  // namespace

// ---- SimNic -----------------------------------------------------------------

SimNic::SimNic(std::shared_ptr<sim_internal::SimKernel> kernel)
    : kernel_(std::move(kernel)) {}

absl::Status SimNic::SetLinkUp(std::string_view device_view, bool up) {
  const std::string device(device_view);
  MutexLock lock(kernel_->mu_);
  ASSIGN_OR_RETURN(SimKernel::Device * d,
                   kernel_->GetLocked(device, "set-link"));
  d->up = up;
  for (SimKernel::LiveBinding& b : d->bindings) {
    if (b.rx_path != nullptr) b.rx_path->SetLinkUp(up);
    if (b.tx_path != nullptr) b.tx_path->SetLinkUp(up);
  }
  DEVMEM_LOG(kInfo, "sim_link")
      .Kv("device", device)
      .Kv("up", std::string(up ? "true" : "false"));
  return absl::OkStatus();
}

absl::Status SimNic::SetHeaderSplit(std::string_view device_view,
                                    HeaderSplit value) {
  const std::string device(device_view);
  MutexLock lock(kernel_->mu_);
  ASSIGN_OR_RETURN(SimKernel::Device * d,
                   kernel_->GetLocked(device, "set-rings"));
  if (!d->hds_supported) {
    return ErrnoToStatus(
        EOPNOTSUPP,
        absl::StrCat(device, ": set-rings: tcp-data-split not supported"));
  }
  if (value != HeaderSplit::kEnabled && d->AnyBoundLocked()) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(device,
                             ": set-rings: can't disable tcp-data-split while "
                             "device has memory provider enabled"));
  }
  d->hds = value;
  return absl::OkStatus();
}

absl::Status SimNic::SetHdsThresh(std::string_view device_view,
                                  uint32_t bytes) {
  const std::string device(device_view);
  MutexLock lock(kernel_->mu_);
  ASSIGN_OR_RETURN(SimKernel::Device * d,
                   kernel_->GetLocked(device, "set-rings"));
  if (bytes != 0 && d->AnyBoundLocked()) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(device,
                             ": set-rings: can't set non-zero hds_thresh while "
                             "device is memory provider enabled"));
  }
  d->hds_thresh = bytes;
  return absl::OkStatus();
}

absl::Status SimNic::SetHeaderSplitSupported(std::string_view device_view,
                                             bool supported) {
  const std::string device(device_view);
  MutexLock lock(kernel_->mu_);
  ASSIGN_OR_RETURN(SimKernel::Device * d,
                   kernel_->GetLocked(device, "set-rings"));
  if (!supported && d->AnyBoundLocked()) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(device,
                             ": set-rings: can't disable tcp-data-split while "
                             "device has memory provider enabled"));
  }
  d->hds_supported = supported;
  if (!supported) d->hds = HeaderSplit::kUnknown;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> SimNic::RssQueues(
    std::string_view device_view) const {
  const std::string device(device_view);
  MutexLock lock(kernel_->mu_);
  ASSIGN_OR_RETURN(SimKernel::Device * d,
                   kernel_->GetLocked(device, "rss-get"));
  std::vector<uint32_t> out;
  for (uint32_t q = 0; q < d->rss.size(); ++q) {
    if (d->rss[q]) out.push_back(q);
  }
  return out;
}

absl::StatusOr<std::vector<SimFlowRuleInfo>> SimNic::FlowRules(
    std::string_view device_view) const {
  const std::string device(device_view);
  MutexLock lock(kernel_->mu_);
  ASSIGN_OR_RETURN(SimKernel::Device * d,
                   kernel_->GetLocked(device, "flow-get"));
  std::vector<SimFlowRuleInfo> out;
  for (const auto& [id, rule] : d->flows) out.push_back(rule);
  return out;
}

absl::StatusOr<uint32_t> SimNic::Preparations(
    std::string_view device_view) const {
  const std::string device(device_view);
  MutexLock lock(kernel_->mu_);
  ASSIGN_OR_RETURN(SimKernel::Device * d,
                   kernel_->GetLocked(device, "prepare-get"));
  return static_cast<uint32_t>(d->preps.size());
}

// ---- Factory
// ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Provider>> CreateSimProvider(
    const SimOptions& options) {
  ASSIGN_OR_RETURN(std::vector<SimDeviceSpec> specs,
                   ParseSimSpec(options.spec));
  return std::unique_ptr<Provider>(new SimProvider(std::move(specs)));
}

SimNic* GetSimNic(Provider* provider) {
  auto* sim = dynamic_cast<SimProvider*>(provider);
  return sim == nullptr ? nullptr : sim->nic();
}

}  // namespace devmem
