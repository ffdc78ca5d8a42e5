#include "session/fdsock_client.h"

#include <poll.h>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "session/fdsock_codec.h"

namespace devmem::fdsock {

absl::StatusOr<std::unique_ptr<FdSessionClient>> FdSessionClient::Connect(
    const std::string& path, std::string_view client_name) {
  ASSIGN_OR_RETURN(UniqueFd sock, ConnectSeqPacket(path));
  std::unique_ptr<FdSessionClient> c(new FdSessionClient(std::move(sock)));
  v1::FdMessage hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  hello.mutable_hello()->set_client_name(std::string(client_name));
  ASSIGN_OR_RETURN(v1::FdMessage reply, c->Call(std::move(hello)));
  if (!reply.has_welcome()) {
    return absl::InternalError("fd socket: Hello not answered with Welcome");
  }
  c->welcome_ = reply.welcome();
  return c;
}

std::vector<std::pair<std::string, std::string>> FdSessionClient::Metadata()
    const {
  return {{"devmem-session", absl::StrCat(session_id())},
          {"devmem-secret", secret()}};
}

absl::StatusOr<std::optional<SessionEvent>> FdSessionClient::ReadOne(
    absl::Duration timeout) {
  if (timeout != absl::InfiniteDuration()) {
    pollfd p{sock_.get(), POLLIN, 0};
    const int ms = static_cast<int>(
        absl::ToInt64Milliseconds(std::max(timeout, absl::ZeroDuration())));
    const int n = ::poll(&p, 1, ms);
    if (n < 0) return ErrnoStatus("poll fd socket");
    if (n == 0) return std::nullopt;
  }
  ASSIGN_OR_RETURN(ReceivedMessage m,
                   RecvMessage(sock_.borrow(), kMaxDaemonFrameBytes,
                               /*max_fds=*/1));
  if (m.eof) return absl::UnavailableError("fd socket: daemon closed session");
  SessionEvent ev;
  ev.message = std::move(m.message);
  const bool wants_fd = ev.message.has_data_path();
  if (wants_fd != (m.fds.size() == 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fd socket: a ", wants_fd ? "DataPath" : "message", " with ",
        m.fds.size(), " fds (DataPath carries exactly one, others none)"));
  }
  if (wants_fd) ev.fd = std::move(m.fds[0]);
  return ev;
}

absl::StatusOr<v1::FdMessage> FdSessionClient::Call(
    v1::FdMessage request, absl::Span<const BorrowedFd> fds) {
  const uint64_t id = next_request_id_++;
  request.set_request_id(id);
  RETURN_IF_ERROR(SendMessage(sock_.borrow(), request, fds));
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<SessionEvent> ev,
                     ReadOne(absl::InfiniteDuration()));
    if (!ev.has_value()) continue;  // not possible with an infinite wait
    v1::FdMessage& m = ev->message;
    if (m.request_id() != id) {
      // A request-less error reply (e.g. to a frame the daemon could not
      // parse) has id 0 too; only daemon events are queued.
      if (m.request_id() == 0 && !m.has_error()) {
        events_.push_back(*std::move(ev));
        continue;
      }
      if (m.request_id() == 0 && m.has_error()) {
        return ErrorToStatus(m.error());
      }
      continue;  // a stale reply to an earlier, abandoned request
    }
    if (m.has_error()) return ErrorToStatus(m.error());
    return std::move(m);
  }
}

absl::StatusOr<v1::Ticket> FdSessionClient::RegisterDmabuf(
    BorrowedFd dmabuf, std::string_view name) {
  v1::FdMessage req;
  req.mutable_register_dmabuf()->set_name(std::string(name));
  const BorrowedFd fds[] = {dmabuf};
  ASSIGN_OR_RETURN(v1::FdMessage reply, Call(std::move(req), fds));
  if (!reply.has_ticket()) {
    return absl::InternalError("fd socket: RegisterDmabuf not answered");
  }
  return reply.ticket();
}

absl::StatusOr<std::optional<SessionEvent>> FdSessionClient::NextEvent(
    absl::Duration timeout) {
  if (!events_.empty()) {
    SessionEvent ev = std::move(events_.front());
    events_.pop_front();
    return ev;
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<SessionEvent> ev,
                     ReadOne(deadline - absl::Now()));
    if (!ev.has_value()) return std::nullopt;
    if (ev->message.request_id() == 0) return ev;
    // A late reply to an abandoned request: drop it.
  }
}

}  // namespace devmem::fdsock
