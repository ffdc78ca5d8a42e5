// EthtoolOps: the NIC settings devmem needs, as primitive operations.
//
// Header split and hds-thresh go through the ethtool generic-netlink family
// (ETHTOOL_MSG_RINGS_GET/SET); the RSS indirection table and ntuple steering
// rules go through the SIOCETHTOOL ioctl (ETHTOOL_GRXFHINDIR/SRXFHINDIR,
// ETHTOOL_GRXRINGS, ETHTOOL_SRXCLSRLINS/SRXCLSRLDEL). The kernel provider
// decides what to change and what to restore; this interface only performs
// the operations, so tests can put a fake NIC behind it.
//
// Errors: the kernel's errno through base/errno_status.h with the device and
// operation in the message ("eth1: ethtool rings-set: ... (EOPNOTSUPP)").
// A driver without the operation answers EOPNOTSUPP (Unimplemented).
//
// Thread safety: implementations are thread-safe. Devices are resolved by
// name in the calling thread's network namespace.
#ifndef DEVMEM_PROVIDERS_KERNEL_ETHTOOL_H_
#define DEVMEM_PROVIDERS_KERNEL_ETHTOOL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "providers/kernel/netlink_message.h"
#include "providers/kernel/netlink_transport.h"

namespace devmem::kernel {

// ETHTOOL_MSG_RINGS_GET, the parts devmem cares about.
struct RingsConfig {
  // uapi::TcpDataSplit; the kernel omits the attribute for "unknown" (0).
  uint8_t tcp_data_split = 0;
  // Present when the kernel (6.13+) and driver report them.
  std::optional<uint32_t> hds_thresh;
  std::optional<uint32_t> hds_thresh_max;
};

// One ntuple steering rule: TCP over IPv4 or IPv6 to `queue`. Addresses are
// in network byte order (4 bytes used for IPv4); absent ones are wildcards.
struct NtupleRule {
  bool ipv6 = false;
  std::optional<std::array<uint8_t, 16>> src_ip;
  std::optional<std::array<uint8_t, 16>> dst_ip;
  uint16_t src_port = 0;  // host byte order; 0 = wildcard
  uint16_t dst_port = 0;
  uint32_t queue = 0;
};

class EthtoolOps {
 public:
  virtual ~EthtoolOps() = default;

  virtual absl::StatusOr<RingsConfig> GetRings(const std::string& dev) = 0;
  // Sets what is given; nullopt leaves a setting alone.
  virtual absl::Status SetRings(const std::string& dev,
                                std::optional<uint8_t> tcp_data_split,
                                std::optional<uint32_t> hds_thresh) = 0;

  // ETHTOOL_GRXRINGS: RX rings RSS and rules may target.
  virtual absl::StatusOr<uint32_t> GetRxRingCount(const std::string& dev) = 0;
  virtual absl::StatusOr<std::vector<uint32_t>> GetRxfhIndir(
      const std::string& dev) = 0;
  // An empty table resets the driver's default.
  virtual absl::Status SetRxfhIndir(const std::string& dev,
                                    absl::Span<const uint32_t> table) = 0;

  // Inserts a rule at a free location and returns that location.
  virtual absl::StatusOr<uint32_t> InsertRule(const std::string& dev,
                                              const NtupleRule& rule) = 0;
  virtual absl::Status DeleteRule(const std::string& dev,
                                  uint32_t location) = 0;
};

// The real thing: ethtool netlink over `transport` plus SIOCETHTOOL.
std::unique_ptr<EthtoolOps> CreateRealEthtoolOps(
    std::shared_ptr<NetlinkTransport> transport);

// Parses an ETHTOOL_MSG_RINGS_GET_REPLY's attributes (exposed for tests).
absl::StatusOr<RingsConfig> ParseRingsReply(absl::Span<const NlAttr> attrs);

}  // namespace devmem::kernel

#endif  // DEVMEM_PROVIDERS_KERNEL_ETHTOOL_H_
