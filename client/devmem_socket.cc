#include "client/devmem_socket.h"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem {

absl::Status ParseDevmemControl(absl::Span<const std::byte> control,
                                ParsedControl* out) {
  // Walk by hand rather than with CMSG_FIRSTHDR/NXTHDR: glibc's macros do not
  // check the first header's cmsg_len against msg_controllen, and a garbage
  // length must never make us read past the buffer.
  ParsedControl parsed;
  parsed.linear_bytes = out->linear_bytes;
  const size_t header = CMSG_LEN(0);
  const size_t total = control.size();
  size_t off = 0;
  while (off + sizeof(cmsghdr) <= total) {
    cmsghdr h;
    std::memcpy(&h, control.data() + off, sizeof(h));
    if (h.cmsg_len < header) {
      return absl::DataLossError(absl::StrCat("devmem cmsg at byte ", off,
                                              ": cmsg_len ", h.cmsg_len,
                                              " is smaller than a header"));
    }
    if (h.cmsg_len > total - off) {
      return absl::DataLossError(
          absl::StrCat("devmem cmsg at byte ", off, ": cmsg_len ", h.cmsg_len,
                       " runs past the control buffer (", total, " bytes)"));
    }
    const size_t data_len = h.cmsg_len - header;
    const bool devmem =
        h.cmsg_level == SOL_SOCKET && (h.cmsg_type == uapi::kScmDevmemDmabuf ||
                                       h.cmsg_type == uapi::kScmDevmemLinear);
    if (!devmem) {
      ++parsed.foreign_cmsgs;
    } else {
      if (data_len < sizeof(uapi::DmabufCmsg)) {
        return absl::DataLossError(
            absl::StrCat("devmem cmsg at byte ", off, ": ", data_len,
                         " payload bytes, struct dmabuf_cmsg needs ",
                         sizeof(uapi::DmabufCmsg)));
      }
      uapi::DmabufCmsg rec;
      std::memcpy(&rec, control.data() + off + header, sizeof(rec));
      Frag f;
      f.size = rec.frag_size;
      if (h.cmsg_type == uapi::kScmDevmemLinear) {
        f.kind = Frag::Kind::kLinear;
        f.offset = parsed.linear_bytes;
        parsed.linear_bytes += rec.frag_size;
      } else {
        if (rec.frag_size == 0) {
          return absl::DataLossError(absl::StrCat(
              "devmem cmsg at byte ", off, ": DMABUF frag of size 0 (token ",
              rec.frag_token, ")"));
        }
        f.kind = Frag::Kind::kDmabuf;
        f.offset = rec.frag_offset;
        f.token = rec.frag_token;
        f.binding_id = rec.dmabuf_id;
        parsed.dmabuf_bytes += rec.frag_size;
      }
      if (f.size > 0) parsed.frags.push_back(f);
    }
    const size_t step = CMSG_ALIGN(h.cmsg_len);
    if (step >= total - off) break;
    off += step;
  }
  out->frags.insert(out->frags.end(), parsed.frags.begin(), parsed.frags.end());
  out->dmabuf_bytes += parsed.dmabuf_bytes;
  out->linear_bytes = parsed.linear_bytes;
  out->foreign_cmsgs += parsed.foreign_cmsgs;
  return absl::OkStatus();
}

void AppendDevmemCmsg(int type, const uapi::DmabufCmsg& record,
                      std::vector<std::byte>* buffer) {
  const size_t start = buffer->size();
  buffer->resize(start + CMSG_SPACE(sizeof(record)), std::byte{0});
  cmsghdr h{};
  h.cmsg_len = CMSG_LEN(sizeof(record));
  h.cmsg_level = SOL_SOCKET;
  h.cmsg_type = type;
  std::memcpy(buffer->data() + start, &h, sizeof(h));
  std::memcpy(buffer->data() + start + CMSG_LEN(0), &record, sizeof(record));
}

absl::Status ParseZerocopyControl(absl::Span<const std::byte> control,
                                  std::vector<ZerocopyRange>* out) {
  const size_t header = CMSG_LEN(0);
  const size_t total = control.size();
  size_t off = 0;
  while (off + sizeof(cmsghdr) <= total) {
    cmsghdr h;
    std::memcpy(&h, control.data() + off, sizeof(h));
    if (h.cmsg_len < header || h.cmsg_len > total - off) {
      return absl::DataLossError(absl::StrCat("error-queue cmsg at byte ", off,
                                              ": bad cmsg_len ", h.cmsg_len));
    }
    const bool recverr =
        (h.cmsg_level == SOL_IP && h.cmsg_type == IP_RECVERR) ||
        (h.cmsg_level == SOL_IPV6 && h.cmsg_type == IPV6_RECVERR);
    if (recverr) {
      if (h.cmsg_len - header < sizeof(sock_extended_err)) {
        return absl::DataLossError(absl::StrCat("error-queue cmsg at byte ",
                                                off,
                                                ": too short for "
                                                "sock_extended_err"));
      }
      sock_extended_err ee;
      std::memcpy(&ee, control.data() + off + header, sizeof(ee));
      if (ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY) {
        if (ee.ee_errno != 0) {
          return ErrnoToStatus(static_cast<int>(ee.ee_errno),
                               "MSG_ZEROCOPY completion");
        }
        out->push_back(ZerocopyRange{ee.ee_info, ee.ee_data});
      } else if (ee.ee_errno != 0) {
        return ErrnoToStatus(static_cast<int>(ee.ee_errno),
                             "socket error queue");
      }
    }
    const size_t step = CMSG_ALIGN(h.cmsg_len);
    if (step >= total - off) break;
    off += step;
  }
  return absl::OkStatus();
}

}  // namespace devmem
