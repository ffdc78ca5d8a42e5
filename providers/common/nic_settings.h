// NicSettings and PreparationTracker: "record the NIC's settings on the first
// preparation of a device, restore them on the last", written once for every
// provider.
//
// A provider implements NicSettings (the kernel provider over ethtool
// netlink/ioctls, the sim over its simulated device) and owns one
// PreparationTracker; its DevicePreparation::~ calls Release.
//
// What a preparation does to a device:
//   - first preparation: reads header split; if tcp-data-split is not enabled
//     or hds-thresh is not 0, sets tcp-data-split on and hds-thresh 0 (the
//     threshold only where the device reports one);
//   - every preparation: the RSS indirection table spreads over the RX queues
//     that no live preparation reserved. The table is read (and recorded) the
//     first time a preparation reserves a queue; a device whose RSS was never
//     touched is never written.
//   - last release: the recorded table, then the recorded header split, are
//     put back. Both are tried even if the first fails.
// A Prepare that fails part-way undoes what it did: nothing is left changed
// that no live preparation needs.
//
// Thread safety: PreparationTracker is thread-safe; it serialises every call
// it makes to NicSettings (per tracker, over all devices). NicSettings need
// not be thread-safe against itself.
#ifndef DEVMEM_PROVIDERS_COMMON_NIC_SETTINGS_H_
#define DEVMEM_PROVIDERS_COMMON_NIC_SETTINGS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "providers/provider.h"

namespace devmem {

// ETHTOOL_A_RINGS_TCP_DATA_SPLIT and ETHTOOL_A_RINGS_HDS_THRESH of a device.
struct HeaderSplitConfig {
  HeaderSplit split = HeaderSplit::kUnknown;
  std::optional<uint32_t> hds_thresh;  // nullopt: the device reports none
};

// The settings a preparation changes, as one device driver exposes them.
// Errors are errno-carrying Statuses (base/errno_status.h) naming the device.
class NicSettings {
 public:
  virtual ~NicSettings() = default;

  virtual absl::StatusOr<HeaderSplitConfig> GetHeaderSplit(
      const std::string& device) = 0;
  // Sets tcp-data-split and, when given, hds-thresh.
  virtual absl::Status SetHeaderSplit(const std::string& device,
                                      HeaderSplit split,
                                      std::optional<uint32_t> hds_thresh) = 0;
  // The RX rings RSS may spread over (ETHTOOL_GRXRINGS).
  virtual absl::StatusOr<uint32_t> GetRxRingCount(
      const std::string& device) = 0;
  // The RSS indirection table: entry i is the RX queue of hash bucket i. An
  // empty table means the device has none to change.
  virtual absl::StatusOr<std::vector<uint32_t>> GetRssTable(
      const std::string& device) = 0;
  virtual absl::Status SetRssTable(const std::string& device,
                                   absl::Span<const uint32_t> table) = 0;
};

// "disabled", "enabled" or "unknown".
std::string HeaderSplitName(HeaderSplit split);

class PreparationTracker {
 public:
  explicit PreparationTracker(std::shared_ptr<NicSettings> nic);

  PreparationTracker(const PreparationTracker&) = delete;
  PreparationTracker& operator=(const PreparationTracker&) = delete;

  struct Prepared {
    uint64_t id = 0;      // pass to Release; unique per tracker, never 0
    std::string changes;  // for DevicePreparation::Describe, e.g.
                          // "tcp-data-split disabled->enabled; hds-thresh
                          // 256->0; rss excludes queues 15 of 16"
  };

  // Prepares `device` for bindings on `rx_queues` (may be empty: TX, or RX
  // without steering). Errors, each leaving the device as it was before the
  // call (or as the live preparations need it):
  //   the NicSettings error with "cannot read header split" / "cannot turn
  //     on header split" context, or its RSS error;
  //   EOPNOTSUPP: queues to reserve but no RSS indirection table;
  //   EINVAL: a queue >= the RX ring count;
  //   FAILED_PRECONDITION: the queues would leave RSS no queue at all.
  absl::StatusOr<Prepared> Prepare(const std::string& device,
                                   std::vector<uint32_t> rx_queues)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Ends preparation `id`. The last one restores the recorded settings; the
  // others re-spread RSS over the queues now free. Returns the first error of
  // that work (it is logged too; the preparation is gone either way).
  // Unknown ids are ignored (OK).
  absl::Status Release(const std::string& device, uint64_t id)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Live preparations of `device`.
  size_t Preparations(const std::string& device) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Device {
    HeaderSplitConfig original;
    bool header_split_changed = false;
    std::optional<std::vector<uint32_t>> original_rss;  // recorded on need
    uint32_t rx_rings = 0;
    std::map<uint64_t, std::vector<uint32_t>> reserved;  // id -> queues
  };

  absl::Status ApplyRssLocked(const std::string& device, Device& dev)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RestoreLocked(const std::string& device, const Device& dev)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<NicSettings> nic_;
  mutable Mutex mu_;
  std::map<std::string, Device> devices_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace devmem

#endif  // DEVMEM_PROVIDERS_COMMON_NIC_SETTINGS_H_
