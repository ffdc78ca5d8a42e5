// Checking a Flow (an ntuple rule to steer), written once: the broker checks
// every flow of a bind request with CheckFlow before any provider sees it,
// and both providers parse addresses with ParseFlowAddress.
//
// Addresses are parsed strictly: inet_pton on exactly the bytes given, so an
// embedded NUL ("10.0.0.1\0junk"), trailing text or a text longer than
// kMaxFlowAddressBytes is refused, never silently shortened.
//
// Errors are EINVAL-class (InvalidArgument, StatusErrno() == EINVAL) and name
// the field and the value (escaped, so a NUL shows as \000).
//
// Thread safety: stateless functions.
#ifndef DEVMEM_PROVIDERS_FLOW_H_
#define DEVMEM_PROVIDERS_FLOW_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "providers/provider.h"

namespace devmem {

// The longest address text accepted: INET6_ADDRSTRLEN without its NUL.
inline constexpr size_t kMaxFlowAddressBytes = 45;

// The address in network byte order (IPv4 in the first 4 bytes), or nullopt
// for an empty text (a wildcard). `field` names it in errors ("dst_ip").
absl::StatusOr<std::optional<std::array<uint8_t, 16>>> ParseFlowAddress(
    absl::string_view text, bool ipv6, absl::string_view field);

// dst_port set, both addresses valid for the family (or empty).
absl::Status CheckFlow(const Flow& flow);

}  // namespace devmem

#endif  // DEVMEM_PROVIDERS_FLOW_H_
