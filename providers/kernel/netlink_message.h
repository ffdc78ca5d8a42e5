// Netlink wire format: building requests and parsing replies, without I/O.
//
// A small, bounds-checked replacement for libmnl's attribute helpers (whose
// nested-attribute macros do not compile as C++ and whose mnl_cb_run drops
// extended acks). Everything here works on byte spans: parsing never reads
// outside the span it is given and never trusts a length field from the wire.
// Malformed input (a length that overruns, an attribute of the wrong size, an
// error code outside the errno range) gives InvalidArgument; nothing aborts.
//
//   NlBuilder b(family_id, NLM_F_REQUEST | NLM_F_ACK);
//   b.PutGenlHeader(kNetdevCmdBindRx, kNetdevFamilyVersion);
//   b.PutU32(kNetdevADmabufIfindex, 4);
//   size_t nest = b.BeginNest(kNetdevADmabufQueues);  // sets NLA_F_NESTED
//   b.PutU32(kNetdevAQueueIdId, 3);
//   b.EndNest(nest);
//   std::vector<uint8_t> bytes = std::move(b).Finish();
//
// Parsed views (NlMsg, NlAttr) point into the caller's buffer: they are valid
// only while that buffer is.
//
// Thread safety: free functions are thread-safe; an NlBuilder is not.
#ifndef DEVMEM_PROVIDERS_KERNEL_NETLINK_MESSAGE_H_
#define DEVMEM_PROVIDERS_KERNEL_NETLINK_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace devmem::kernel {

inline constexpr size_t kNlMsgHdrLen = 16;  // sizeof(struct nlmsghdr)
inline constexpr size_t kGenlHdrLen = 4;    // sizeof(struct genlmsghdr)
inline constexpr size_t kNlAttrHdrLen = 4;  // sizeof(struct nlattr)
inline constexpr uint16_t kNlaFNested = 0x8000;
inline constexpr uint16_t kNlaFNetByteorder = 0x4000;
inline constexpr uint16_t kNlaTypeMask = 0x3fff;

constexpr size_t NlAlign(size_t n) { return (n + 3) & ~size_t{3}; }

// One attribute. `offset` is where its header starts, counted from the start
// of the message the caller parsed (so it can be matched with the kernel's
// NLMSGERR_ATTR_OFFS, which counts from the request's nlmsghdr).
struct NlAttr {
  uint16_t type = 0;    // NLA_F_* flags removed
  bool nested = false;  // NLA_F_NESTED was set
  absl::Span<const uint8_t> payload;
  size_t offset = 0;
};

// Splits `data` into attributes. `base_offset` is added to every `offset`.
// A trailing piece shorter than an attribute header, or an attribute whose
// length overruns `data` or is below the header size, is InvalidArgument.
absl::StatusOr<std::vector<NlAttr>> ParseAttrs(absl::Span<const uint8_t> data,
                                               size_t base_offset = 0);

// The first attribute of `type` in `attrs`, or null.
const NlAttr* FindAttr(absl::Span<const NlAttr> attrs, uint16_t type);

// Typed readers; InvalidArgument when the payload has the wrong size.
absl::StatusOr<uint8_t> AttrU8(const NlAttr& attr);
absl::StatusOr<uint16_t> AttrU16(const NlAttr& attr);
absl::StatusOr<uint32_t> AttrU32(const NlAttr& attr);
absl::StatusOr<uint64_t> AttrU64(const NlAttr& attr);
absl::StatusOr<int32_t> AttrS32(const NlAttr& attr);
// A netlink `uint`: 4 bytes when the value fits in 32 bits, else 8.
absl::StatusOr<uint64_t> AttrUint(const NlAttr& attr);
// A string; stops at the first NUL (one is not required).
std::string AttrString(const NlAttr& attr);
// The payload of a nest parsed as attributes (offsets stay message-relative).
absl::StatusOr<std::vector<NlAttr>> AttrNested(const NlAttr& attr);

