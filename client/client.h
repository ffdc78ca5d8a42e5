// devmem::Client: a job's connection to devmemd, the per-node daemon that
// binds dmabufs to NIC queues for device-memory TCP.
//
// A Client is one *session* with the daemon: the fd socket (<run dir>/
// fd.sock) that carries the job's dmabuf fds (and, with the sim provider,
// brings back each binding's own data-path fd); and the gRPC API (<run dir>/
// api.sock, devmem.v1.Devmem) authenticated as that session. The fd handshake
// (Hello, RegisterDmabuf -> ticket) is done here; callers never see tickets or
// stubs.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect());
//   ASSIGN_OR_RETURN(Dmabuf buf, Dmabuf::CreateMemfd("rx", 64 << 20));
//   RxBindOptions rx;
//   rx.device = "sim0";
//   rx.num_queues = 2;
//   ASSIGN_OR_RETURN(Binding binding, client->BindRx(buf.fd(), rx));
//   ASSIGN_OR_RETURN(RxSocket sock, client->OpenRx(binding));
//   // ... receive (see rx_socket.h); `binding` unbinds when destroyed.
//
// Lifetime: every binding belongs to the session. Destroying the Client (or
// the process dying, even by SIGKILL) closes the session, and the daemon then
// releases every binding made through it. Binding objects keep the
// session's shared state alive, so they may outlive the Client object
// safely, but the session itself closes with the Client; an RxSocket or
// TxSender of a released binding reads EOF (Unavailable).
//
// Errors: every call returns absl::Status with the daemon's code and message
// (gRPC codes map 1:1 onto absl codes; see docs/API.md for each RPC's codes).
// A daemon that is not running is Unavailable naming the socket path.
//
// Thread safety: a Client is thread-safe. The RPCs run concurrently. The
// data path never touches the session: each RxSocket and TxSender owns its
// binding's socket, so receive loops of different bindings run in parallel.
#ifndef DEVMEM_CLIENT_CLIENT_H_
#define DEVMEM_CLIENT_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "devmem/v1/devmem.pb.h"

namespace devmem {

namespace client_internal {
class ClientCore;
}  // namespace client_internal

class RxSocket;
class TxSender;

struct ClientOptions {
  enum class Session {
    // Open a session; Connect fails if the daemon refuses it.
    kRequired,
    // Open one if the daemon allows it, else continue without: read RPCs
    // then show only other users' counts, and BindRx/BindTx fail with the
    // daemon's refusal (devmemctl's read commands use this).
    kIfAllowed,
    // Read-only client: no session at all.
    kNone,
  };

  // Directory holding api.sock and fd.sock. Empty: DefaultRunDir().
  std::string run_dir;
  // Shown in the daemon's logs ("trainer rank 3").
  std::string client_name;
  Session session = Session::kRequired;
  // Deadline of each unary RPC.
  absl::Duration rpc_timeout = absl::Seconds(10);
};

// RX binding request. Exactly one of num_queues or queue_ids.
struct RxBindOptions {
  std::string device;               // e.g. "eth1", "sim0"
  uint32_t num_queues = 0;          // let the daemon choose this many
  std::vector<uint32_t> queue_ids;  // or exactly these (DEVMEM_RX_QUEUES)
  std::vector<v1::Flow> flows;      // steered to the binding's first queue
  uint32_t chunk_size = 0;          // 0: the daemon's default (4096)
  std::string name;                 // label of the dmabuf in daemon logs
};

// A bound dmabuf (RX queues or TX) on a device. RAII: destroying an active
// Binding unbinds it (errors are logged, not returned: call Unbind() to see
// them); if its Client was destroyed first, the session's close already
// released it and nothing is sent. Movable, not copyable.
//
// Thread safety: a Binding is not thread-safe (like a value); distinct
// Bindings of one Client may be used from different threads.
class Binding {
 public:
  Binding() = default;
  Binding(Binding&& other) noexcept;
  Binding& operator=(Binding&& other) noexcept;  // unbinds the current one
  Binding(const Binding&) = delete;
  Binding& operator=(const Binding&) = delete;
  ~Binding();

  // False for a default-constructed or moved-from object.
  bool valid() const { return core_ != nullptr; }
  uint32_t id() const { return info_.id(); }
  bool rx() const { return info_.direction() == v1::DIRECTION_RX; }
  const std::string& device() const { return info_.device(); }
  std::vector<uint32_t> queues() const {
    return {info_.queues().begin(), info_.queues().end()};
  }
  uint32_t chunk_size() const { return info_.chunk_size(); }
  uint64_t size_bytes() const { return info_.size_bytes(); }
  // Sim provider, RX: "127.0.0.1:PORT", where a sender connects to stand for
  // the steered flow. Empty with the kernel provider.
  const std::string& endpoint() const { return info_.endpoint(); }
  // The binding as the daemon described it at Bind time.
  const v1::Binding& info() const { return info_; }
  // True until Unbind() (or until moved from).
  bool active() const { return valid() && !unbound_; }

  // Unbinds now. After it, the binding is DRAINING or RELEASED in the daemon
  // and this object is inactive. Errors: the daemon's (NOT_FOUND when the
  // session is gone and the binding already released, ...);
  // FailedPrecondition if not active.
  absl::Status Unbind();

