// The socket side of devmem TCP, as plain functions over bytes: parsing the
// control messages recvmsg(MSG_SOCK_DEVMEM) returns, and cutting token
// returns into SO_DEVMEM_DONTNEED batches. RxSocket and TxSender build on
// these; they are public so that tests (and jobs with their own receive
// loop) can use them on synthetic buffers, without a devmem NIC.
//
// Facts (shared/reference/kernel-devmem.md, section 3):
//   * every cmsg is level SOL_SOCKET; SCM_DEVMEM_DMABUF (79) carries a
//     struct dmabuf_cmsg (24 bytes) naming a fragment in the dmabuf and its
//     token; SCM_DEVMEM_LINEAR (78) says frag_size bytes were copied into the
//     caller's iov (headers, or payload that was not split);
//   * SO_DEVMEM_DONTNEED takes at most 128 struct dmabuf_token ranges per
//     call, and processes at most 1024 frags per call (then returns early).
//
// Thread safety: every function is thread-safe (stateless).
#ifndef DEVMEM_CLIENT_DEVMEM_SOCKET_H_
#define DEVMEM_CLIENT_DEVMEM_SOCKET_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/uapi.h"

namespace devmem {

// One piece of received payload, in stream order.
struct Frag {
  enum class Kind : uint8_t {
    // The payload is in the dmabuf at [offset, offset + size); `token` holds
    // the chunk until it is returned.
    kDmabuf,
    // The payload was copied into host memory: RxBatch::linear at
    // [offset, offset + size). No token.
    kLinear,
  };
  Kind kind = Kind::kDmabuf;
  uint32_t size = 0;
  uint64_t offset = 0;
  uint32_t token = 0;       // kDmabuf only
  uint32_t binding_id = 0;  // kDmabuf only: the dmabuf_id the NIC reported

  bool is_dmabuf() const { return kind == Kind::kDmabuf; }
};

// What one control buffer held.
struct ParsedControl {
  std::vector<Frag> frags;     // DMABUF and LINEAR records, in order
  uint64_t dmabuf_bytes = 0;   // sum of DMABUF frag sizes
  uint64_t linear_bytes = 0;   // sum of LINEAR frag sizes
  uint32_t foreign_cmsgs = 0;  // other levels/types (skipped)
};

// Parses `control` (msg_control[0, msg_controllen) after recvmsg) and appends
// to `out`. Linear frags get consecutive offsets into the iov, starting at
// out->linear_bytes. Never reads outside `control`.
// Errors (nothing is appended then):
//   DataLoss: a cmsg header or payload runs past the end of the buffer, a
//     cmsg_len smaller than a header, a devmem cmsg shorter than
//     struct dmabuf_cmsg, or a DMABUF frag of size 0.
// Tokens of a buffer that failed to parse cannot be trusted; the caller
// should treat the socket as broken (closing a socket frees its tokens).
absl::Status ParseDevmemControl(absl::Span<const std::byte> control,
                                ParsedControl* out);

// Appends one well-formed cmsg (level SOL_SOCKET) to `buffer`, padded as
// CMSG_SPACE: the encoder tests and the fake kernel use.
void AppendDevmemCmsg(int type, const uapi::DmabufCmsg& record,
                      std::vector<std::byte>* buffer);

// A MSG_ZEROCOPY completion: sends [lo, hi] (inclusive; u32 ids that wrap)
// are done with the buffer.
struct ZerocopyRange {
  uint32_t lo = 0;
  uint32_t hi = 0;
};

// Parses the control buffer of recvmsg(MSG_ERRQUEUE) on a TCP socket:
// IP_RECVERR / IPV6_RECVERR cmsgs carrying struct sock_extended_err with
// ee_origin SO_EE_ORIGIN_ZEROCOPY (range ee_info..ee_data) are appended to
// `out`; other errors are returned as the errno they carry (a send failed:
// ee_errno), other cmsgs skipped. DataLoss for a malformed buffer.
absl::Status ParseZerocopyControl(absl::Span<const std::byte> control,
                                  std::vector<ZerocopyRange>* out);

}  // namespace devmem

#endif  // DEVMEM_CLIENT_DEVMEM_SOCKET_H_
