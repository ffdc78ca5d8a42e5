#include "providers/flow.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace devmem {

absl::StatusOr<std::optional<std::array<uint8_t, 16>>> ParseFlowAddress(
    absl::string_view text, bool ipv6, absl::string_view field) {
  if (text.empty()) return std::nullopt;
  const char* family_name = ipv6 ? "IPv6" : "IPv4";
  if (text.size() > kMaxFlowAddressBytes) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat("flow: ", field, " is ", text.size(),
                             " bytes long; an ", family_name,
                             " address has at most ", kMaxFlowAddressBytes));
  }
  // A NUL inside would make inet_pton see only the part before it.
  char buf[kMaxFlowAddressBytes + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::array<uint8_t, 16> addr = {};
  if (text.find('\0') != absl::string_view::npos ||
      ::inet_pton(ipv6 ? AF_INET6 : AF_INET, buf, addr.data()) != 1) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat("flow: ", field, " \"", absl::CEscape(text),
                             "\" is not an ", family_name, " address"));
  }
  return addr;
}

absl::Status CheckFlow(const Flow& flow) {
  if (flow.dst_port == 0) {
    return ErrnoToStatus(EINVAL, "flow: dst_port is required");
  }
  RETURN_IF_ERROR(ParseFlowAddress(flow.src_ip, flow.ipv6, "src_ip").status());
  RETURN_IF_ERROR(ParseFlowAddress(flow.dst_ip, flow.ipv6, "dst_ip").status());
  return absl::OkStatus();
}

}  // namespace devmem
