#include "providers/kernel/netlink_message.h"

#include <linux/netlink.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace devmem::kernel {
namespace {

template <typename T>
T LoadLe(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

absl::Status SizeError(const NlAttr& attr, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("netlink attribute ", attr.type, ": expected ", what,
                   ", got ", attr.payload.size(), " bytes"));
}

template <typename T>
absl::StatusOr<T> AttrFixed(const NlAttr& attr) {
  if (attr.payload.size() != sizeof(T)) {
    return SizeError(attr, absl::StrCat(sizeof(T), " bytes"));
  }
  return LoadLe<T>(attr.payload.data());
}

// Offset of the error TLVs after `struct nlmsgerr`: the echoed request header,
// plus its payload unless the kernel capped it (NETLINK_CAP_ACK).
absl::StatusOr<NlError> ParseErrorTlvs(NlError err,
                                       absl::Span<const uint8_t> tlvs) {
  absl::StatusOr<std::vector<NlAttr>> attrs = ParseAttrs(tlvs);
  if (!attrs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed extended ack: ", attrs.status().message()));
  }
  for (const NlAttr& a : *attrs) {
    switch (a.type) {
      case NLMSGERR_ATTR_MSG:
        err.message = AttrString(a);
        break;
      case NLMSGERR_ATTR_OFFS: {
        absl::StatusOr<uint32_t> v = AttrU32(a);
        if (!v.ok()) return v.status();
        err.bad_attr_offset = *v;
        break;
      }
      case NLMSGERR_ATTR_MISS_TYPE: {
        absl::StatusOr<uint32_t> v = AttrU32(a);
        if (!v.ok()) return v.status();
        err.missing_type = *v;
        break;
      }
      case NLMSGERR_ATTR_MISS_NEST: {
        absl::StatusOr<uint32_t> v = AttrU32(a);
        if (!v.ok()) return v.status();
        err.missing_nest_offset = *v;
        break;
      }
      default:  // cookie, policy: not used
        break;
    }
  }
  return err;
}

// Kernel errors are -errno with errno in [1, 4095] (MAX_ERRNO).
absl::StatusOr<int> DecodeError(int32_t raw) {
  if (raw > 0 || raw < -4095) {
    return absl::InvalidArgumentError(
        absl::StrCat("netlink error code ", raw, " is not a negative errno"));
  }
  return -raw;
}

}  // namespace

absl::StatusOr<std::vector<NlAttr>> ParseAttrs(absl::Span<const uint8_t> data,
                                               size_t base_offset) {
  std::vector<NlAttr> out;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t left = data.size() - pos;
    if (left < kNlAttrHdrLen) {
      return absl::InvalidArgumentError(absl::StrCat(
          "truncated netlink attribute header at offset ", base_offset + pos));
    }
    const uint16_t len = LoadLe<uint16_t>(data.data() + pos);
    const uint16_t raw_type = LoadLe<uint16_t>(data.data() + pos + 2);
    if (len < kNlAttrHdrLen || len > left) {
      return absl::InvalidArgumentError(absl::StrCat(
          "netlink attribute ", raw_type & kNlaTypeMask, " at offset ",
          base_offset + pos, " has length ", len, " (", left, " bytes left)"));
    }
    NlAttr attr;
    attr.type = raw_type & kNlaTypeMask;
    attr.nested = (raw_type & kNlaFNested) != 0;
    attr.payload = data.subspan(pos + kNlAttrHdrLen, len - kNlAttrHdrLen);
    attr.offset = base_offset + pos;
    out.push_back(attr);
    // The last attribute's padding may be missing; never step past the end.
    pos += std::min(NlAlign(len), left);
  }
  return out;
}

const NlAttr* FindAttr(absl::Span<const NlAttr> attrs, uint16_t type) {
  for (const NlAttr& a : attrs) {
    if (a.type == type) return &a;
  }
  return nullptr;
}

absl::StatusOr<uint8_t> AttrU8(const NlAttr& attr) {
  return AttrFixed<uint8_t>(attr);
}
absl::StatusOr<uint16_t> AttrU16(const NlAttr& attr) {
  return AttrFixed<uint16_t>(attr);
}
absl::StatusOr<uint32_t> AttrU32(const NlAttr& attr) {
  return AttrFixed<uint32_t>(attr);
}
absl::StatusOr<uint64_t> AttrU64(const NlAttr& attr) {
  return AttrFixed<uint64_t>(attr);
}
absl::StatusOr<int32_t> AttrS32(const NlAttr& attr) {
  return AttrFixed<int32_t>(attr);
}

absl::StatusOr<uint64_t> AttrUint(const NlAttr& attr) {
  if (attr.payload.size() == 4) return LoadLe<uint32_t>(attr.payload.data());
  if (attr.payload.size() == 8) return LoadLe<uint64_t>(attr.payload.data());
  return SizeError(attr, "4 or 8 bytes (uint)");
}

