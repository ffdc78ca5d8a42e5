#include "base/sim_datapath.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem::simdp {
namespace {

struct Shape {
  const char* name;
  size_t fixed;  // bytes of the fixed record
  size_t unit;   // bytes per unit; 1: text; 0: no units
};

// Indexed by type number; entry 0 is unused.
constexpr Shape kShapes[] = {
    {"", 0, 0},
    {"kRxFrags", 0, sizeof(uapi::DmabufCmsg)},
    {"kDontneed", 0, sizeof(uapi::DmabufToken)},
    {"kDontneedDone", sizeof(DontneedDone), 0},
    {"kTxConnect", 0, 1},
    {"kTxSend", sizeof(TxSend), 0},
    {"kTxAccepted", sizeof(TxAccepted), 1},
    {"kTxCompletion", sizeof(TxCompletion), 0},
    {"kClosed", sizeof(StatusRecord), 1},
    {"kError", sizeof(StatusRecord), 1},
};
constexpr uint16_t kLastType = static_cast<uint16_t>(Type::kError);

std::string Make(Type type, const void* fixed, size_t fixed_bytes,
                 const void* units, size_t count, size_t unit_bytes) {
  Header h{type, 0, static_cast<uint32_t>(count)};
  std::string out;
  out.resize(sizeof(h) + fixed_bytes + count * unit_bytes);
  std::memcpy(out.data(), &h, sizeof(h));
  if (fixed_bytes > 0) std::memcpy(out.data() + sizeof(h), fixed, fixed_bytes);
  if (count > 0) {
    std::memcpy(out.data() + sizeof(h) + fixed_bytes, units,
                count * unit_bytes);
  }
  return out;
}

std::string_view Cut(std::string_view text) {
  return text.substr(0, std::min(text.size(), kMaxTextBytes));
}

}  // namespace

std::string TypeName(uint16_t type) {
  if (type >= 1 && type <= kLastType) return kShapes[type].name;
  return absl::StrCat("type ", type);
}

absl::StatusOr<Packet> Parse(std::string_view bytes) {
  if (bytes.size() < sizeof(Header)) {
    return absl::InvalidArgumentError(
        absl::StrCat("data-path packet of ", bytes.size(),
                     " bytes: shorter than its 8-byte header"));
  }
  Header h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  const auto t = static_cast<uint16_t>(h.type);
  if (t < 1 || t > kLastType) {
    return absl::InvalidArgumentError(
        absl::StrCat("data-path packet type ", t, " is unknown"));
  }
  const Shape& s = kShapes[t];
  const std::string_view body = bytes.substr(sizeof(Header));
  const uint64_t want = s.fixed + uint64_t{h.count} * s.unit;
  if (body.size() < s.fixed || (s.unit == 0 && h.count != 0) ||
      body.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        s.name, ": ", body.size(), " bytes after the header for count ",
        h.count, " (want ", s.fixed, " + count x ", s.unit, ")"));
  }
  if (s.unit == 1 && h.count > kMaxTextBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        s.name, ": text of ", h.count, " bytes, at most ", kMaxTextBytes));
  }
  Packet p;
  p.type = h.type;
  p.fixed = body.substr(0, s.fixed);
  p.units = body.substr(s.fixed);
  p.count = h.count;
  return p;
}

StatusRecord ToRecord(const absl::Status& status) {
  return StatusRecord{static_cast<int32_t>(status.code()),
                      CarriesErrno(status) ? StatusErrno(status) : 0};
}

absl::Status ToStatus(const StatusRecord& r, std::string_view text) {
  if (r.code == 0) return absl::OkStatus();
  const auto code = r.code > 0 && r.code <= 16
                        ? static_cast<absl::StatusCode>(r.code)
                        : absl::StatusCode::kUnknown;
  return StatusWithErrno(code, r.err,
                         absl::string_view(text.data(), text.size()));
}

std::string RxFrags(absl::Span<const uapi::DmabufCmsg> frags) {
  return Make(Type::kRxFrags, nullptr, 0, frags.data(), frags.size(),
              sizeof(uapi::DmabufCmsg));
}

std::string Dontneed(absl::Span<const uapi::DmabufToken> tokens) {
  return Make(Type::kDontneed, nullptr, 0, tokens.data(), tokens.size(),
              sizeof(uapi::DmabufToken));
}

std::string DontneedDonePacket(uint32_t freed, uint32_t rejected,
                               const absl::Status& status) {
  const DontneedDone d{freed, rejected, ToRecord(status)};
  return Make(Type::kDontneedDone, &d, sizeof(d), nullptr, 0, 0);
}

std::string TxConnect(std::string_view peer) {
  const std::string_view p = Cut(peer);
  return Make(Type::kTxConnect, nullptr, 0, p.data(), p.size(), 1);
}

std::string TxSendPacket(uint64_t offset, uint64_t length) {
  const TxSend s{offset, length};
  return Make(Type::kTxSend, &s, sizeof(s), nullptr, 0, 0);
}

std::string TxAcceptedPacket(uint32_t send_id, const absl::Status& status) {
  const TxAccepted a{send_id, 0, ToRecord(status)};
  const std::string_view text =
      Cut(std::string_view(status.message().data(), status.message().size()));
  return Make(Type::kTxAccepted, &a, sizeof(a), text.data(), text.size(), 1);
}

std::string TxCompletionPacket(uint32_t lo, uint32_t hi) {
  const TxCompletion c{lo, hi};
  return Make(Type::kTxCompletion, &c, sizeof(c), nullptr, 0, 0);
}

std::string StatusPacket(Type type, const absl::Status& status) {
  const StatusRecord r = ToRecord(status);
  const std::string_view text =
      Cut(std::string_view(status.message().data(), status.message().size()));
  return Make(type, &r, sizeof(r), text.data(), text.size(), 1);
}

}  // namespace devmem::simdp
