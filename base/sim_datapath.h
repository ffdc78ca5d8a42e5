// The sim provider's data-path wire format: what a job reads and writes on
// the per-binding socket the simulated NIC makes, in place of the kernel's
// recvmsg(MSG_SOCK_DEVMEM) / setsockopt(SO_DEVMEM_DONTNEED) /
// sendmsg(MSG_ZEROCOPY) on a TCP socket.
//
// Transport: one AF_UNIX SOCK_SEQPACKET socket per binding, made by the sim
// provider with socketpair(); devmemd passes the job's end to the owning
// session over fd.sock (SCM_RIGHTS, in a DataPath message) right after a
// successful Bind, and never reads or writes it itself. The job may pass it
// on (like a TCP socket, it carries only this binding's flow).
//
// Every packet is one Header, then the type's fixed record (if it has one),
// then `count` units: records of the type's unit size, or bytes of UTF-8
// text. All integers are little endian; the records are exactly the kernel
// structs named below, so a job's parsing code is the same for both
// providers. Status codes are absl::StatusCode numbers (0: OK) with the
// errno behind them (0: none).
//
//   type            dir        fixed record   units
//   kRxFrags        sim->job   -              struct dmabuf_cmsg (24 B)
//   kDontneed       job->sim   -              struct dmabuf_token (8 B)
//   kDontneedDone   sim->job   DontneedDone   -
//   kTxConnect      job->sim   -              text "127.0.0.1:PORT"
//   kTxSend         job->sim   TxSend         -
//   kTxAccepted     sim->job   TxAccepted     text (why refused; else none)
//   kTxCompletion   sim->job   TxCompletion   -
//   kClosed         sim->job   StatusRecord   text
//   kError          sim->job   StatusRecord   text
//
// RX: the sim sends kRxFrags in stream order; each record holds one token
// (one chunk of the binding's region) until a kDontneed gives it back.
// kDontneed carries at most kMaxTokenRanges (128) ranges and at most
// kMaxTokensPerRelease (1024) tokens in all, as SO_DEVMEM_DONTNEED; the sim
// answers each with exactly one kDontneedDone, in order (frag packets may
// come before it). Over the limits nothing is freed and the answer carries
// E2BIG (InvalidArgument).
//
// kClosed ends one flow (one connection to the binding's endpoint): code 0
// when the sender closed cleanly, else why (link down: ENETDOWN). The socket
// stays open: tokens may still be returned, and the next flow's frags
// follow. The socket reads EOF only when the binding is gone (unbound, its
// session closed, the daemon stopped); every token still lent is then
// released by the sim, as the kernel does when a devmem socket closes.
// Closing the job's end does the same from the other side: the sim releases
// the binding's lent tokens and stops accepting flows for it.
//
// TX: kTxConnect once, then kTxSend per send (as sendmsg with
// SCM_DEVMEM_DMABUF); each is answered by one kTxAccepted (the send's id,
// 0 for the connect, or a refusal with code, errno and text: EFAULT for a
// range beyond the buffer, as the kernel). Completions arrive later as
// kTxCompletion ranges, as MSG_ZEROCOPY notifications on the error queue.
// kClosed says the connection to the peer ended; later sends are refused.
//
// kError answers a packet the sim could not take (unknown type, wrong size):
// nothing changed, and the socket stays usable.
//
// A job that sends without reading is not served without bound: once
// kMaxQueuedReplies answers wait unread, the sim stops reading its socket
// until it reads.
//
// Thread safety: plain layouts and pure functions.
#ifndef DEVMEM_BASE_SIM_DATAPATH_H_
#define DEVMEM_BASE_SIM_DATAPATH_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/uapi.h"

