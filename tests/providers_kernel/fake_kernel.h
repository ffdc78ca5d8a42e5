// FakeKernel: a simulated kernel behind the kernel provider's three seams
// (netlink transport, ethtool, host), for the success paths no NIC here has.
//
// The netlink side answers the way a 6.18 kernel does, attribute by
// attribute, with its own encoder and decoder (fake_wire.h; it shares no
// parsing code with the provider): nlctrl CTRL_CMD_GETFAMILY; netdev dev-get,
// queue-get, page-pool-get and qstats-get dumps (errors in the NLMSG_DONE
// payload with extack); bind-rx and bind-tx with the kernel's order of checks
// (EPERM, strict policy with NLA_F_NESTED, MISS_TYPE for missing attributes,
// ENODEV, EOPNOTSUPP for devices without the queue API, header split and
// hds-thresh, EEXIST for bound queues, EBADF for closed fds). Replies are
// NLMSG_ERROR with NLM_F_CAPPED (NETLINK_CAP_ACK) and NLM_F_ACK_TLVS when
// extack is attached.
//
// Bindings belong to the endpoint that sent bind-rx/bind-tx: destroying the
// endpoint unbinds them (netdev_nl_sock_priv_destroy), and their page pools
// get a detach-time (and vanish once nothing is in flight).
//
// The ethtool side keeps per-device rings (tcp-data-split, hds-thresh), an
// RSS indirection table and ntuple rules, and records every change in
// `ethtool_log()`. bind-rx checks the same rings state.
//
// Thread safety: all methods are thread-safe (one mutex).
#ifndef DEVMEM_TESTS_PROVIDERS_KERNEL_FAKE_KERNEL_H_
#define DEVMEM_TESTS_PROVIDERS_KERNEL_FAKE_KERNEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "providers/kernel/ethtool.h"
#include "providers/kernel/host.h"
#include "providers/kernel/netlink_transport.h"

namespace devmem::testing {

struct FakeDevice {
  uint32_t ifindex = 0;
  std::string name;
  uint32_t rx_queues = 1;
  uint32_t tx_queues = 1;
  bool up = true;
  int32_t numa_node = -1;
  bool queue_api = true;   // bind-rx passes the ops-lock check
  bool netmem_tx = false;  // bind-tx supported
  bool qstats = true;      // has qstats ops
  // ethtool.
  bool rings_supported = true;
  uint8_t tcp_data_split = 0;          // as reported (0 = unknown)
  std::optional<uint32_t> hds_thresh;  // present on 6.13+ drivers
  std::vector<uint32_t> indir;         // empty: filled round-robin (128)
};

struct FakeBinding {
  uint32_t id = 0;
  uint64_t endpoint = 0;
  uint32_t ifindex = 0;
  bool rx = true;
  std::vector<uint32_t> queues;
};

class FakeKernel {
 public:
  static constexpr uint16_t kNetdevFamilyId = 27;
  static constexpr uint16_t kEthtoolFamilyId = 21;

  FakeKernel();
  ~FakeKernel();

  void AddDevice(FakeDevice device);

  // The provider's seams, all backed by this kernel's state.
  std::shared_ptr<kernel::NetlinkTransport> transport();
  std::shared_ptr<kernel::EthtoolOps> ethtool();
  std::shared_ptr<kernel::HostOps> host();

  // Knobs.
  void set_caller_is_admin(bool admin);
  // Page pools of new bindings start with this many net_iovs in flight.
  void set_pool_inflight(uint64_t inflight);
  // Every page of `dmabuf`'s pools comes back; a detached pool then goes.
  void ReturnPages(uint32_t dmabuf);
  // Dumps send one record per datagram (multi-part) instead of one batch.
  void set_one_record_per_datagram(bool on);
  void set_netdev_family_present(bool present);

  // Observations.
  std::vector<FakeBinding> bindings() const;
  int open_endpoints() const;
  int endpoints_opened() const;
  std::vector<uint64_t> closed_endpoints() const;
  std::vector<std::string> ethtool_log() const;
  std::map<uint32_t, std::string> rules(const std::string& dev) const;
  FakeDevice device(const std::string& name) const;
  // bind-rx requests received (even failed ones).
  int bind_rx_requests() const;

  struct State;  // shared with the endpoints and adapters

 private:
  std::shared_ptr<State> state_;
};

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_PROVIDERS_KERNEL_FAKE_KERNEL_H_
