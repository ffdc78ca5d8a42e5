#include "base/errno_status.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace devmem {
namespace {

struct Name {
  int errnum;
  const char* name;
};

// Only the values the project meets; others print as "errno N".
constexpr Name kNames[] = {
    {EPERM, "EPERM"},
    {ENOENT, "ENOENT"},
    {EINTR, "EINTR"},
    {EIO, "EIO"},
    {E2BIG, "E2BIG"},
    {EBADF, "EBADF"},
    {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},
    {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},
    {ENODEV, "ENODEV"},
    {EINVAL, "EINVAL"},
    {EMFILE, "EMFILE"},
    {ENOSPC, "ENOSPC"},
    {EPIPE, "EPIPE"},
    {ERANGE, "ERANGE"},
    {ENODATA, "ENODATA"},
    {EPROTO, "EPROTO"},
    {EMSGSIZE, "EMSGSIZE"},
    {EOPNOTSUPP, "EOPNOTSUPP"},
    {ENOBUFS, "ENOBUFS"},
    {ECONNRESET, "ECONNRESET"},
    {ENOTCONN, "ENOTCONN"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {ECONNREFUSED, "ECONNREFUSED"},
    {EHOSTUNREACH, "EHOSTUNREACH"},
    {ENOTSOCK, "ENOTSOCK"},
    {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
    {ESRCH, "ESRCH"},
    {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},
    {kEnotsupp, "ENOTSUPP"},
    {kEtoosmall, "ETOOSMALL"},
};

constexpr char kErrnoPayloadUrl[] = "type.devmem.dev/errno";

// True when `message` ends with an errno's name in parentheses, as
// ErrnoToStatus ends it: " (EINVAL)", " (ETOOSMALL)" or " (errno 1234)".
bool EndsWithErrnoName(absl::string_view message) {
  if (!absl::ConsumeSuffix(&message, ")")) return false;
  const size_t open = message.rfind(" (");
  if (open == absl::string_view::npos) return false;
  absl::string_view name = message.substr(open + 2);
  if (absl::ConsumePrefix(&name, "errno ")) {
    int n = 0;
    return absl::SimpleAtoi(name, &n) && n > 0;
  }
  return name.size() >= 2 && name[0] == 'E' &&
         std::all_of(name.begin() + 1, name.end(), [](char c) {
           return absl::ascii_isupper(c) || absl::ascii_isdigit(c);
         });
}

}  // namespace

absl::StatusCode ErrnoToCode(int errnum) {
  switch (errnum) {
    case kEtoosmall:  // The caller's buffer is too small: a malformed request.
      return absl::StatusCode::kInvalidArgument;
    case kEnotsupp:
      return absl::StatusCode::kUnimplemented;
    case ENODATA:  // bind-rx: the driver's page pool did not take the provider.
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::ErrnoToStatusCode(errnum);
  }
}

std::string ErrnoName(int errnum) {
  for (const Name& n : kNames) {
    if (n.errnum == errnum) return n.name;
  }
  return absl::StrCat("errno ", errnum);
}

absl::Status ErrnoToStatus(int errnum, absl::string_view context) {
  if (errnum == 0) return absl::OkStatus();
  const char* text = errnum == kEtoosmall  ? "control buffer too small"
                     : errnum == kEnotsupp ? "operation not supported"
                                           : std::strerror(errnum);
  absl::Status status(
      ErrnoToCode(errnum),
      absl::StrCat(context, ": ", text, " (", ErrnoName(errnum), ")"));
  status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::StrCat(errnum)));
  return status;
}

absl::Status ErrnoStatus(absl::string_view context) {
  return devmem::ErrnoToStatus(errno, context);
}

bool CarriesErrno(const absl::Status& status) {
  return status.GetPayload(kErrnoPayloadUrl).has_value();
}

int StatusErrno(const absl::Status& status) {
  if (status.ok()) return 0;
  absl::optional<absl::Cord> payload = status.GetPayload(kErrnoPayloadUrl);
  int errnum = 0;
  if (payload && absl::SimpleAtoi(std::string(*payload), &errnum)) {
    return errnum;
  }
  return EIO;
}

absl::Status StatusWithErrno(absl::StatusCode code, int errnum,
                             absl::string_view message) {
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  absl::Status status(code, message);
  if (errnum > 0) {
    status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::StrCat(errnum)));
  }
  return status;
}

std::string StatusText(const absl::Status& status) {
  const std::string code = absl::StatusCodeToString(status.code());
  if (status.message().empty()) return code;
  if (EndsWithErrnoName(status.message())) return std::string(status.message());
  return absl::StrCat(status.message(), " (", code, ")");
}

absl::Status WithContext(const absl::Status& status,
                         absl::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(),
                   absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) {
        out.SetPayload(url, payload);
      });
  return out;
}

}  // namespace devmem