namespace devmem::simdp {

enum class Type : uint16_t {
  kRxFrags = 1,
  kDontneed = 2,
  kDontneedDone = 3,
  kTxConnect = 4,
  kTxSend = 5,
  kTxAccepted = 6,
  kTxCompletion = 7,
  kClosed = 8,
  kError = 9,
};

struct Header {
  Type type;
  uint16_t reserved;  // zero
  uint32_t count;     // units after the fixed record
};
static_assert(sizeof(Header) == 8);

// A status on the wire: absl::StatusCode number and errno (0: none).
struct StatusRecord {
  int32_t code;
  int32_t err;
};
static_assert(sizeof(StatusRecord) == 8);

// Reply to one kDontneed.
struct DontneedDone {
  uint32_t freed;     // tokens released
  uint32_t rejected;  // tokens not lent to this binding (never disturb counts)
  StatusRecord status;
};
static_assert(sizeof(DontneedDone) == 16);

struct TxSend {
  uint64_t offset;  // into the dmabuf
  uint64_t length;
};
static_assert(sizeof(TxSend) == 16);

// Reply to kTxConnect (send_id 0) or kTxSend.
struct TxAccepted {
  uint32_t send_id;
  uint32_t reserved;
  StatusRecord status;
};
static_assert(sizeof(TxAccepted) == 16);

// Sends [lo, hi] (inclusive; u32 ids that wrap) completed.
struct TxCompletion {
  uint32_t lo;
  uint32_t hi;
};
static_assert(sizeof(TxCompletion) == 8);

// The most frag records in one packet (about 48 KiB, well under the default
// socket buffer).
inline constexpr size_t kMaxFragsPerPacket = 2048;
// The longest text a packet carries.
inline constexpr size_t kMaxTextBytes = 1024;
// The largest packet either side sends.
inline constexpr size_t kMaxPacketBytes =
    sizeof(Header) + kMaxFragsPerPacket * sizeof(uapi::DmabufCmsg);
// Answers the sim keeps for a job that does not read, before it stops
// reading that job's socket.
inline constexpr size_t kMaxQueuedReplies = 256;

// One parsed packet; views into the bytes it was parsed from.
struct Packet {
  Type type;
  std::string_view fixed;  // the type's fixed record (may be empty)
  std::string_view units;  // count units
  uint32_t count = 0;
};

// Checks the header, the type and the length. InvalidArgument naming what
// is wrong ("packet type 77 unknown", "kDontneed: 13 bytes after the
// header, not a multiple of 8").
absl::StatusOr<Packet> Parse(std::string_view bytes);

// The type's name for messages ("kRxFrags"); "type N" for unknown ones.
std::string TypeName(uint16_t type);

// Builders: one whole packet each.
std::string RxFrags(absl::Span<const uapi::DmabufCmsg> frags);
std::string Dontneed(absl::Span<const uapi::DmabufToken> tokens);
std::string DontneedDonePacket(uint32_t freed, uint32_t rejected,
                               const absl::Status& status);
std::string TxConnect(std::string_view peer);
std::string TxSendPacket(uint64_t offset, uint64_t length);
std::string TxAcceptedPacket(uint32_t send_id, const absl::Status& status);
std::string TxCompletionPacket(uint32_t lo, uint32_t hi);
// kClosed / kError with `status` (its message cut at kMaxTextBytes).
std::string StatusPacket(Type type, const absl::Status& status);

// The status a StatusRecord and its text stand for (errno kept, so
// StatusErrno() works on the job's side as on the daemon's).
absl::Status ToStatus(const StatusRecord& r, std::string_view text);
StatusRecord ToRecord(const absl::Status& status);

// Copies a fixed record or unit `i` out of a parsed packet.
// REQUIRES: Parse() accepted the packet for a type of that record.
template <typename T>
T Fixed(const Packet& p) {
  T out;
  std::memcpy(&out, p.fixed.data(), sizeof(T));
  return out;
}
template <typename T>
T Unit(const Packet& p, size_t i) {
  T out;
  std::memcpy(&out, p.units.data() + i * sizeof(T), sizeof(T));
  return out;
}

}  // namespace devmem::simdp

#endif  // DEVMEM_BASE_SIM_DATAPATH_H_
