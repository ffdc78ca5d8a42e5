// FdSessionClient: the job's end of a devmemd session (the fd socket).
//
// Connects, says Hello, and then registers dmabufs (getting tickets for
// Devmem.Bind). Daemon-initiated messages (DataPath with its fd,
// BindingClosed) that arrive while a request waits for its reply are queued
// and handed out by NextEvent(), in order. No data crosses the session: a
// binding's data path is its own fd.
//
//   ASSIGN_OR_RETURN(auto session, FdSessionClient::Connect(path, "trainer"));
//   ASSIGN_OR_RETURN(v1::Ticket t, session->RegisterDmabuf(buf.borrow()));
//   // gRPC Bind with metadata session->Metadata() and t.ticket() ...
//   ASSIGN_OR_RETURN(auto ev, session->NextEvent(absl::Seconds(1)));
//   // ev->message.has_data_path(): ev->fd is the binding's data path
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

namespace devmem::fdsock {

// A daemon-initiated message and the fd it carried (DataPath only).
struct SessionEvent {
  v1::FdMessage message;
  UniqueFd fd;
};

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
  // Sends any message and waits for the reply with the same request_id
  // (which this sets). An Error reply becomes its Status.
  absl::StatusOr<v1::FdMessage> Call(v1::FdMessage request,
                                     absl::Span<const BorrowedFd> fds = {});

  // The next daemon-initiated message, waiting up to `timeout`; nullopt on
  // timeout. Unavailable once the daemon closed the session. A DataPath
  // without exactly one fd is InvalidArgument (and dropped).
  absl::StatusOr<std::optional<SessionEvent>> NextEvent(absl::Duration timeout);

 private:
  explicit FdSessionClient(UniqueFd sock) : sock_(std::move(sock)) {}
  // Reads one packet, waiting up to `timeout` (InfiniteDuration: block).
  absl::StatusOr<std::optional<SessionEvent>> ReadOne(absl::Duration timeout);

  UniqueFd sock_;
  v1::Welcome welcome_;
  uint64_t next_request_id_ = 1;
  std::deque<SessionEvent> events_;
};

}  // namespace devmem::fdsock

#endif  // DEVMEM_SESSION_FDSOCK_CLIENT_H_
