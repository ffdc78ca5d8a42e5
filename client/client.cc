#include "client/client.h"

#include <sys/stat.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "client/internal/client_core.h"
#include "client/internal/rx_impl.h"
#include "client/rx_socket.h"
#include "client/tx_sender.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/sync_stream.h"

namespace devmem {

namespace client_internal {

absl::Status FromGrpc(const grpc::Status& status, std::string_view rpc) {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode both follow google.rpc.Code.
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      status.error_message().find("connect") != std::string::npos) {
    return absl::UnavailableError(absl::StrCat(std::string(rpc),
                                               ": devmemd is not reachable (",
                                               status.error_message(), ")"));
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(
        absl::StrCat(std::string(rpc), ": devmemd did not answer in time"));
  }
  return absl::Status(code, status.error_message());
}

void ClientCore::Prepare(grpc::ClientContext* ctx, bool deadline) const {
  if (deadline) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
  }
  if (session_id_ != 0) {
    ctx->AddMetadata("devmem-session", absl::StrCat(session_id_));
    ctx->AddMetadata("devmem-secret", secret_);
  }
}

void ClientCore::SetSession(std::unique_ptr<fdsock::FdSessionClient> s) {
  session_id_ = s->session_id();
  secret_ = s->secret();
  provider_ = s->welcome().provider();
  absl::MutexLock l(&mu_);
  session_ = std::move(s);
}

absl::StatusOr<v1::Ticket> ClientCore::RegisterDmabuf(BorrowedFd dmabuf,
                                                      std::string_view name) {
  absl::MutexLock l(&mu_);
  if (session_ == nullptr) {
    if (!session_status_.ok()) {
      return absl::Status(
          session_status_.code(),
          absl::StrCat("no session with devmemd: ", session_status_.message()));
    }
    return absl::FailedPreconditionError(
        "no session with devmemd (closed, or the client was opened without "
        "one)");
  }
  absl::StatusOr<v1::Ticket> t = session_->RegisterDmabuf(dmabuf, name);
  DrainEventsLocked();
  return t;
}

void ClientCore::TakeEventLocked(fdsock::SessionEvent ev) {
  if (ev.message.has_data_path() && ev.fd.ok()) {
    data_paths_[ev.message.data_path().binding_id()] = std::move(ev.fd);
  }
  // BindingClosed: the binding's data path reads EOF, which is what its
  // RxSocket/TxSender go by; nothing to keep.
}

void ClientCore::DrainEventsLocked() {
  while (session_ != nullptr) {
    absl::StatusOr<std::optional<fdsock::SessionEvent>> ev =
        session_->NextEvent(absl::ZeroDuration());
    if (!ev.ok() || !ev->has_value()) return;
    TakeEventLocked(**std::move(ev));
  }
}

absl::Status ClientCore::AwaitDataPath(uint32_t binding_id,
                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock l(&mu_);
  for (;;) {
    if (data_paths_.contains(binding_id)) return absl::OkStatus();
    if (session_ == nullptr) {
      return absl::UnavailableError("devmemd session is closed");
    }
    ASSIGN_OR_RETURN(std::optional<fdsock::SessionEvent> ev,
                     session_->NextEvent(std::max(deadline - absl::Now(),
                                                  absl::ZeroDuration())));
    if (!ev.has_value()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "binding ", binding_id,
          ": devmemd said it passed the data-path fd, but none came"));
    }
    TakeEventLocked(*std::move(ev));
  }
}

absl::StatusOr<UniqueFd> ClientCore::TakeDataPath(uint32_t binding_id) {
  absl::MutexLock l(&mu_);
  auto it = data_paths_.find(binding_id);
  if (it == data_paths_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "binding ", binding_id,
        ": its data path was already taken (one RxSocket or TxSender per "
        "binding), or it has none"));
  }
  UniqueFd fd = std::move(it->second);
  data_paths_.erase(it);
  return fd;
}

absl::Status ClientCore::Unbind(uint32_t binding_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::UnbindRequest req;
  req.set_binding_id(binding_id);
  v1::UnbindResponse resp;
  absl::Status s = FromGrpc(stub_->Unbind(&ctx, req, &resp), "Unbind");
  absl::MutexLock l(&mu_);
  data_paths_.erase(binding_id);  // an untaken data path closes here
  DrainEventsLocked();
  return s;
}

bool ClientCore::session_open() {
  absl::MutexLock l(&mu_);
  return session_ != nullptr;
}

void ClientCore::CloseSession() {
  absl::MutexLock l(&mu_);
  session_.reset();
  data_paths_.clear();
}

namespace {

class GrpcBindingWatch : public BindingWatch {
 public:
  explicit GrpcBindingWatch(std::shared_ptr<ClientCore> core)
      : core_(std::move(core)) {}
  ~GrpcBindingWatch() override {
    Cancel();
    if (reader_ != nullptr) (void)reader_->Finish();
  }