// One netlink message inside a datagram.
struct NlMsg {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint32_t seq = 0;
  uint32_t pid = 0;
  absl::Span<const uint8_t> payload;  // after the nlmsghdr
};

// Splits one received datagram into messages. InvalidArgument if a header is
// truncated or a length is below the header size or overruns the datagram.
absl::StatusOr<std::vector<NlMsg>> SplitMessages(
    absl::Span<const uint8_t> datagram);

// A generic-netlink message: genlmsghdr plus attributes. Attribute offsets
// count from the nlmsghdr (the payload is assumed to start 16 bytes in).
struct GenlMsg {
  uint8_t cmd = 0;
  uint8_t version = 0;
  std::vector<NlAttr> attrs;
};
absl::StatusOr<GenlMsg> ParseGenl(const NlMsg& msg);

// An NLMSG_ERROR (ack or error) or the status carried by an NLMSG_DONE, with
// its extended-ack TLVs.
struct NlError {
  int errnum = 0;       // positive errno; 0 for an ACK / clean DONE
  std::string message;  // NLMSGERR_ATTR_MSG
  std::optional<uint32_t> bad_attr_offset;      // NLMSGERR_ATTR_OFFS
  std::optional<uint32_t> missing_type;         // NLMSGERR_ATTR_MISS_TYPE
  std::optional<uint32_t> missing_nest_offset;  // NLMSGERR_ATTR_MISS_NEST
  uint32_t request_seq = 0;  // NLMSG_ERROR only: the echoed request's seq
};
// REQUIRES: msg.type == NLMSG_ERROR.
absl::StatusOr<NlError> ParseNlError(const NlMsg& msg);
// REQUIRES: msg.type == NLMSG_DONE. An empty payload is a clean end.
absl::StatusOr<NlError> ParseNlDone(const NlMsg& msg);

// Builds one request message. The nlmsghdr's seq and pid are left zero; the
// sender fills in seq (SetSeq) right before sending.
class NlBuilder {
 public:
  NlBuilder(uint16_t type, uint16_t flags);

  void PutGenlHeader(uint8_t cmd, uint8_t version);
  // Raw fixed header bytes (e.g. struct ifinfomsg for rtnetlink), padded.
  void PutRaw(absl::Span<const uint8_t> bytes);

  void PutU8(uint16_t type, uint8_t value);
  void PutU16(uint16_t type, uint16_t value);
  void PutU32(uint16_t type, uint32_t value);
  void PutU64(uint16_t type, uint64_t value);
  void PutString(uint16_t type, absl::string_view value);  // NUL-terminated
  void PutBytes(uint16_t type, absl::Span<const uint8_t> value);

  // Opens a nest (type | NLA_F_NESTED); returns a handle for EndNest.
  size_t BeginNest(uint16_t type);
  void EndNest(size_t handle);

  // The finished message (nlmsg_len set).
  std::vector<uint8_t> Finish() &&;

 private:
  std::vector<uint8_t> buf_;
};

// Writes `seq` into a built message's nlmsghdr. REQUIRES: msg.size() >= 16.
void SetSeq(std::vector<uint8_t>& msg, uint32_t seq);

// Names attributes of a request for error messages: `path` lists attribute
// types from the top level down ({2, 1} = queues -> id). Returns "" when it
// has no name (the caller then prints the number).
using AttrNamer = std::string (*)(absl::Span<const uint16_t> path);

// The attribute path in a generic-netlink `request` whose header starts at
// `offset` (counted from the nlmsghdr), descending into NLA_F_NESTED nests.
// nullopt when no attribute starts there.
std::optional<std::vector<uint16_t>> FindAttrPath(
    absl::Span<const uint8_t> request, uint32_t offset);

// "queues", "queues.id", or "attribute 7" / "attribute 2.7" without a name.
std::string DescribeAttrPath(absl::Span<const uint16_t> path, AttrNamer namer);

}  // namespace devmem::kernel

#endif  // DEVMEM_PROVIDERS_KERNEL_NETLINK_MESSAGE_H_
