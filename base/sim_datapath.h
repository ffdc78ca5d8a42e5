// The sim provider's data-path wire format: what a job reads and writes on
// the per-binding socket the simulated NIC makes, in place of the kernel's
// recvmsg(MSG_SOCK_DEVMEM) / setsockopt(SO_DEVMEM_DONTNEED) /
// sendmsg(MSG_ZEROCOPY) on a TCP socket.
//
// Transport: one AF_UNIX SOCK_SEQPACKET socket per binding, made by the sim
// provider with socketpair(); devmemd passes the job's end to the owning
// session over fd.sock (SCM_RIGHTS, in a DataPath message) right after a
// successful Bind, and never reads or writes it itself. The job may pass it
// on (like a TCP socket, it carries only this binding's flow). Closing
// either end ends the data path; the sim then releases every token still
// lent, as the kernel does when a devmem socket closes.
//
// Every packet is one SimDpHeader followed by `count` records of the type's
// record size (or, for the text-bearing types, `count` bytes of UTF-8). All
// integers are little endian, exactly the layouts of the kernel structs
// named below, so a job's parsing code is the same for both providers.
//
// Packets, by direction:
//   sim -> job: kRxFrags (N x struct dmabuf_cmsg), kDontneedDone (one
//               DontneedDone), kTxAccepted (one TxAccepted), kTxCompletion
//               (one TxCompletion), kClosed (one Closed, then message text)
//   job -> sim: kDontneed (N x struct dmabuf_token), kTxConnect (the text
//               "127.0.0.1:PORT"), kTxSend (one TxSend)
//
// RX: the sim sends kRxFrags records in stream order; each record holds one
// token (one chunk of the binding's region) until a kDontneed gives it back.
// kDontneed carries at most kMaxTokenRanges (128) ranges and at most
// kMaxTokensPerRelease (1024) tokens in all, as SO_DEVMEM_DONTNEED; the sim
// answers each with exactly one kDontneedDone, in order (frag packets may
// come before it). A kDontneed over the limits frees nothing and is answered
// with status E2BIG-class InvalidArgument.
//
// TX: kTxConnect once, then kTxSend per send (as sendmsg with
// SCM_DEVMEM_DMABUF); each is answered by one kTxAccepted (the send's id, or
// a status); completions arrive later as kTxCompletion ranges, as
// MSG_ZEROCOPY notifications on the error queue.
//
// kClosed is the last packet: the flow ended (code 0: the sender closed
// cleanly; else why: link down, binding unbound, device removed). After it
// the socket reads EOF.
//
// Thread safety: plain layouts; no code.
#ifndef DEVMEM_BASE_SIM_DATAPATH_H_
#define DEVMEM_BASE_SIM_DATAPATH_H_

#include <cstddef>
#include <cstdint>

#include "base/uapi.h"

namespace devmem::simdp {

enum class Type : uint16_t {
  kRxFrags = 1,       // sim -> job: count x uapi::DmabufCmsg
  kDontneed = 2,      // job -> sim: count x uapi::DmabufToken
  kDontneedDone = 3,  // sim -> job: one DontneedDone
  kTxConnect = 4,     // job -> sim: count bytes of "host:port"
  kTxSend = 5,        // job -> sim: one TxSend
  kTxAccepted = 6,    // sim -> job: one TxAccepted
  kTxCompletion = 7,  // sim -> job: one TxCompletion
  kClosed = 8,        // sim -> job: one Closed, then count bytes of text
};

struct Header {
  Type type;
  uint16_t reserved;  // zero
  uint32_t count;     // records (or bytes of text) after the header
};
static_assert(sizeof(Header) == 8);

// Reply to one kDontneed. `code` is an absl::StatusCode number (0: OK).
struct DontneedDone {
  uint32_t freed;     // tokens released
  uint32_t rejected;  // tokens not lent to this binding (never disturb counts)
  int32_t code;
  uint32_t reserved;
};
static_assert(sizeof(DontneedDone) == 16);

struct TxSend {
  uint64_t offset;  // into the dmabuf
  uint64_t length;
};
static_assert(sizeof(TxSend) == 16);

// Reply to kTxConnect (send_id 0) or kTxSend. `code` != 0: refused, and a
// Closed-style text may follow in `count` bytes after this record.
struct TxAccepted {
  uint32_t send_id;
  int32_t code;
};
static_assert(sizeof(TxAccepted) == 8);

// Sends [lo, hi] (inclusive; u32 ids that wrap) completed.
struct TxCompletion {
  uint32_t lo;
  uint32_t hi;
};
static_assert(sizeof(TxCompletion) == 8);

struct Closed {
  int32_t code;  // absl::StatusCode number; 0: clean end of stream
  uint32_t reserved;
};
static_assert(sizeof(Closed) == 8);

// The largest packet either side sends: a header and 2048 frag records
// (about 48 KiB, well under the default socket buffer).
inline constexpr size_t kMaxFragsPerPacket = 2048;
inline constexpr size_t kMaxPacketBytes =
    sizeof(Header) + kMaxFragsPerPacket * sizeof(uapi::DmabufCmsg);
// The longest text in kTxConnect / kClosed.
inline constexpr size_t kMaxTextBytes = 1024;

}  // namespace devmem::simdp

#endif  // DEVMEM_BASE_SIM_DATAPATH_H_