std::string AttrString(const NlAttr& attr) {
  const auto* begin = reinterpret_cast<const char*>(attr.payload.data());
  const void* nul = std::memchr(begin, '\0', attr.payload.size());
  const size_t n =
      nul == nullptr
          ? attr.payload.size()
          : static_cast<size_t>(static_cast<const char*>(nul) - begin);
  return std::string(begin, n);
}

absl::StatusOr<std::vector<NlAttr>> AttrNested(const NlAttr& attr) {
  return ParseAttrs(attr.payload, attr.offset + kNlAttrHdrLen);
}

absl::StatusOr<std::vector<NlMsg>> SplitMessages(
    absl::Span<const uint8_t> datagram) {
  std::vector<NlMsg> out;
  size_t pos = 0;
  while (pos < datagram.size()) {
    const size_t left = datagram.size() - pos;
    if (left < kNlMsgHdrLen) {
      return absl::InvalidArgumentError(
          absl::StrCat("truncated netlink message header (", left, " bytes)"));
    }
    const uint8_t* p = datagram.data() + pos;
    const uint32_t len = LoadLe<uint32_t>(p);
    if (len < kNlMsgHdrLen || len > left) {
      return absl::InvalidArgumentError(absl::StrCat(
          "netlink message length ", len, " invalid (", left, " bytes left)"));
    }
    NlMsg msg;
    msg.type = LoadLe<uint16_t>(p + 4);
    msg.flags = LoadLe<uint16_t>(p + 6);
    msg.seq = LoadLe<uint32_t>(p + 8);
    msg.pid = LoadLe<uint32_t>(p + 12);
    msg.payload = datagram.subspan(pos + kNlMsgHdrLen, len - kNlMsgHdrLen);
    out.push_back(msg);
    pos += std::min<size_t>(NlAlign(len), left);
  }
  return out;
}

absl::StatusOr<GenlMsg> ParseGenl(const NlMsg& msg) {
  if (msg.payload.size() < kGenlHdrLen) {
    return absl::InvalidArgumentError(absl::StrCat(
        "generic netlink message of type ", msg.type,
        " too short for its header (", msg.payload.size(), " bytes)"));
  }
  GenlMsg out;
  out.cmd = msg.payload[0];
  out.version = msg.payload[1];
  absl::StatusOr<std::vector<NlAttr>> attrs =
      ParseAttrs(msg.payload.subspan(kGenlHdrLen), kNlMsgHdrLen + kGenlHdrLen);
  if (!attrs.ok()) return attrs.status();
  out.attrs = *std::move(attrs);
  return out;
}

absl::StatusOr<NlError> ParseNlError(const NlMsg& msg) {
  // struct nlmsgerr { int error; struct nlmsghdr msg; }
  constexpr size_t kErrLen = 4 + kNlMsgHdrLen;
  if (msg.payload.size() < kErrLen) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated NLMSG_ERROR (", msg.payload.size(), " bytes)"));
  }
  NlError err;
  absl::StatusOr<int> errnum = DecodeError(LoadLe<int32_t>(msg.payload.data()));
  if (!errnum.ok()) return errnum.status();
  err.errnum = *errnum;
  err.request_seq = LoadLe<uint32_t>(msg.payload.data() + 4 + 8);
  if ((msg.flags & NLM_F_ACK_TLVS) == 0) return err;
  size_t tlv_start = kErrLen;
  if ((msg.flags & NLM_F_CAPPED) == 0) {
    // The whole request was echoed: skip its payload too.
    const uint32_t echoed = LoadLe<uint32_t>(msg.payload.data() + 4);
    if (echoed < kNlMsgHdrLen || 4 + NlAlign(echoed) > msg.payload.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("NLMSG_ERROR echoes a request of ", echoed, " bytes in ",
                       msg.payload.size()));
    }
    tlv_start = 4 + NlAlign(echoed);
  }
  return ParseErrorTlvs(std::move(err), msg.payload.subspan(tlv_start));
}

absl::StatusOr<NlError> ParseNlDone(const NlMsg& msg) {
  NlError err;
  if (msg.payload.empty()) return err;
  if (msg.payload.size() < 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "truncated NLMSG_DONE status (", msg.payload.size(), " bytes)"));
  }
  absl::StatusOr<int> errnum = DecodeError(LoadLe<int32_t>(msg.payload.data()));
  if (!errnum.ok()) return errnum.status();
  err.errnum = *errnum;
  if ((msg.flags & NLM_F_ACK_TLVS) == 0) return err;
  return ParseErrorTlvs(std::move(err), msg.payload.subspan(4));
}

