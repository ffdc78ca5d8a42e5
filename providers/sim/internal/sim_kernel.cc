#include "providers/sim/internal/sim_kernel.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "pool/region.h"
#include "providers/common/dmabuf_check.h"

namespace devmem::sim_internal {
namespace {

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

bool SameFlow(const Flow& a, const Flow& b) {
  return a.ipv6 == b.ipv6 && a.src_ip == b.src_ip && a.dst_ip == b.dst_ip &&
         a.src_port == b.src_port && a.dst_port == b.dst_port;
}

}  // namespace

// ---- State and its small helpers ----------------------------------------

SimKernel::SimKernel(std::vector<SimDeviceSpec> specs) {
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

bool SimKernel::Device::AnyBound() const {
  return std::any_of(rx_bound.begin(), rx_bound.end(),
                     [](const auto& b) { return b.has_value(); });
}

SimKernel::Device* SimKernel::FindLocked(absl::string_view name) {
  for (Device& d : devices_) {
    if (d.spec.name == name) return &d;
  }
  return nullptr;
}

const SimKernel::Device* SimKernel::FindLocked(absl::string_view name) const {
  for (const Device& d : devices_) {
    if (d.spec.name == name) return &d;
  }
  return nullptr;
}

absl::StatusOr<SimKernel::Device*> SimKernel::GetLocked(absl::string_view name,
                                                        absl::string_view op) {
  Device* d = FindLocked(name);
  if (d == nullptr) {
    return ErrnoToStatus(ENODEV,
                         absl::StrCat(name, ": ", op, ": no such device"));
  }
  return d;
}

absl::StatusOr<const SimKernel::Device*> SimKernel::GetLocked(
    absl::string_view name, absl::string_view op) const {
  const Device* d = FindLocked(name);
  if (d == nullptr) {
    return ErrnoToStatus(ENODEV,
                         absl::StrCat(name, ": ", op, ": no such device"));
  }
  return d;
}

uint32_t SimKernel::AllocIdLocked() {
  while (true) {
    const uint32_t id = next_id_;
    next_id_ = next_id_ == UINT32_MAX ? 1 : next_id_ + 1;
    if (live_ids_.insert(id).second) return id;
  }
}

SimKernel::LiveBinding* SimKernel::FindBinding(Device& d, uint32_t id) {
  for (LiveBinding& b : d.bindings) {
    if (b.id == id) return &b;
  }
  return nullptr;
}

void SimKernel::ApplyRss(Device& d) {
  d.rss = d.saved ? d.saved->rss : d.rss;
  for (const auto& [id, queues] : d.preps) {
    for (uint32_t q : queues) d.rss[q] = false;
  }
}

void SimKernel::AddRx(QueueStats& q, const RxPathCounters& c) {
  q.bytes += c.bytes;
  q.packets += c.packets;
  q.alloc_fail += c.alloc_fail;
}

absl::StatusOr<DmabufInfo> SimKernel::CheckFd(BorrowedFd fd,
                                              const std::string& ctx) {
  absl::StatusOr<DmabufInfo> checked = CheckDmabufFd(fd);
  if (!checked.ok()) return WithContext(checked.status(), ctx);
  if (!checked->cpu_mappable) {
    return ErrnoToStatus(EINVAL, absl::StrCat(ctx,
                                              ": the simulated NIC needs a "
                                              "CPU-mappable buffer (exporter ",
                                              checked->exporter, ")"));
  }
  return checked;
}

// ---- What the provider asks ---------------------------------------------

std::vector<DeviceInfo> SimKernel::ListDevices() const {
  MutexLock lock(mu_);
  std::vector<DeviceInfo> out;
  for (const Device& d : devices_) {
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
    info.rx_capability = {cap,
                          d.spec.devmem ? "sim: devmem=yes" : "sim: devmem=no"};
    info.tx_capability = info.rx_capability;
    const uint32_t napi_base = 8192 + (d.ifindex - kFirstIfindex) * 2048;
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

absl::StatusOr<SimKernel::Prepared> SimKernel::Prepare(
    const std::string& device, absl::Span<const uint32_t> rx_queues) {
  const std::string ctx = absl::StrCat(device, ": prepare");
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(Device * d, GetLocked(device, "prepare"));
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
    changes.push_back(absl::StrCat("tcp-data-split ", HdsName(d->hds), "->on"));
  }
  if (d->hds_thresh != 0) {
    changes.push_back(absl::StrCat("hds-thresh ", d->hds_thresh, "->0"));
  }
  if (rss != d->rss) {
    changes.push_back(
        absl::StrCat("rss ", before_rss, " -> ", FormatQueueSet(rss)));
  }
  if (!d->saved) {
    d->saved = Saved{d->hds, d->hds_thresh, d->rss};
  }
  d->hds = HeaderSplit::kEnabled;
  d->hds_thresh = 0;
  const uint64_t prep_id = next_prep_id_++;
  d->preps[prep_id] = queues;
  ApplyRss(*d);
  std::string description = absl::StrCat(
      device, ": ",
      changes.empty() ? "nothing changed" : absl::StrJoin(changes, "; "));
  DEVMEM_LOG(kInfo, "sim_prepare")
      .Kv("device", device)
      .Kv("changes", description);
  return Prepared{prep_id, std::move(description)};
}

void SimKernel::Unprepare(const std::string& device, uint64_t prep_id) {
  MutexLock lock(mu_);
  Device* d = FindLocked(device);
  if (d == nullptr || d->preps.erase(prep_id) == 0) return;
  if (!d->preps.empty()) {
    ApplyRss(*d);
    return;
  }
  const Saved saved = *d->saved;
  d->saved.reset();
  d->rss = saved.rss;
  if (d->AnyBound() &&
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

absl::StatusOr<SimKernel::Reserved> SimKernel::ReserveRx(
    const RxBindSpec& spec) {
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
    return ErrnoToStatus(
        EINVAL,
        absl::StrCat(ctx, ": chunk size ", cs, " is not a power of two in [",
                     Region::kMinChunkSize, ", ", Region::kMaxChunkSize, "]"));
  }
  uint32_t id = 0;
  std::vector<uint32_t> queues;
  DmabufInfo info;
  bool link_up = true;
  {
    MutexLock lock(mu_);
    // 2. The device, and whether its driver can take a memory provider.
    ASSIGN_OR_RETURN(Device * d, GetLocked(spec.device, "bind-rx"));
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
    ASSIGN_OR_RETURN(info, CheckFd(spec.dmabuf, ctx));
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
          EINVAL, absl::StrCat(ctx, ": dmabuf of ", info.size_bytes,
                               " bytes is smaller than one chunk (", cs, ")"));
    }
    id = AllocIdLocked();
    for (uint32_t q : queues) d->rx_bound[q] = id;
    d->bindings.push_back(LiveBinding{.id = id, .rx = true, .queues = queues});
    link_up = d->up;
  }
  return Reserved{id, std::move(queues), std::move(info), link_up};
}

absl::StatusOr<SimKernel::Reserved> SimKernel::ReserveTx(
    const TxBindSpec& spec) {
  const std::string ctx = absl::StrCat(spec.device, ": bind-tx");
  uint32_t id = 0;
  DmabufInfo info;
  bool link_up = true;
  {
    MutexLock lock(mu_);
    ASSIGN_OR_RETURN(Device * d, GetLocked(spec.device, "bind-tx"));
    if (!d->spec.devmem) {
      return ErrnoToStatus(
          EOPNOTSUPP, absl::StrCat(ctx, ": Driver does not support netmem TX"));
    }
    ASSIGN_OR_RETURN(info, CheckFd(spec.dmabuf, ctx));
    id = AllocIdLocked();
    d->bindings.push_back(LiveBinding{.id = id, .rx = false});
    link_up = d->up;
  }
  return Reserved{id, {}, std::move(info), link_up};
}

void SimKernel::AttachPath(const std::string& device, uint32_t id, RxPath* rx,
                           TxPath* tx) {
  MutexLock lock(mu_);
  Device* d = FindLocked(device);
  if (d == nullptr) return;
  LiveBinding* b = FindBinding(*d, id);
  if (b == nullptr) return;
  b->rx_path = rx;
  b->tx_path = tx;
  // The link may have changed since the reservation.
  if (rx != nullptr) rx->SetLinkUp(d->up);
  if (tx != nullptr) tx->SetLinkUp(d->up);
}

void SimKernel::DetachPath(const std::string& device, uint32_t id) {
  MutexLock lock(mu_);
  Device* d = FindLocked(device);
  if (d == nullptr) return;
  if (LiveBinding* b = FindBinding(*d, id)) {
    b->rx_path = nullptr;
    b->tx_path = nullptr;
  }
}

void SimKernel::ReleaseBinding(const std::string& device, uint32_t id, bool rx,
                               const RxPathCounters& rx_counters,
                               uint64_t tx_bytes) {
  MutexLock lock(mu_);
  live_ids_.erase(id);
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

absl::StatusOr<uint32_t> SimKernel::AddFlow(const std::string& device,
                                            uint32_t binding_id, uint32_t queue,
                                            const Flow& flow,
                                            const std::string& ctx) {
  uint32_t rule_id = 0;
  {
    MutexLock lock(mu_);
    ASSIGN_OR_RETURN(Device * d, GetLocked(device, "add-flow"));
    for (const auto& [id, rule] : d->flows) {
      if (SameFlow(rule.flow, flow)) {
        return ErrnoToStatus(
            EEXIST, absl::StrCat(ctx, ": flow already steered by rule ", id));
      }
    }
    rule_id = d->next_rule++;
    d->flows[rule_id] = SimFlowRuleInfo{.rule_id = rule_id,
                                        .binding_id = binding_id,
                                        .queue = queue,
                                        .flow = flow};
  }
  return rule_id;
}

void SimKernel::RemoveFlow(const std::string& device, uint32_t rule_id) {
  MutexLock lock(mu_);
  if (Device* d = FindLocked(device)) d->flows.erase(rule_id);
}

absl::StatusOr<std::vector<QueueStats>> SimKernel::GetQueueStats(
    const std::string& device) const {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(const Device* d, GetLocked(device, "qstats-get"));
  std::vector<QueueStats> rx = d->rx_totals;
  std::vector<QueueStats> tx = d->tx_totals;
  for (const LiveBinding& b : d->bindings) {
    if (b.rx_path != nullptr && !b.queues.empty()) {
      AddRx(rx[b.queues.front()], b.rx_path->Counters());
    }
    if (b.tx_path != nullptr && !tx.empty()) {
      tx[0].bytes += b.tx_path->bytes_sent();
    }
  }
  rx.insert(rx.end(), tx.begin(), tx.end());
  return rx;
}

// ---- The NIC controls ----------------------------------------------------

absl::Status SimKernel::SetLinkUp(const std::string& device, bool up) {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(Device * d, GetLocked(device, "set-link"));
  d->up = up;
  for (LiveBinding& b : d->bindings) {
    if (b.rx_path != nullptr) b.rx_path->SetLinkUp(up);
    if (b.tx_path != nullptr) b.tx_path->SetLinkUp(up);
  }
  DEVMEM_LOG(kInfo, "sim_link")
      .Kv("device", device)
      .Kv("up", std::string(up ? "true" : "false"));
  return absl::OkStatus();
}

absl::Status SimKernel::SetHeaderSplit(const std::string& device,
                                       HeaderSplit value) {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(Device * d, GetLocked(device, "set-rings"));
  if (!d->hds_supported) {
    return ErrnoToStatus(
        EOPNOTSUPP,
        absl::StrCat(device, ": set-rings: tcp-data-split not supported"));
  }
  if (value != HeaderSplit::kEnabled && d->AnyBound()) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(device,
                             ": set-rings: can't disable tcp-data-split while "
                             "device has memory provider enabled"));
  }
  d->hds = value;
  return absl::OkStatus();
}

absl::Status SimKernel::SetHdsThresh(const std::string& device,
                                     uint32_t bytes) {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(Device * d, GetLocked(device, "set-rings"));
  if (bytes != 0 && d->AnyBound()) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(device,
                             ": set-rings: can't set non-zero hds_thresh while "
                             "device is memory provider enabled"));
  }
  d->hds_thresh = bytes;
  return absl::OkStatus();
}