 private:
  friend class Client;
  Binding(std::shared_ptr<client_internal::ClientCore> core, v1::Binding info)
      : core_(std::move(core)), info_(std::move(info)) {}

  std::shared_ptr<client_internal::ClientCore> core_;
  v1::Binding info_;
  bool unbound_ = false;
};

// A stream of WatchBindings events. Destroying it cancels the stream.
class BindingWatch {
 public:
  virtual ~BindingWatch() = default;
  // The next event, blocking. nullopt when the stream ended cleanly (the
  // daemon stopped or Cancel() was called); the daemon's error otherwise.
  virtual absl::StatusOr<std::optional<v1::BindingEvent>> Next() = 0;
  // Makes a blocked or later Next() return. Thread-safe.
  virtual void Cancel() = 0;
};

class Client {
 public:
  // $DEVMEM_SOCKET's directory when set (it may also name the directory
  // itself), else /run/devmemd.
  static std::string DefaultRunDir();

  // Connects to the daemon in options.run_dir (see ClientOptions). Errors:
  // Unavailable when no daemon answers at <run dir>/api.sock or fd.sock;
  // the daemon's refusal of the session (PermissionDenied: uid not on the
  // allowlist) with Session::kRequired.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      ClientOptions options = {});

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();  // closes the session: the daemon releases its bindings

  const std::string& run_dir() const;
  // True when a session is open.
  bool has_session() const;
  // The session id (0 without one) and the provider ("sim" or "kernel",
  // empty without a session: use ListDevices).
  uint64_t session_id() const;
  const std::string& provider() const;
  // Why the session could not be opened (kIfAllowed); OK otherwise.
  const absl::Status& session_status() const;

  // Devices with queues, capability and header split; provider name in
  // the response.
  absl::StatusOr<v1::ListDevicesResponse> ListDevices();

  // Registers `dmabuf` on the session (the daemon dups it) and binds it to
  // RX queues of options.device. Errors are the daemon's: InvalidArgument
  // (bad spec or queue), NotFound (unknown device), AlreadyExists (queue
  // bound), ResourceExhausted (quota, or not enough free queues),
  // FailedPrecondition (device cannot do devmem), PermissionDenied (no
  // session); InvalidArgument from the fd check (not a dmabuf/memfd).
  absl::StatusOr<Binding> BindRx(BorrowedFd dmabuf,
                                 const RxBindOptions& options);
  // Binds `dmabuf` for TX on `device`. Errors as BindRx.
  absl::StatusOr<Binding> BindTx(BorrowedFd dmabuf, std::string_view device,
                                 std::string_view name = "");

  // Unbinds a binding of this session by id (prefer Binding::Unbind()).
  absl::Status Unbind(uint32_t binding_id);
  absl::StatusOr<v1::Binding> GetBinding(uint32_t binding_id);
  absl::StatusOr<v1::ListBindingsResponse> ListBindings(
      bool include_released = false);
  absl::StatusOr<v1::GetStatsResponse> GetStats();
  // Subscribes to binding events (first the current bindings when
  // `initial_snapshot`).
  absl::StatusOr<std::unique_ptr<BindingWatch>> Watch(
      bool initial_snapshot = true);

  // The receive socket of an RX binding of this client. Sim provider: pass
  // no `tcp`; the socket reads the binding's own data path (the fd devmemd
  // passed at Bind; once per binding). Kernel provider: `tcp` is the job's
  // connected TCP socket whose flow is steered to the binding. Errors:
  // InvalidArgument (not an RX binding of this client, or `tcp`
  // missing/extra for the provider), FailedPrecondition (its data path was
  // already taken).
  absl::StatusOr<RxSocket> OpenRx(const Binding& binding, UniqueFd tcp = {});

  // Sim provider: the binding's data-path fd itself, to hand to another
  // process (SCM_RIGHTS), which opens it with RxSocket::ForSimDataPath or
  // TxSender::ForSimDataPath. Like a TCP socket it carries only this
  // binding's flow; the binding stays this client's (it ends when this
  // session does). FailedPrecondition when already taken or with the kernel
  // provider (the job's own socket is the data path there).
  absl::StatusOr<UniqueFd> TakeDataPath(const Binding& binding);

  // The sender of a TX binding. Sim: `peer` is "HOST:PORT" the simulated NIC
  // connects to (loopback), over the binding's own data path (once per
  // binding). Kernel: `tcp` is the job's connected TCP socket
  // (routed through the binding's device); `peer` is ignored. The buffer's
  // size and chunk size are the binding's. Errors: InvalidArgument (not a
  // TX binding of this client, `tcp` missing); the sim's TxConnect answer
  // (ECONNREFUSED: the peer refused); FailedPrecondition (data path already
  // taken); setsockopt(SO_ZEROCOPY)'s errno (kernel).
  absl::StatusOr<TxSender> OpenTx(const Binding& binding, std::string_view peer,
                                  UniqueFd tcp = {});

 private:
  explicit Client(std::shared_ptr<client_internal::ClientCore> core)
      : core_(std::move(core)) {}
  absl::StatusOr<Binding> Bind(BorrowedFd dmabuf, std::string_view name,
                               v1::BindRequest request);

  std::shared_ptr<client_internal::ClientCore> core_;
};

}  // namespace devmem

#endif  // DEVMEM_CLIENT_CLIENT_H_
