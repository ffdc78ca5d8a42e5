// DevmemService: the devmem.v1.Devmem gRPC service, thin in TF Serving's
// style: each handler identifies the caller, converts the request, calls one
// Broker function, converts the Status (server/grpc_status.h) and records a
// metric.
//
// Callers authenticate as a session with the metadata entries
// "devmem-session" and "devmem-secret" (fdsock Welcome). Without them a call
// is an anonymous read; with wrong ones every RPC is PERMISSION_DENIED.
// Mutating RPCs are accepted only from peers on a Unix socket.
//
// Thread safety: handlers run on gRPC's threads concurrently; all state is in
// the Broker.
#ifndef DEVMEM_SERVER_SERVICE_H_
#define DEVMEM_SERVER_SERVICE_H_

#include <atomic>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "devmem/v1/devmem.grpc.pb.h"
#include "server/broker.h"

namespace devmem::server {

// Receives per-RPC outcomes (implemented by server/metrics.h).
class RpcObserver {
 public:
  virtual ~RpcObserver() = default;
  virtual void BindDone(absl::Duration latency, const absl::Status& s) = 0;
  virtual void UnbindDone(absl::Duration latency, const absl::Status& s) = 0;
};

inline constexpr char kSessionHeader[] = "devmem-session";
inline constexpr char kSecretHeader[] = "devmem-secret";

class DevmemService final : public v1::Devmem::Service {
 public:
  // `broker` (and `observer`, if not null) must outlive the service.
  DevmemService(Broker* broker, RpcObserver* observer);

  // Makes WatchBindings streams end (for shutdown).
  void StopWatches() { stopping_.store(true); }

  grpc::Status ListDevices(grpc::ServerContext* ctx,
                           const v1::ListDevicesRequest* req,
                           v1::ListDevicesResponse* resp) override;
  grpc::Status Bind(grpc::ServerContext* ctx, const v1::BindRequest* req,
                    v1::BindResponse* resp) override;
  grpc::Status Unbind(grpc::ServerContext* ctx, const v1::UnbindRequest* req,
                      v1::UnbindResponse* resp) override;
  grpc::Status GetBinding(grpc::ServerContext* ctx,
                          const v1::GetBindingRequest* req,
                          v1::GetBindingResponse* resp) override;
  grpc::Status ListBindings(grpc::ServerContext* ctx,
                            const v1::ListBindingsRequest* req,
                            v1::ListBindingsResponse* resp) override;
  grpc::Status GetStats(grpc::ServerContext* ctx,
                        const v1::GetStatsRequest* req,
                        v1::GetStatsResponse* resp) override;
  grpc::Status WatchBindings(
      grpc::ServerContext* ctx, const v1::WatchBindingsRequest* req,
      grpc::ServerWriter<v1::BindingEvent>* writer) override;

 private:
  // The caller of `ctx` (see the file comment).
  absl::StatusOr<Caller> CallerOf(grpc::ServerContext* ctx);

  Broker* const broker_;
  RpcObserver* const observer_;
  std::atomic<bool> stopping_{false};
};

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_SERVICE_H_