absl::Status SimKernel::SetHeaderSplitSupported(const std::string& device,
                                                bool supported) {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(Device * d, GetLocked(device, "set-rings"));
  if (!supported && d->AnyBound()) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(device,
                             ": set-rings: can't disable tcp-data-split while "
                             "device has memory provider enabled"));
  }
  d->hds_supported = supported;
  if (!supported) d->hds = HeaderSplit::kUnknown;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> SimKernel::RssQueues(
    const std::string& device) const {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(const Device* d, GetLocked(device, "rss-get"));
  std::vector<uint32_t> out;
  for (uint32_t q = 0; q < d->rss.size(); ++q) {
    if (d->rss[q]) out.push_back(q);
  }
  return out;
}

absl::StatusOr<std::vector<SimFlowRuleInfo>> SimKernel::FlowRules(
    const std::string& device) const {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(const Device* d, GetLocked(device, "flow-get"));
  std::vector<SimFlowRuleInfo> out;
  for (const auto& [id, rule] : d->flows) out.push_back(rule);
  return out;
}

absl::StatusOr<uint32_t> SimKernel::Preparations(
    const std::string& device) const {
  MutexLock lock(mu_);
  ASSIGN_OR_RETURN(const Device* d, GetLocked(device, "prepare-get"));
  return static_cast<uint32_t>(d->preps.size());
}

}  // namespace devmem::sim_internal
