// ClientCore: the state a Client shares with its Bindings, RxSockets and
// TxSenders: the gRPC stub, the session's fd socket and the per-binding
// queues of daemon events read from it. Internal to client/.
//
// Thread safety: thread-safe. The session is used under `mu_`; events read
// while looking for one binding's are queued for their own binding.
#ifndef DEVMEM_CLIENT_INTERNAL_CLIENT_CORE_H_
#define DEVMEM_CLIENT_INTERNAL_CLIENT_CORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "devmem/v1/devmem.grpc.pb.h"
#include "devmem/v1/fdsock.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "pool/token_range.h"
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

  // Event routing per binding. Open starts queueing a binding's events;
  // Close drops the queue (and later events of that binding).
  void OpenQueue(uint32_t binding_id);
  void CloseQueue(uint32_t binding_id);
  // The next event for `binding_id`, reading the session for up to
  // `timeout`. nullopt on timeout; Unavailable once the session closed.
  absl::StatusOr<std::optional<v1::FdMessage>> NextEvent(
      uint32_t binding_id, absl::Duration timeout);

  absl::StatusOr<v1::TokensReturned> ReturnTokens(
      uint32_t binding_id, absl::Span<const TokenRange> ranges);
  absl::Status TxConnect(uint32_t binding_id, std::string_view peer);
  absl::StatusOr<uint32_t> TxSend(uint32_t binding_id, uint64_t offset,
                                  uint64_t length);

  absl::Status Unbind(uint32_t binding_id);

  // False once CloseSession ran (the daemon released every binding then).
  bool session_open();

  // Closes the session (the daemon releases its bindings). Idempotent.
  void CloseSession();

 private:
  // Moves events already queued in the session client (read during a Call)
  // into their binding queues.
  void Route(v1::FdMessage m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static uint32_t BindingOf(const v1::FdMessage& m);

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
  absl::flat_hash_map<uint32_t, std::deque<v1::FdMessage>> queues_
      ABSL_GUARDED_BY(mu_);
  // Events of bindings with no queue yet (frags may arrive, and be read
  // while another binding waits, before Bind's reply is processed).
  // Bounded: the oldest are dropped beyond kMaxOrphans.
  static constexpr size_t kMaxOrphans = 1024;
  std::deque<v1::FdMessage> orphans_ ABSL_GUARDED_BY(mu_);
};

}  // namespace devmem::client_internal

#endif  // DEVMEM_CLIENT_INTERNAL_CLIENT_CORE_H_
