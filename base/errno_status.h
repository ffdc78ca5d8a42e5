// The one errno -> absl::Status mapping.
//
// Every syscall failure, and every errno the kernel returns over netlink, is
// turned into a Status here, on the line after the call, with the facts a
// reader needs ("eth1 queue 3: bind-rx"). The simulated NIC answers with the
// same errno values as the kernel and goes through the same function, so both
// providers give the same code for the same input.
//
// The mapping follows absl::ErrnoToStatusCode, plus the kernel-internal
// errnos that libc does not name (ETOOSMALL = 525 from recvmsg with a control
// buffer too small for the next devmem cmsg).
#ifndef DEVMEM_BASE_ERRNO_STATUS_H_
#define DEVMEM_BASE_ERRNO_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace devmem {

// Kernel-internal errno values that glibc does not define.
inline constexpr int kEtoosmall = 525;  // ETOOSMALL (include/linux/errno.h)
inline constexpr int kEnotsupp = 524;   // ENOTSUPP (kernel-internal)

// The absl code for `errnum` (0 -> kOk).
absl::StatusCode ErrnoToCode(int errnum);

// A printable name for `errnum`: "EOPNOTSUPP", "ETOOSMALL", or "errno 1234".
std::string ErrnoName(int errnum);

// "context: strerror (ENAME)" with ErrnoToCode(errnum). errnum must be > 0.
absl::Status ErrnoToStatus(int errnum, absl::string_view context);

// Reads errno itself; call it on the line right after the failed syscall.
absl::Status ErrnoStatus(absl::string_view context);

// The errno a Status made by ErrnoToStatus carries (as a payload, so it
// survives re-wrapping with more context); 0 for OK, EIO when it has none.
// Tests use it to check that both providers fail with the kernel's errno.
int StatusErrno(const absl::Status& status);

// True when `status` came from a syscall's errno (ErrnoToStatus/ErrnoStatus):
// tells a failed syscall apart from a policy answer with the same code.
bool CarriesErrno(const absl::Status& status);

// A Status rebuilt from a wire (code, errno, message as sent): the errno is
// kept as ErrnoToStatus keeps it, nothing is added to the message. errnum 0:
// no errno. OK for kOk.
absl::Status StatusWithErrno(absl::StatusCode code, int errnum,
                             absl::string_view message);

// `status` with "context: " put before its message; code and payloads (the
// errno) are kept. OK stays OK.
absl::Status WithContext(const absl::Status& status, absl::string_view context);

// `status` as one line a person reads, saying each thing once: its message,
// then its code's name in parentheses ("uid 1000 is not allowed
// (PERMISSION_DENIED)"), except when the message already ends with the errno
// it was made from ("bind sim0: Invalid argument (EINVAL)", as ErrnoToStatus
// writes it; the text survives a trip over gRPC, the payload does not): the
// errno says what the code would. The code's name alone for an empty
// message; "OK" for OK. For command-line tools; logs keep the code apart.
std::string StatusText(const absl::Status& status);

}  // namespace devmem

#endif  // DEVMEM_BASE_ERRNO_STATUS_H_