NlBuilder::NlBuilder(uint16_t type, uint16_t flags) {
  // The header is built in place and copied in once: growing the empty
  // vector with resize() makes GCC 12 (-O3) warn about a zero-length move
  // past its end (-Warray-bounds, a false positive).
  uint8_t hdr[kNlMsgHdrLen] = {};
  std::memcpy(hdr + 4, &type, 2);
  std::memcpy(hdr + 6, &flags, 2);
  buf_.assign(hdr, hdr + kNlMsgHdrLen);
}

void NlBuilder::PutGenlHeader(uint8_t cmd, uint8_t version) {
  const uint8_t hdr[kGenlHdrLen] = {cmd, version, 0, 0};
  PutRaw(hdr);
}

void NlBuilder::PutRaw(absl::Span<const uint8_t> bytes) {
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  buf_.resize(NlAlign(buf_.size()), 0);
}

void NlBuilder::PutBytes(uint16_t type, absl::Span<const uint8_t> value) {
  const uint16_t len = static_cast<uint16_t>(kNlAttrHdrLen + value.size());
  uint8_t hdr[kNlAttrHdrLen];
  std::memcpy(hdr, &len, 2);
  std::memcpy(hdr + 2, &type, 2);
  buf_.insert(buf_.end(), hdr, hdr + kNlAttrHdrLen);
  buf_.insert(buf_.end(), value.begin(), value.end());
  buf_.resize(NlAlign(buf_.size()), 0);
}

void NlBuilder::PutU8(uint16_t type, uint8_t value) {
  PutBytes(type, absl::MakeConstSpan(&value, 1));
}

void NlBuilder::PutU16(uint16_t type, uint16_t value) {
  uint8_t b[2];
  std::memcpy(b, &value, 2);
  PutBytes(type, b);
}

void NlBuilder::PutU32(uint16_t type, uint32_t value) {
  uint8_t b[4];
  std::memcpy(b, &value, 4);
  PutBytes(type, b);
}

void NlBuilder::PutU64(uint16_t type, uint64_t value) {
  uint8_t b[8];
  std::memcpy(b, &value, 8);
  PutBytes(type, b);
}

void NlBuilder::PutString(uint16_t type, absl::string_view value) {
  std::vector<uint8_t> b(value.begin(), value.end());
  b.push_back(0);
  PutBytes(type, b);
}

size_t NlBuilder::BeginNest(uint16_t type) {
  const size_t handle = buf_.size();
  const uint16_t flagged = type | kNlaFNested;
  uint8_t hdr[kNlAttrHdrLen] = {0, 0, 0, 0};
  std::memcpy(hdr + 2, &flagged, 2);
  buf_.insert(buf_.end(), hdr, hdr + kNlAttrHdrLen);
  return handle;
}

void NlBuilder::EndNest(size_t handle) {
  const uint16_t len = static_cast<uint16_t>(buf_.size() - handle);
  std::memcpy(buf_.data() + handle, &len, 2);
}

std::vector<uint8_t> NlBuilder::Finish() && {
  const uint32_t len = static_cast<uint32_t>(buf_.size());
  std::memcpy(buf_.data(), &len, 4);
  return std::move(buf_);
}

void SetSeq(std::vector<uint8_t>& msg, uint32_t seq) {
  std::memcpy(msg.data() + 8, &seq, 4);
}

namespace {

bool FindPathIn(absl::Span<const uint8_t> data, size_t base, uint32_t offset,
                std::vector<uint16_t>& path) {
  absl::StatusOr<std::vector<NlAttr>> attrs = ParseAttrs(data, base);
  if (!attrs.ok()) return false;
  for (const NlAttr& a : *attrs) {
    const size_t end = a.offset + kNlAttrHdrLen + a.payload.size();
    if (offset < a.offset || offset >= end) continue;
    path.push_back(a.type);
    if (offset == a.offset) return true;
    return a.nested &&
           FindPathIn(a.payload, a.offset + kNlAttrHdrLen, offset, path);
  }
  return false;
}

}  // namespace

std::optional<std::vector<uint16_t>> FindAttrPath(
    absl::Span<const uint8_t> request, uint32_t offset) {
  constexpr size_t kFirst = kNlMsgHdrLen + kGenlHdrLen;
  if (request.size() < kFirst) return std::nullopt;
  std::vector<uint16_t> path;
  if (!FindPathIn(request.subspan(kFirst), kFirst, offset, path)) {
    return std::nullopt;
  }
  return path;
}

std::string DescribeAttrPath(absl::Span<const uint16_t> path, AttrNamer namer) {
  std::string name = namer != nullptr ? namer(path) : "";
  if (!name.empty()) return name;
  return absl::StrCat("attribute ", absl::StrJoin(path, "."));
}

}  // namespace devmem::kernel
