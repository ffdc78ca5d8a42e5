// GenlClient: one generic-netlink socket, with request/reply and dump
// exchanges, family resolution, and kernel errors turned into Status.
//
// Errors follow base/errno_status.h: the kernel's errno picks the code
// (ErrnoToCode) and travels as the Status payload (StatusErrno). The message
// carries the caller's context, the kernel's extended-ack text (or strerror),
// the errno name, and which request attribute the kernel blamed:
//   "eth1 (ifindex 4): bind-rx: Unknown attribute type (EINVAL), bad
//    attribute: queues"
// Errors a dump reports in its NLMSG_DONE payload are handled the same way.
// Replies that cannot be parsed give InvalidArgument (malformed message).
//
// Ownership: a GenlClient owns its endpoint; destroying it closes the socket,
// which unbinds every devmem binding made through it.
//
// Thread safety: not thread-safe; callers hold their own lock.
#ifndef DEVMEM_PROVIDERS_KERNEL_GENL_CLIENT_H_
#define DEVMEM_PROVIDERS_KERNEL_GENL_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "providers/kernel/netlink_message.h"
#include "providers/kernel/netlink_transport.h"

namespace devmem::kernel {

// What nlctrl says about a family (CTRL_CMD_GETFAMILY).
struct GenlFamily {
  struct Op {
    uint32_t id = 0;
    uint32_t flags = 0;  // GENL_ADMIN_PERM, GENL_CMD_CAP_DO, ...
  };
  std::string name;
  uint16_t id = 0;
  uint32_t version = 0;
  uint32_t max_attr = 0;
  std::vector<Op> ops;
  std::vector<std::pair<std::string, uint32_t>> mcast_groups;

  bool HasOp(uint32_t cmd) const;
};

// Parses a CTRL_CMD_GETFAMILY reply. InvalidArgument if it has no family id.
absl::StatusOr<GenlFamily> ParseFamily(const GenlMsg& msg);

// How to describe a request in errors.
struct RequestContext {
  std::string what;           // "eth1 (ifindex 4): bind-rx"
  AttrNamer namer = nullptr;  // names attributes of this request
  // Text used instead of strerror when the kernel sent no extack message;
  // returns "" to keep strerror.
  std::string (*explain)(int errnum) = nullptr;
};

// The Status for a kernel error `err` answering `request`. REQUIRES:
// err.errnum > 0.
absl::Status NlErrorToStatus(const NlError& err,
                             absl::Span<const uint8_t> request,
                             const RequestContext& ctx);

class GenlClient {
 public:
  using MsgCallback = absl::FunctionRef<absl::Status(const GenlMsg&)>;

  // Opens a NETLINK_GENERIC endpoint on `transport`.
  static absl::StatusOr<std::unique_ptr<GenlClient>> Open(
      NetlinkTransport& transport);

  explicit GenlClient(std::unique_ptr<NetlinkEndpoint> endpoint);
  GenlClient(const GenlClient&) = delete;
  GenlClient& operator=(const GenlClient&) = delete;

  // CTRL_CMD_GETFAMILY. NotFound (ENOENT) when the kernel lacks the family.
  absl::StatusOr<GenlFamily> ResolveFamily(absl::string_view name);

  // Sends `request` (built with NlBuilder; flags are set to REQUEST|ACK here)
  // and calls `on_reply` for each reply message before the ACK. The first
  // error (kernel's or the callback's) is returned.
  absl::Status Do(std::vector<uint8_t> request, const RequestContext& ctx,
                  MsgCallback on_reply);

  // Sends `request` as a dump (flags REQUEST|DUMP) and calls `on_msg` for
  // every record of every part until NLMSG_DONE.
  absl::Status Dump(std::vector<uint8_t> request, const RequestContext& ctx,
                    MsgCallback on_msg);

 private:
  absl::Status Exchange(std::vector<uint8_t> request, bool dump,
                        const RequestContext& ctx, MsgCallback on_msg);

  std::unique_ptr<NetlinkEndpoint> endpoint_;
  uint32_t seq_ = 1;
  std::vector<uint8_t> buf_;
};

}  // namespace devmem::kernel

#endif  // DEVMEM_PROVIDERS_KERNEL_GENL_CLIENT_H_
