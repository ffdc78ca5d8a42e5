// FdSessionClient: the job's end of a devmemd session (the fd socket).
//
// Connects, says Hello, and then registers dmabufs (getting tickets for
// Devmem.Bind), returns tokens and drives sim TX. Daemon-initiated messages
// (RxFrags, TxCompletion, BindingClosed) that arrive while a request waits
// for its reply are queued and handed out by NextEvent(), in order.
//
//   ASSIGN_OR_RETURN(auto session, FdSessionClient::Connect(path, "trainer"));
//   ASSIGN_OR_RETURN(v1::Ticket t, session->RegisterDmabuf(buf.borrow()));
//   // gRPC Bind with metadata session->Metadata() and t.ticket() ...
//   ASSIGN_OR_RETURN(auto ev, session->NextEvent(absl::Seconds(1)));
//
// Closing the session (destroying this object) releases every binding made
// with it. The client library builds on this; it never links server/.
//
// Thread safety: not thread-safe; use one object from one thread at a time.
#ifndef DEVMEM_SESSION_FDSOCK_CLIENT_H_
#define DEVMEM_SESSION_FDSOCK_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"
#include "devmem/v1/fdsock.pb.h"
#include "pool/token_range.h"

namespace devmem::fdsock {

class FdSessionClient {
 public:
  // Connects to the fd socket at `path` and completes Hello/Welcome. Errors:
  // the connect errno; PermissionDenied (not on the allowlist) or
  // FailedPrecondition (version) from the daemon's Error reply.
  static absl::StatusOr<std::unique_ptr<FdSessionClient>> Connect(
      const std::string& path, std::string_view client_name = "");

  uint64_t session_id() const { return welcome_.session_id(); }
  const std::string& secret() const { return welcome_.session_secret(); }
  const v1::Welcome& welcome() const { return welcome_; }
  // The two gRPC metadata entries that authenticate calls as this session.
  std::vector<std::pair<std::string, std::string>> Metadata() const;
  BorrowedFd socket() const { return sock_.borrow(); }

  // Sends `dmabuf` (the caller keeps its fd) and returns the ticket.
  absl::StatusOr<v1::Ticket> RegisterDmabuf(BorrowedFd dmabuf,
                                            std::string_view name = "");
  // SO_DEVMEM_DONTNEED for a sim RX binding (at most 128 ranges).
  absl::StatusOr<v1::TokensReturned> ReturnTokens(
      uint32_t binding_id, absl::Span<const TokenRange> ranges);
  // Sim TX: connect a TX binding to `peer`, then send ranges of the dmabuf;
  // returns the send id (completions come as TxCompletion events).
  absl::Status TxConnect(uint32_t binding_id, std::string_view peer);
  absl::StatusOr<uint32_t> TxSend(uint32_t binding_id, uint64_t offset,
                                  uint64_t length);

  // Sends any message and waits for the reply with the same request_id
  // (which this sets). An Error reply becomes its Status.
  absl::StatusOr<v1::FdMessage> Call(v1::FdMessage request,
                                     absl::Span<const BorrowedFd> fds = {});

  // The next daemon-initiated message, waiting up to `timeout`; nullopt on
  // timeout. Unavailable once the daemon closed the session.
  absl::StatusOr<std::optional<v1::FdMessage>> NextEvent(
      absl::Duration timeout);

 private:
  explicit FdSessionClient(UniqueFd sock) : sock_(std::move(sock)) {}
  // Reads one packet, waiting up to `timeout` (InfiniteDuration: block).
  absl::StatusOr<std::optional<v1::FdMessage>> ReadOne(absl::Duration timeout);

  UniqueFd sock_;
  v1::Welcome welcome_;
  uint64_t next_request_id_ = 1;
  std::deque<v1::FdMessage> events_;
};

}  // namespace devmem::fdsock

#endif  // DEVMEM_SESSION_FDSOCK_CLIENT_H_
