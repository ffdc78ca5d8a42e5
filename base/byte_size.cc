#include "base/byte_size.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace devmem {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  const absl::string_view original = text;
  uint64_t mul = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K':
      case 'k':
        mul = uint64_t{1} << 10;
        break;
      case 'M':
      case 'm':
        mul = uint64_t{1} << 20;
        break;
      case 'G':
      case 'g':
        mul = uint64_t{1} << 30;
        break;
      case 'T':
      case 't':
        mul = uint64_t{1} << 40;
        break;
      default:
        break;
    }
    if (mul != 1) text.remove_suffix(1);
  }
  uint64_t v = 0;
  if (text.empty() || text.front() == '+' || text.front() == '-' ||
      !absl::SimpleAtoi(text, &v) || v > UINT64_MAX / mul) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", original,
        "\" is not a size: want a whole number with an optional K, M, G or T "
        "(below 16E)"));
  }
  return v * mul;
}

absl::StatusOr<uint64_t> ParseByteSizeFlag(absl::string_view flag,
                                           absl::string_view text) {
  absl::StatusOr<uint64_t> v = ParseByteSize(text);
  if (!v.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", v.status().message()));
  }
  return v;
}

}  // namespace devmem
