// ParseByteSize: "4096", "64K", "1M", "2G", "1T" (powers of two, either case)
// to a byte count, for command-line flags. The one size parser of the tree:
// devmemctl, the demo job and the demo sender all use it.
//
// InvalidArgument for an empty string, a bare suffix, a sign, anything that
// is not digits plus an optional K/M/G/T, and values that overflow 64 bits.
// The message quotes the text and says what a size looks like, so a caller
// prefixes only the flag's name: `--size "12Q" is not a size: ...`;
// ParseByteSizeFlag does exactly that.
//
//   ASSIGN_OR_RETURN(uint64_t size, ParseByteSizeFlag("--size", "2T"));
//
// Range checks (more than 0, a chunk size) are the caller's: a well-formed
// value out of range deserves its own message, not "is not a size".
//
// Thread safety: stateless functions.
#ifndef DEVMEM_BASE_BYTE_SIZE_H_
#define DEVMEM_BASE_BYTE_SIZE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devmem {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// ParseByteSize(text), its error message prefixed with `flag`:
// `--size "12Q" is not a size: want a whole number ...`.
absl::StatusOr<uint64_t> ParseByteSizeFlag(absl::string_view flag,
                                           absl::string_view text);

}  // namespace devmem

#endif  // DEVMEM_BASE_BYTE_SIZE_H_
