// ParseByteSize: "4096", "64K", "1M", "2G", "1T" (powers of two, either case)
// to a byte count, for command-line flags.
//
// InvalidArgument for an empty string, a bare suffix, a sign, anything that
// is not digits plus an optional K/M/G/T, and values that overflow 64 bits.
// The message quotes the text and says what a size looks like, so a caller
// prefixes only the flag's name: `--size "12Q" is not a size: ...`.
#ifndef DEVMEM_BASE_BYTE_SIZE_H_
#define DEVMEM_BASE_BYTE_SIZE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devmem {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

}  // namespace devmem

#endif  // DEVMEM_BASE_BYTE_SIZE_H_
