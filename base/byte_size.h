// ParseByteSize: "4096", "64K", "1M", "2G" (powers of two, either case) to a
// byte count, for command-line flags.
//
// InvalidArgument for an empty string, a bare suffix, a sign, anything that
// is not digits plus an optional K/M/G, and values that overflow 64 bits.
#ifndef DEVMEM_BASE_BYTE_SIZE_H_
#define DEVMEM_BASE_BYTE_SIZE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devmem {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

}  // namespace devmem

#endif  // DEVMEM_BASE_BYTE_SIZE_H_
