// ClientCore: the state a Client shares with its Bindings: the gRPC stub, the
// session's fd socket, and the data-path fds the daemon passed for bindings
// not yet opened. RxSockets and TxSenders do not use it: each owns its
// binding's data path. Internal to client/.
//
// Thread safety: thread-safe. The session is used under `mu_` (only for
// RegisterDmabuf and picking up data-path fds, never on the data path).
#ifndef DEVMEM_CLIENT_INTERNAL_CLIENT_CORE_H_
#define DEVMEM_CLIENT_INTERNAL_CLIENT_CORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "devmem/v1/devmem.grpc.pb.h"
#include "devmem/v1/fdsock.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "session/fdsock_client.h"

namespace devmem::client_internal {

// The one grpc::Status -> absl::Status conversion of client/. Codes match
// numerically; the daemon's message is kept.
absl::Status FromGrpc(const grpc::Status& status, std::string_view rpc);

class ClientCore {
 public:
  ClientCore(std::string run_dir, std::unique_ptr<v1::Devmem::Stub> stub,
             absl::Duration rpc_timeout)
      : run_dir_(std::move(run_dir)),
        stub_(std::move(stub)),
        rpc_timeout_(rpc_timeout) {}

  const std::string& run_dir() const { return run_dir_; }
  absl::Duration rpc_timeout() const { return rpc_timeout_; }
  v1::Devmem::Stub& stub() { return *stub_; }

  // Sets the deadline and, with a session, its authentication metadata.
  void Prepare(grpc::ClientContext* ctx, bool deadline = true) const;

  // Session (set once, before the core is shared).
  void SetSession(std::unique_ptr<fdsock::FdSessionClient> session);
  void SetSessionStatus(absl::Status s) { session_status_ = std::move(s); }
  bool has_session() const { return session_id_ != 0; }
  uint64_t session_id() const { return session_id_; }
  const std::string& provider() const { return provider_; }
  const absl::Status& session_status() const { return session_status_; }

  // RegisterDmabuf on the session; FailedPrecondition without a session
  // (carrying why it could not be opened).
  absl::StatusOr<v1::Ticket> RegisterDmabuf(BorrowedFd dmabuf,
                                            std::string_view name);

  // The data-path fd the daemon passed for `binding_id` (sent before the
  // Bind reply), read from the session if it is not there yet; kept until
  // TakeDataPath. DeadlineExceeded if it does not come within `timeout`.
  absl::Status AwaitDataPath(uint32_t binding_id, absl::Duration timeout);
  // Moves the kept data-path fd out. FailedPrecondition when there is none
  // (already taken, or the binding has no provider-made data path).
  absl::StatusOr<UniqueFd> TakeDataPath(uint32_t binding_id);

  absl::Status Unbind(uint32_t binding_id);

  // False once CloseSession ran (the daemon released every binding then).
  bool session_open();

  // Closes the session (the daemon releases its bindings). Idempotent.
  void CloseSession();

 private:
  // Takes what the daemon sent on its own (DataPath, BindingClosed) and
  // returns at once when nothing waits.
  void DrainEventsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeEventLocked(fdsock::SessionEvent ev)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string run_dir_;
  const std::unique_ptr<v1::Devmem::Stub> stub_;
  const absl::Duration rpc_timeout_;
  // Written by SetSession before sharing; read-only afterwards.
  uint64_t session_id_ = 0;
  std::string secret_;
  std::string provider_;
  absl::Status session_status_;

  absl::Mutex mu_;
  std::unique_ptr<fdsock::FdSessionClient> session_ ABSL_GUARDED_BY(mu_);
  // Data paths passed by the daemon and not yet taken, by binding id.
  absl::flat_hash_map<uint32_t, UniqueFd> data_paths_ ABSL_GUARDED_BY(mu_);
};

}  // namespace devmem::client_internal

#endif  // DEVMEM_CLIENT_INTERNAL_CLIENT_CORE_H_
