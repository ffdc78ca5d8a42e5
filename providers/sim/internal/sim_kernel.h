// SimKernel: the simulated kernel and NIC state shared by the sim provider,
// its bindings, preparations and flow rules, and every operation on it: what
// netdev bind-rx/bind-tx, ethtool -G/-X/-N and ip link would do on a real
// machine, in the kernel's order of checks and with its errno (see
// providers/sim/sim_provider.h for the table). Internal to providers/sim.
//
// Thread safety: thread-safe; one lock, private to this class, guards all
// state. The data paths (RxPath/TxPath) never take it; SimKernel calls into
// them (SetLinkUp, Counters) only through the paths attached to live
// bindings, which detach before they are destroyed.
#ifndef DEVMEM_PROVIDERS_SIM_INTERNAL_SIM_KERNEL_H_
#define DEVMEM_PROVIDERS_SIM_INTERNAL_SIM_KERNEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "providers/provider.h"
#include "providers/sim/internal/rx_path.h"
#include "providers/sim/internal/tx_path.h"
#include "providers/sim/sim_provider.h"
#include "providers/sim/sim_spec.h"

namespace devmem::sim_internal {

inline constexpr uint32_t kFirstIfindex = 1000;

class SimKernel {
 public:
  explicit SimKernel(std::vector<SimDeviceSpec> specs);

  // ---- What the provider asks -------------------------------------------
  std::vector<DeviceInfo> ListDevices() const;

  struct Prepared {
    uint64_t id = 0;
    std::string description;  // "sim0: tcp-data-split auto->on; rss ..."
  };
  // Header split on, hds-thresh 0, `rx_queues` out of RSS, recording the
  // settings before the first preparation of the device.
  absl::StatusOr<Prepared> Prepare(const std::string& device,
                                   absl::Span<const uint32_t> rx_queues);
  // The last preparation of a device restores what the first recorded.
  void Unprepare(const std::string& device, uint64_t prep_id);

  struct Reserved {
    uint32_t id = 0;
    std::vector<uint32_t> queues;  // sorted, unique (RX)
    DmabufInfo info;
    bool link_up = true;
  };
  // bind-rx / bind-tx up to the point where memory is needed: every check,
  // then the id and the queues are taken. ReleaseBinding gives them back.
  absl::StatusOr<Reserved> ReserveRx(const RxBindSpec& spec);
  absl::StatusOr<Reserved> ReserveTx(const TxBindSpec& spec);
  // Link changes reach `rx`/`tx` (either may be null) from now on; the
  // current link state is applied at once.
  void AttachPath(const std::string& device, uint32_t id, RxPath* rx,
                  TxPath* tx);
  // Stops link notifications to a binding's data path (before it goes).
  void DetachPath(const std::string& device, uint32_t id);
  // The binding is gone: its queues and id are free; its counters stay in
  // the queue totals (qstats are monotonic).
  void ReleaseBinding(const std::string& device, uint32_t id, bool rx,
                      const RxPathCounters& rx_counters, uint64_t tx_bytes);

  // An ntuple rule steering `flow` to `queue` for `binding_id`. EEXIST for a
  // flow already steered; `ctx` prefixes messages.
  absl::StatusOr<uint32_t> AddFlow(const std::string& device,
                                   uint32_t binding_id, uint32_t queue,
                                   const Flow& flow, const std::string& ctx);
  void RemoveFlow(const std::string& device, uint32_t rule_id);

  absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      const std::string& device) const;

  // ---- The NIC controls (SimNic) ------------------------------------------
  absl::Status SetLinkUp(const std::string& device, bool up);
  absl::Status SetHeaderSplit(const std::string& device, HeaderSplit value);
  absl::Status SetHdsThresh(const std::string& device, uint32_t bytes);
  absl::Status SetHeaderSplitSupported(const std::string& device,
                                       bool supported);
  absl::StatusOr<std::vector<uint32_t>> RssQueues(
      const std::string& device) const;
  absl::StatusOr<std::vector<SimFlowRuleInfo>> FlowRules(
      const std::string& device) const;
  absl::StatusOr<uint32_t> Preparations(const std::string& device) const;

 private:
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

    bool AnyBound() const;
  };

  Device* FindLocked(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Device* FindLocked(absl::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // ENODEV naming `op` for an unknown device.
  absl::StatusOr<Device*> GetLocked(absl::string_view name,
                                    absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<const Device*> GetLocked(absl::string_view name,
                                          absl::string_view op) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Binding ids: global, cyclic from 1, never 0, skipping live ones (the
  // kernel's xa_alloc_cyclic over [1, U32_MAX]).
  uint32_t AllocIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static LiveBinding* FindBinding(Device& d, uint32_t id);
  // Applies the union of the live preparations' queues to RSS.
  static void ApplyRss(Device& d);
  static void AddRx(QueueStats& q, const RxPathCounters& c);
  // The fd checks bind-rx and bind-tx share (dma_buf_get and a CPU mapping).
  static absl::StatusOr<DmabufInfo> CheckFd(BorrowedFd fd,
                                            const std::string& ctx);

  mutable Mutex mu_;
  std::vector<Device> devices_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint32_t> live_ids_ ABSL_GUARDED_BY(mu_);
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_prep_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_SIM_KERNEL_H_
