#include "server/daemon.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/config.h"

namespace devmem::server {

namespace {

absl::StatusOr<std::optional<gid_t>> ResolveGroup(const std::string& name) {
  if (name.empty()) return std::nullopt;
  gid_t gid;
  if (absl::SimpleAtoi(name, &gid)) return gid;
  group grp;
  group* result = nullptr;
  char buf[4096];
  if (::getgrnam_r(name.c_str(), &grp, buf, sizeof(buf), &result) != 0 ||
      result == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket_group ", name, ": no such group"));
  }
  return result->gr_gid;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Daemon::Daemon(std::unique_ptr<Provider> provider, v1::DaemonConfig config,
               Clock* clock)
    : provider_(std::move(provider)),
      config_(std::move(config)),
      clock_(clock) {}

Daemon::~Daemon() { Stop(); }

absl::Status Daemon::Start() {
  Broker::Options bo;
  bo.clock = clock_;
  bo.ticket_ttl = absl::Milliseconds(config_.ticket_ttl_ms());
  bo.default_chunk_size = config_.chunk_size();
  bo.released_history = config_.released_history();
  bo.allow = AllowFromConfig(config_);
  bo.quota = QuotaFromConfig(config_);
  broker_ = std::make_unique<Broker>(provider_.get(), std::move(bo));
  metrics_ = std::make_unique<Metrics>(broker_.get());
  service_ = std::make_unique<DevmemService>(broker_.get(), metrics_.get());

  if (::mkdir(config_.run_dir().c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("mkdir ", config_.run_dir()));
  }
  ASSIGN_OR_RETURN(std::optional<gid_t> group,
                   ResolveGroup(config_.socket_group()));

  FdServer::Options fo;
  fo.path = fd_socket();
  fo.mode = config_.socket_mode();
  fo.group = group;
  Metrics* m = metrics_.get();
  fd_server_ = std::make_unique<FdServer>(
      broker_.get(), fo, [m](std::string_view r) { m->FdSocketError(r); });
  RETURN_IF_ERROR(fd_server_->Start());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  ::unlink(api_socket().c_str());
  builder.AddListeningPort("unix:" + api_socket(),
                           grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!config_.listen_address().empty()) {
    std::shared_ptr<grpc::ServerCredentials> creds =
        grpc::InsecureServerCredentials();
    if (!config_.tls_cert_file().empty()) {
      ASSIGN_OR_RETURN(std::string cert, ReadFile(config_.tls_cert_file()));
      ASSIGN_OR_RETURN(std::string key, ReadFile(config_.tls_key_file()));
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({key, cert});
      creds = grpc::SslServerCredentials(ssl);
    }
    // Read-only: the service refuses Bind/Unbind from non-Unix peers.
    builder.AddListeningPort(config_.listen_address(), creds, &tcp_port);
  }
  builder.RegisterService(service_.get());
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("gRPC server failed to start on ", api_socket()));
  }
  if (::chmod(api_socket().c_str(), config_.socket_mode()) != 0) {
    return ErrnoStatus("chmod api socket");
  }
  if (group.has_value() &&
      ::chown(api_socket().c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return ErrnoStatus("chown api socket");
  }
  if (config_.metrics_address() != "none") {
    ASSIGN_OR_RETURN(metrics_port_, metrics_->Serve(config_.metrics_address()));
  }
  started_ = true;
  housekeeping_ = std::thread([this] { HousekeepingLoop(); });
  DEVMEM_LOG(kInfo, "devmemd_started")
      .Kv("provider", std::string(provider_->name()))
      .Kv("run_dir", config_.run_dir())
      .Kv("api_socket", api_socket())
      .Kv("fd_socket", fd_socket())
      .Kv("metrics_port", metrics_port_)
      .Kv("tcp_port", tcp_port)
      .Kv("pid", ::getpid());
  return absl::OkStatus();
}

void Daemon::HousekeepingLoop() {
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(100));
    mu_.Unlock();
    broker_->Housekeeping();
    mu_.Lock();
  }
}

ShutdownReport Daemon::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return {};
    stopping_ = true;
  }
  if (housekeeping_.joinable()) housekeeping_.join();
  // First what matters: release every binding (restoring the NIC), then
  // close the sessions, then stop serving.
  ShutdownReport report;
  if (broker_) report = broker_->Shutdown();
  if (fd_server_) fd_server_->Stop();
  if (service_) service_->StopWatches();
  // In-flight calls get a moment; after it gRPC cancels them.
  if (grpc_) {
    grpc_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
    grpc_->Wait();
  }
  metrics_.reset();
  if (started_) {
    ::unlink(api_socket().c_str());
    DEVMEM_LOG(kInfo, "devmemd_stopped")
        .Kv("open_bindings", broker_->open_binding_count())
        .Kv("sessions_closed", report.sessions_closed)
        .Kv("bindings_released", report.bindings_released)
        .Kv("still_draining", report.still_draining.size());
  }
  return report;
}

void Daemon::Reload(const v1::DaemonConfig& config) {
  broker_->UpdatePolicy(AllowFromConfig(config), QuotaFromConfig(config));
}

std::shared_ptr<grpc::Channel> Daemon::InProcessChannel() {
  return grpc_->InProcessChannel(grpc::ChannelArguments());
}

}  // namespace devmem::server