  absl::Status Start(bool initial_snapshot) {
    core_->Prepare(&ctx_, /*deadline=*/false);
    v1::WatchBindingsRequest req;
    req.set_initial_snapshot(initial_snapshot);
    reader_ = core_->stub().WatchBindings(&ctx_, req);
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::BindingEvent>> Next() override {
    v1::BindingEvent ev;
    if (reader_->Read(&ev)) return ev;
    grpc::Status s = reader_->Finish();
    reader_.reset();
    if (s.ok() || s.error_code() == grpc::StatusCode::CANCELLED) {
      return std::nullopt;
    }
    return FromGrpc(s, "WatchBindings");
  }

  void Cancel() override { ctx_.TryCancel(); }

 private:
  std::shared_ptr<ClientCore> core_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::BindingEvent>> reader_;
};

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace
}  // namespace client_internal

using client_internal::ClientCore;
using client_internal::FromGrpc;

// ---- Binding -------------------------------------------------------------

Binding::Binding(Binding&& other) noexcept
    : core_(std::move(other.core_)),
      info_(std::move(other.info_)),
      unbound_(std::exchange(other.unbound_, false)) {}

Binding& Binding::operator=(Binding&& other) noexcept {
  if (this != &other) {
    if (active()) (void)Unbind();
    core_ = std::move(other.core_);
    info_ = std::move(other.info_);
    unbound_ = std::exchange(other.unbound_, false);
  }
  return *this;
}

Binding::~Binding() {
  if (!active()) return;
  // The Client went first: closing its session released this binding.
  if (!core_->session_open()) return;
  absl::Status s = Unbind();
  if (!s.ok() && s.code() != absl::StatusCode::kUnavailable) {
    DEVMEM_LOG(kWarning, "client_unbind_failed")
        .Kv("binding", info_.id())
        .Kv("error", LogQuote(s.ToString()));
  }
}

absl::Status Binding::Unbind() {
  if (!active()) {
    return absl::FailedPreconditionError(
        absl::StrCat("binding ", info_.id(), " is not active"));
  }
  unbound_ = true;
  return core_->Unbind(info_.id());
}

// ---- Client --------------------------------------------------------------

std::string Client::DefaultRunDir() {
  const char* env = std::getenv("DEVMEM_SOCKET");
  if (env != nullptr && *env != '\0') {
    std::string path(env);
    if (client_internal::IsDirectory(path)) return path;
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
  }
  return "/run/devmemd";
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  std::string run_dir =
      options.run_dir.empty() ? DefaultRunDir() : options.run_dir;
  const std::string api = run_dir + "/api.sock";
  const std::string fd = run_dir + "/fd.sock";
  if (!client_internal::Exists(api)) {
    return absl::UnavailableError(absl::StrCat(
        "no devmemd API socket at ", api,
        " (is devmemd running? use --run-dir or set DEVMEM_SOCKET)"));
  }
  grpc::ChannelArguments args;
  // One daemon, one Unix socket: fail fast rather than back off for
  // minutes when it is restarted.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(
      "unix:" + api, grpc::InsecureChannelCredentials(), args);
  auto core = std::make_shared<ClientCore>(
      run_dir, v1::Devmem::NewStub(channel), options.rpc_timeout);

  if (options.session != ClientOptions::Session::kNone) {
    auto session = fdsock::FdSessionClient::Connect(fd, options.client_name);
    if (session.ok()) {
      core->SetSession(*std::move(session));
    } else {
      absl::Status s(
          session.status().code(),
          absl::StrCat("session on ", fd, ": ", session.status().message()));
      if (options.session == ClientOptions::Session::kRequired) return s;
      core->SetSessionStatus(std::move(s));
    }
  }
  return std::unique_ptr<Client>(new Client(std::move(core)));
}

Client::~Client() {
  if (core_ != nullptr) core_->CloseSession();
}

const std::string& Client::run_dir() const { return core_->run_dir(); }
bool Client::has_session() const { return core_->has_session(); }
uint64_t Client::session_id() const { return core_->session_id(); }
const std::string& Client::provider() const { return core_->provider(); }
const absl::Status& Client::session_status() const {
  return core_->session_status();
}

absl::StatusOr<v1::ListDevicesResponse> Client::ListDevices() {
  grpc::ClientContext ctx;
  core_->Prepare(&ctx);
  v1::ListDevicesResponse resp;
  RETURN_IF_ERROR(
      FromGrpc(core_->stub().ListDevices(&ctx, v1::ListDevicesRequest(), &resp),
               "ListDevices"));
  return resp;
}

absl::StatusOr<Binding> Client::Bind(BorrowedFd dmabuf, std::string_view name,
                                     v1::BindRequest request) {
  ASSIGN_OR_RETURN(v1::Ticket ticket, core_->RegisterDmabuf(dmabuf, name));
  request.set_ticket(ticket.ticket());
  grpc::ClientContext ctx;
  core_->Prepare(&ctx);
  v1::BindResponse resp;
  RETURN_IF_ERROR(FromGrpc(core_->stub().Bind(&ctx, request, &resp), "Bind"));
  Binding binding(core_, resp.binding());
  if (resp.binding().data_path()) {
    // Sent before the reply: it is already in our socket.
    RETURN_IF_ERROR(core_->AwaitDataPath(binding.id(), core_->rpc_timeout()));
  }
  return binding;
}

