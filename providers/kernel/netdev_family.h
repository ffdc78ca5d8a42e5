// The `netdev` generic-netlink family: typed records for its dumps and the
// bind-rx / bind-tx requests (numbers in base/uapi.h, facts in
// shared/reference/kernel-devmem.md section 1).
//
// Record parsers accept what 6.12 - 6.18 kernels send and ignore attributes
// they do not know (newer kernels add some). `uint` attributes may be 4 or 8
// bytes. A record without its key attributes (ifindex, id) or with an
// attribute of the wrong size is InvalidArgument.
//
// NetdevClient wraps one GenlClient (one socket). For bindings, use one
// NetdevClient per binding: the socket that sent bind-rx/bind-tx owns the
// binding and closing it unbinds (there is no unbind command).
//
// Thread safety: parsers are thread-safe; a NetdevClient is not.
#ifndef DEVMEM_PROVIDERS_KERNEL_NETDEV_FAMILY_H_
#define DEVMEM_PROVIDERS_KERNEL_NETDEV_FAMILY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"
#include "providers/kernel/genl_client.h"
#include "providers/kernel/netlink_message.h"
#include "providers/kernel/netlink_transport.h"

namespace devmem::kernel {

// dev-get.
struct DevRecord {
  uint32_t ifindex = 0;
  uint64_t xdp_features = 0;
  std::optional<uint32_t> xdp_zc_max_segs;
  uint64_t xdp_rx_metadata_features = 0;
  uint64_t xsk_features = 0;
};

// queue-get.
struct QueueRecord {
  uint32_t id = 0;
  uint32_t ifindex = 0;
  uint32_t type = 0;  // uapi::kNetdevQueueTypeRx / Tx
  std::optional<uint32_t> napi_id;
  std::optional<uint32_t> dmabuf;  // binding id (RX, 6.12)
  bool io_uring = false;           // 6.15
  bool xsk = false;                // 6.15
};

// napi-get.
struct NapiRecord {
  uint32_t ifindex = 0;
  uint32_t id = 0;
  std::optional<uint32_t> irq;
  std::optional<uint32_t> pid;
  std::optional<uint32_t> defer_hard_irqs;
  std::optional<uint64_t> gro_flush_timeout;
  std::optional<uint64_t> irq_suspend_timeout;
  std::optional<uint32_t> threaded;
};

// page-pool-get.
struct PagePoolRecord {
  uint64_t id = 0;
  std::optional<uint32_t> ifindex;  // absent once orphaned onto loopback
  std::optional<uint64_t> napi_id;
  std::optional<uint64_t> inflight;
  std::optional<uint64_t> inflight_mem;
  std::optional<uint64_t> detach_time;  // CLOCK_BOOTTIME seconds
  std::optional<uint32_t> dmabuf;       // binding id
  bool io_uring = false;
};

// qstats-get. `counters` maps NetdevAQstats ids (8 and up) to values.
struct QstatsRecord {
  uint32_t ifindex = 0;
  std::optional<uint32_t> queue_type;
  std::optional<uint32_t> queue_id;
  std::map<uint16_t, uint64_t> counters;

  uint64_t Counter(uint16_t type) const;  // 0 when absent
};

absl::StatusOr<DevRecord> ParseDevRecord(absl::Span<const NlAttr> attrs);
absl::StatusOr<QueueRecord> ParseQueueRecord(absl::Span<const NlAttr> attrs);
absl::StatusOr<NapiRecord> ParseNapiRecord(absl::Span<const NlAttr> attrs);
absl::StatusOr<PagePoolRecord> ParsePagePoolRecord(
    absl::Span<const NlAttr> attrs);
absl::StatusOr<QstatsRecord> ParseQstatsRecord(absl::Span<const NlAttr> attrs);

// Names of "dmabuf" attributes for errors: ifindex, queues, queues.id, ...
std::string DmabufAttrName(absl::Span<const uint16_t> path);

// Requests. `family` is the resolved netdev family id.
std::vector<uint8_t> BuildDumpRequest(uint16_t family, uint8_t cmd);
std::vector<uint8_t> BuildQueueDumpRequest(uint16_t family,
                                           std::optional<uint32_t> ifindex);
std::vector<uint8_t> BuildQstatsDumpRequest(uint16_t family,
                                            std::optional<uint32_t> ifindex,
                                            bool per_queue);
// bind-rx: ifindex, fd, one NLA_F_NESTED `queues` nest {id, type=rx} per
// queue.
std::vector<uint8_t> BuildBindRxRequest(uint16_t family, uint32_t ifindex,
                                        BorrowedFd dmabuf,
                                        absl::Span<const uint32_t> queues);
std::vector<uint8_t> BuildBindTxRequest(uint16_t family, uint32_t ifindex,
                                        BorrowedFd dmabuf);

// The text used for EOPNOTSUPP from bind-rx when the kernel gave none (the
// 6.15+ ops-lock check and the <= 6.14 queue restart both say nothing).
inline constexpr char kNoQueueApiText[] =
    "driver lacks the queue management API needed for devmem";

class NetdevClient {
 public:
  // Opens a socket on `transport` and resolves the family unless `family_id`
  // is given (the id is global to the kernel, so one resolution serves every
  // later socket).
  static absl::StatusOr<std::unique_ptr<NetdevClient>> Open(
      NetlinkTransport& transport, std::optional<uint16_t> family_id);

  NetdevClient(std::unique_ptr<GenlClient> genl, uint16_t family_id);

  uint16_t family_id() const { return family_id_; }

  absl::StatusOr<std::vector<DevRecord>> DumpDevs();
  absl::StatusOr<std::vector<QueueRecord>> DumpQueues(
      std::optional<uint32_t> ifindex);
  absl::StatusOr<std::vector<NapiRecord>> DumpNapis();
  absl::StatusOr<std::vector<PagePoolRecord>> DumpPagePools();
  absl::StatusOr<std::vector<QstatsRecord>> DumpQstats(
      std::optional<uint32_t> ifindex, bool per_queue);

  // bind-rx / bind-tx; the binding id on success. `device` names the device
  // in errors ("eth1 (ifindex 4)"). The binding lives as long as this client.
  absl::StatusOr<uint32_t> BindRx(const std::string& device, uint32_t ifindex,
                                  BorrowedFd dmabuf,
                                  absl::Span<const uint32_t> queues);
  absl::StatusOr<uint32_t> BindTx(const std::string& device, uint32_t ifindex,
                                  BorrowedFd dmabuf);

 private:
  absl::StatusOr<uint32_t> Bind(std::vector<uint8_t> request,
                                RequestContext ctx);

  std::unique_ptr<GenlClient> genl_;
  uint16_t family_id_;
};

}  // namespace devmem::kernel

#endif  // DEVMEM_PROVIDERS_KERNEL_NETDEV_FAMILY_H_
