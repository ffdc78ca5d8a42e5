// The one place where absl::Status becomes grpc::Status.
//
// Codes match numerically (both follow google.rpc.Code). Messages are cut to
// kMaxMessageBytes and absolute host paths in them are replaced by
// "<path>", so an error never tells a client where things live on the node.
#ifndef DEVMEM_SERVER_GRPC_STATUS_H_
#define DEVMEM_SERVER_GRPC_STATUS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace devmem::server {

inline constexpr size_t kMaxMessageBytes = 512;

grpc::Status ToGrpcStatus(const absl::Status& status);

// The message as a client will see it (exposed for tests).
std::string SanitizeMessage(std::string_view message);

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_GRPC_STATUS_H_