absl::StatusOr<Binding> Client::BindRx(BorrowedFd dmabuf,
                                       const RxBindOptions& options) {
  if (options.device.empty()) {
    return absl::InvalidArgumentError("BindRx: no device given");
  }
  if ((options.num_queues == 0) == options.queue_ids.empty()) {
    return absl::InvalidArgumentError(
        "BindRx: give exactly one of num_queues or queue_ids");
  }
  v1::BindRequest req;
  req.set_device(options.device);
  v1::RxSpec* rx = req.mutable_rx();
  rx->set_num_queues(options.num_queues);
  for (uint32_t q : options.queue_ids) rx->add_queue_ids(q);
  for (const v1::Flow& f : options.flows) *rx->add_flows() = f;
  rx->set_chunk_size(options.chunk_size);
  return Bind(dmabuf, options.name, std::move(req));
}

absl::StatusOr<Binding> Client::BindTx(BorrowedFd dmabuf,
                                       std::string_view device,
                                       std::string_view name) {
  if (device.empty()) {
    return absl::InvalidArgumentError("BindTx: no device given");
  }
  v1::BindRequest req;
  req.set_device(std::string(device));
  req.mutable_tx();
  return Bind(dmabuf, name, std::move(req));
}

absl::Status Client::Unbind(uint32_t binding_id) {
  return core_->Unbind(binding_id);
}

absl::StatusOr<v1::Binding> Client::GetBinding(uint32_t binding_id) {
  grpc::ClientContext ctx;
  core_->Prepare(&ctx);
  v1::GetBindingRequest req;
  req.set_binding_id(binding_id);
  v1::GetBindingResponse resp;
  RETURN_IF_ERROR(
      FromGrpc(core_->stub().GetBinding(&ctx, req, &resp), "GetBinding"));
  return resp.binding();
}

absl::StatusOr<v1::ListBindingsResponse> Client::ListBindings(
    bool include_released) {
  grpc::ClientContext ctx;
  core_->Prepare(&ctx);
  v1::ListBindingsRequest req;
  req.set_include_released(include_released);
  v1::ListBindingsResponse resp;
  RETURN_IF_ERROR(
      FromGrpc(core_->stub().ListBindings(&ctx, req, &resp), "ListBindings"));
  return resp;
}

absl::StatusOr<v1::GetStatsResponse> Client::GetStats() {
  grpc::ClientContext ctx;
  core_->Prepare(&ctx);
  v1::GetStatsResponse resp;
  RETURN_IF_ERROR(FromGrpc(
      core_->stub().GetStats(&ctx, v1::GetStatsRequest(), &resp), "GetStats"));
  return resp;
}

absl::StatusOr<std::unique_ptr<BindingWatch>> Client::Watch(
    bool initial_snapshot) {
  auto w = std::make_unique<client_internal::GrpcBindingWatch>(core_);
  RETURN_IF_ERROR(w->Start(initial_snapshot));
  return std::unique_ptr<BindingWatch>(std::move(w));
}

absl::StatusOr<RxSocket> Client::OpenRx(const Binding& binding, UniqueFd tcp) {
  if (!binding.valid() || !binding.rx() || binding.core_ != core_) {
    return absl::InvalidArgumentError(
        "OpenRx: not an RX binding made by this client");
  }
  if (provider() == "kernel") {
    if (!tcp.ok()) {
      return absl::InvalidArgumentError(
          "OpenRx: the kernel provider needs the job's connected TCP socket");
    }
    return RxSocket::ForKernelSocket(std::move(tcp), binding.id());
  }
  if (tcp.ok()) {
    return absl::InvalidArgumentError(
        "OpenRx: the sim provider passes the binding's own data path; pass "
        "no socket");
  }
  ASSIGN_OR_RETURN(UniqueFd dp, core_->TakeDataPath(binding.id()));
  return RxSocket::ForSimDataPath(std::move(dp), binding.id());
}

absl::StatusOr<UniqueFd> Client::TakeDataPath(const Binding& binding) {
  if (!binding.valid() || binding.core_ != core_) {
    return absl::InvalidArgumentError(
        "TakeDataPath: not a binding made by this client");
  }
  return core_->TakeDataPath(binding.id());
}

absl::StatusOr<TxSender> Client::OpenTx(const Binding& binding,
                                        std::string_view peer, UniqueFd tcp) {
  if (!binding.valid() || binding.rx() || binding.core_ != core_) {
    return absl::InvalidArgumentError(
        "OpenTx: not a TX binding made by this client");
  }
  if (provider() == "kernel") {
    if (!tcp.ok()) {
      return absl::InvalidArgumentError(
          "OpenTx: the kernel provider needs the job's connected TCP socket");
    }
    return TxSender::ForKernelSocket(std::move(tcp), binding.id(),
                                     binding.size_bytes(),
                                     binding.chunk_size());
  }
  ASSIGN_OR_RETURN(UniqueFd dp, core_->TakeDataPath(binding.id()));
  return TxSender::ForSimDataPath(std::move(dp), binding.id(), peer,
                                  binding.size_bytes(), binding.chunk_size());
}

}  // namespace devmem
