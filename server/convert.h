// Conversions between devmem.v1 protos and the core's types (server/broker.h).
// Pure functions; thread-safe.
#ifndef DEVMEM_SERVER_CONVERT_H_
#define DEVMEM_SERVER_CONVERT_H_

#include "absl/status/statusor.h"
#include "devmem/v1/devmem.pb.h"
#include "server/broker.h"

namespace devmem::server {

// InvalidArgument for a malformed request (ports out of range, no kind...).
absl::StatusOr<BindParams> FromProto(const v1::BindRequest& req);

void ToProto(const BindingView& v, v1::Binding* out);
void ToProto(const DeviceView& d, v1::Device* out);
void ToProto(const RegionStats& s, v1::PoolStats* out);
void ToProto(const StatsSnapshot& s, v1::GetStatsResponse* out);
v1::BindingState ToProto(BindingState s);

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_CONVERT_H_
