#include "server/service.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "server/convert.h"
#include "server/grpc_status.h"

namespace devmem::server {

namespace {

std::string_view Meta(grpc::ServerContext* ctx, const char* key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

DevmemService::DevmemService(Broker* broker, RpcObserver* observer)
    : broker_(broker), observer_(observer) {}

absl::StatusOr<Caller> DevmemService::CallerOf(grpc::ServerContext* ctx) {
  // Only TCP peers ("ipv4:", "ipv6:") are remote and may only read; Unix
  // ("unix:") and in-process peers are local.
  const std::string peer = ctx->peer();
  const bool local = peer.rfind("ipv4:", 0) != 0 && peer.rfind("ipv6:", 0) != 0;
  const std::string_view id = Meta(ctx, kSessionHeader);
  const std::string_view secret = Meta(ctx, kSecretHeader);
  if (id.empty() && secret.empty()) {
    Caller anon;
    anon.local = local;
    return anon;
  }
  uint64_t session = 0;
  if (!absl::SimpleAtoi(std::string(id), &session) || session == 0) {
    return absl::PermissionDeniedError(
        "devmem-session must be the session id from Welcome");
  }
  auto caller = broker_->Authenticate(session, secret);
  if (caller.ok()) caller->local = local;
  return caller;
}

grpc::Status DevmemService::ListDevices(grpc::ServerContext* ctx,
                                        const v1::ListDevicesRequest*,
                                        v1::ListDevicesResponse* resp) {
  auto caller = CallerOf(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto devices = broker_->ListDevices(*caller);
  if (!devices.ok()) return ToGrpcStatus(devices.status());
  for (const DeviceView& d : *devices) ToProto(d, resp->add_devices());
  resp->set_provider(std::string(broker_->provider_name()));
  return grpc::Status::OK;
}

grpc::Status DevmemService::Bind(grpc::ServerContext* ctx,
                                 const v1::BindRequest* req,
                                 v1::BindResponse* resp) {
  const absl::Time t0 = absl::Now();
  absl::Status status = [&]() -> absl::Status {
    auto caller = CallerOf(ctx);
    if (!caller.ok()) return caller.status();
    auto params = FromProto(*req);
    if (!params.ok()) return params.status();
    auto b = broker_->Bind(*caller, *std::move(params));
    if (!b.ok()) return b.status();
    ToProto(*b, resp->mutable_binding());
    return absl::OkStatus();
  }();
  if (observer_) observer_->BindDone(absl::Now() - t0, status);
  return ToGrpcStatus(status);
}

grpc::Status DevmemService::Unbind(grpc::ServerContext* ctx,
                                   const v1::UnbindRequest* req,
                                   v1::UnbindResponse* resp) {
  const absl::Time t0 = absl::Now();
  absl::Status status = [&]() -> absl::Status {
    auto caller = CallerOf(ctx);
    if (!caller.ok()) return caller.status();
    auto b = broker_->Unbind(*caller, req->binding_id());
    if (!b.ok()) return b.status();
    ToProto(*b, resp->mutable_binding());
    return absl::OkStatus();
  }();
  if (observer_) observer_->UnbindDone(absl::Now() - t0, status);
  return ToGrpcStatus(status);
}

grpc::Status DevmemService::GetBinding(grpc::ServerContext* ctx,
                                       const v1::GetBindingRequest* req,
                                       v1::GetBindingResponse* resp) {
  auto caller = CallerOf(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto b = broker_->GetBinding(*caller, req->binding_id());
  if (!b.ok()) return ToGrpcStatus(b.status());
  ToProto(*b, resp->mutable_binding());
  return grpc::Status::OK;
}

grpc::Status DevmemService::ListBindings(grpc::ServerContext* ctx,
                                         const v1::ListBindingsRequest* req,
                                         v1::ListBindingsResponse* resp) {
  auto caller = CallerOf(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  BindingList list = broker_->ListBindings(*caller, req->include_released());
  for (const BindingView& b : list.bindings) ToProto(b, resp->add_bindings());
  resp->set_other_active(list.other_active);
  resp->set_other_draining(list.other_draining);
  return grpc::Status::OK;
}

grpc::Status DevmemService::GetStats(grpc::ServerContext* ctx,
                                     const v1::GetStatsRequest*,
                                     v1::GetStatsResponse* resp) {
  auto caller = CallerOf(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  ToProto(broker_->GetStats(*caller), resp);
  return grpc::Status::OK;
}

grpc::Status DevmemService::WatchBindings(
    grpc::ServerContext* ctx, const v1::WatchBindingsRequest* req,
    grpc::ServerWriter<v1::BindingEvent>* writer) {
  auto caller = CallerOf(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // Subscribe before the snapshot so no transition falls between them.
  std::shared_ptr<EventQueue> q = broker_->Subscribe();
  struct Unsub {
    Broker* b;
    std::shared_ptr<EventQueue> q;
    ~Unsub() { b->Unsubscribe(q); }
  } unsub{broker_, q};
  if (req->initial_snapshot()) {
    for (const BindingView& b : broker_->SnapshotFor(*caller)) {
      v1::BindingEvent ev;
      ev.set_kind(v1::BINDING_EVENT_KIND_SNAPSHOT);
      ToProto(b, ev.mutable_binding());
      ev.set_device(b.device);
      ev.set_unix_ns(absl::ToUnixNanos(absl::Now()));
      if (!writer->Write(ev)) return grpc::Status::OK;
    }
  }
  while (!ctx->IsCancelled() && !stopping_.load()) {
    for (const Event& e : q->Wait(absl::Milliseconds(200))) {
      v1::BindingEvent ev;
      ev.set_kind(static_cast<v1::BindingEventKind>(e.kind));
      ToProto(broker_->ViewFor(*caller, e.binding), ev.mutable_binding());
      ev.set_device(e.binding.device);
      ev.set_sequence(e.sequence);
      ev.set_unix_ns(absl::ToUnixNanos(e.at));
      if (!writer->Write(ev)) return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

}  // namespace devmem::server
