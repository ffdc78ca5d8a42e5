#include "providers/common/nic_settings.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace devmem {

std::string HeaderSplitName(HeaderSplit split) {
  switch (split) {
    case HeaderSplit::kDisabled:
      return "disabled";
    case HeaderSplit::kEnabled:
      return "enabled";
    default:
      return "unknown";
  }
}

PreparationTracker::PreparationTracker(std::shared_ptr<NicSettings> nic)
    : nic_(std::move(nic)) {}

absl::StatusOr<PreparationTracker::Prepared> PreparationTracker::Prepare(
    const std::string& device, std::vector<uint32_t> queues) {
  std::sort(queues.begin(), queues.end());
  queues.erase(std::unique(queues.begin(), queues.end()), queues.end());
  MutexLock lock(mu_);
  auto [it, first] = devices_.try_emplace(device);
  Device& dev = it->second;
  if (first) {
    absl::StatusOr<HeaderSplitConfig> hs = nic_->GetHeaderSplit(device);
    if (!hs.ok()) {
      devices_.erase(it);
      return WithContext(hs.status(), "cannot read header split");
    }
    dev.original = *hs;
    if (hs->split != HeaderSplit::kEnabled || hs->hds_thresh.value_or(0) != 0) {
      std::optional<uint32_t> hds;
      if (hs->hds_thresh.has_value()) hds = 0;
      if (absl::Status s =
              nic_->SetHeaderSplit(device, HeaderSplit::kEnabled, hds);
          !s.ok()) {
        devices_.erase(it);
        return WithContext(s, "cannot turn on header split");
      }
      dev.header_split_changed = true;
      DEVMEM_LOG(kInfo, "nic_header_split_on")
          .Kv("device", device)
          .Kv("was", HeaderSplitName(hs->split))
          .Kv("hds_thresh_was", absl::StrCat(hs->hds_thresh.value_or(0)));
    }
  }
  std::string changes;
  if (dev.header_split_changed) {
    absl::StrAppend(&changes, "tcp-data-split ",
                    HeaderSplitName(dev.original.split), "->enabled");
    if (dev.original.hds_thresh.value_or(0) != 0) {
      absl::StrAppend(&changes, "; hds-thresh ", *dev.original.hds_thresh,
                      "->0");
    }
  } else {
    changes = "tcp-data-split already enabled";
  }
  const uint64_t id = next_id_++;
  dev.reserved[id] = queues;
  if (absl::Status s = ApplyRssLocked(device, dev); !s.ok()) {
    dev.reserved.erase(id);
    if (dev.reserved.empty()) {
      (void)RestoreLocked(device, dev);  // logged there
      devices_.erase(device);
    } else if (absl::Status again = ApplyRssLocked(device, dev); !again.ok()) {
      DEVMEM_LOG(kError, "nic_rss_update")
          .Kv("device", device)
          .Kv("status", again.ToString());
    }
    return s;
  }
  if (!queues.empty()) {
    absl::StrAppend(&changes, "; rss excludes queues ",
                    absl::StrJoin(queues, ","), " of ", dev.rx_rings);
  }
  return Prepared{id, std::move(changes)};
}

absl::Status PreparationTracker::ApplyRssLocked(const std::string& device,
                                                Device& dev) {
  std::set<uint32_t> reserved;
  for (const auto& [id, queues] : dev.reserved) {
    reserved.insert(queues.begin(), queues.end());
  }
  if (reserved.empty() && !dev.original_rss.has_value()) {
    return absl::OkStatus();  // RSS was never touched and need not be
  }
  if (!dev.original_rss.has_value()) {
    ASSIGN_OR_RETURN(dev.rx_rings, nic_->GetRxRingCount(device));
    ASSIGN_OR_RETURN(std::vector<uint32_t> table, nic_->GetRssTable(device));
    if (table.empty()) {
      return ErrnoToStatus(
          EOPNOTSUPP,
          absl::StrCat(device,
                       ": no RSS indirection table to keep traffic off the "
                       "bound queues"));
    }
    dev.original_rss = std::move(table);
  }
  if (reserved.empty()) return nic_->SetRssTable(device, *dev.original_rss);
  if (*reserved.rbegin() >= dev.rx_rings) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(device, ": RX queue ", *reserved.rbegin(),
                             " out of range (", dev.rx_rings, " RX rings)"));
  }
  std::vector<uint32_t> allowed;
  for (uint32_t q = 0; q < dev.rx_rings; ++q) {
    if (!reserved.contains(q)) allowed.push_back(q);
  }
  if (allowed.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(device, ": binding every RX queue leaves none for RSS (",
                     dev.rx_rings, " RX rings)"));
  }
  std::vector<uint32_t> table(dev.original_rss->size());
  for (size_t i = 0; i < table.size(); ++i) {
    table[i] = allowed[i % allowed.size()];
  }
  return nic_->SetRssTable(device, table);
}

absl::Status PreparationTracker::RestoreLocked(const std::string& device,
                                               const Device& dev) {
  absl::Status first_error;
  if (dev.original_rss.has_value()) {
    absl::Status s = nic_->SetRssTable(device, *dev.original_rss);
    LogLine(s.ok() ? LogLevel::kInfo : LogLevel::kError, "nic_rss_restore")
        .Kv("device", device)
        .Kv("status", s.ToString());
    if (!s.ok()) first_error = WithContext(s, "cannot restore RSS");
  }
  if (dev.header_split_changed) {
    absl::Status s = nic_->SetHeaderSplit(device, dev.original.split,
                                          dev.original.hds_thresh);
    LogLine(s.ok() ? LogLevel::kInfo : LogLevel::kError,
            "nic_header_split_restore")
        .Kv("device", device)
        .Kv("tcp_data_split", HeaderSplitName(dev.original.split))
        .Kv("status", s.ToString());
    if (!s.ok() && first_error.ok()) {
      first_error = WithContext(s, "cannot restore header split");
    }
  }
  return first_error;
}

absl::Status PreparationTracker::Release(const std::string& device,
                                         uint64_t id) {
  MutexLock lock(mu_);
  auto it = devices_.find(device);
  if (it == devices_.end() || it->second.reserved.erase(id) == 0) {
    return absl::OkStatus();
  }
  if (it->second.reserved.empty()) {
    absl::Status s = RestoreLocked(device, it->second);
    devices_.erase(it);
    return s;
  }
  absl::Status s = ApplyRssLocked(device, it->second);
  if (!s.ok()) {
    DEVMEM_LOG(kError, "nic_rss_update")
        .Kv("device", device)
        .Kv("status", s.ToString());
  }
  return s;
}

size_t PreparationTracker::Preparations(const std::string& device) const {
  MutexLock lock(mu_);
  auto it = devices_.find(device);
  return it == devices_.end() ? 0 : it->second.reserved.size();
}

}  // namespace devmem
