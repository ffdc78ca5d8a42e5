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

absl::StatusOr<std::optional<v1::FdMessage>> FdSessionClient::ReadOne(
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
                               /*max_fds=*/0));
  if (m.eof) return absl::UnavailableError("fd socket: daemon closed session");
  return std::move(m.message);
}

absl::StatusOr<v1::FdMessage> FdSessionClient::Call(
    v1::FdMessage request, absl::Span<const BorrowedFd> fds) {
  const uint64_t id = next_request_id_++;
  request.set_request_id(id);
  RETURN_IF_ERROR(SendMessage(sock_.borrow(), request, fds));
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<v1::FdMessage> m,
                     ReadOne(absl::InfiniteDuration()));
    if (!m.has_value()) continue;  // not possible with an infinite wait
    if (m->request_id() != id) {
      // A request-less error reply (e.g. to a frame the daemon could not
      // parse) has id 0 too; only daemon events are queued.
      if (m->request_id() == 0 && !m->has_error()) {
        events_.push_back(std::move(*m));
        continue;
      }
      if (m->request_id() == 0 && m->has_error()) {
        return ErrorToStatus(m->error());
      }
      continue;  // a stale reply to an earlier, abandoned request
    }
    if (m->has_error()) return ErrorToStatus(m->error());
    return std::move(*m);
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

absl::StatusOr<v1::TokensReturned> FdSessionClient::ReturnTokens(
    uint32_t binding_id, absl::Span<const TokenRange> ranges) {
  v1::FdMessage req;
  auto* r = req.mutable_return_tokens();
  r->set_binding_id(binding_id);
  for (const TokenRange& t : ranges) {
    auto* out = r->add_ranges();
    out->set_start(t.start);
    out->set_count(t.count);
  }
  ASSIGN_OR_RETURN(v1::FdMessage reply, Call(std::move(req)));
  return reply.tokens_returned();
}

absl::Status FdSessionClient::TxConnect(uint32_t binding_id,
                                        std::string_view peer) {
  v1::FdMessage req;
  req.mutable_tx_connect()->set_binding_id(binding_id);
  req.mutable_tx_connect()->set_peer(std::string(peer));
  return Call(std::move(req)).status();
}

absl::StatusOr<uint32_t> FdSessionClient::TxSend(uint32_t binding_id,
                                                 uint64_t offset,
                                                 uint64_t length) {
  v1::FdMessage req;
  req.mutable_tx_send()->set_binding_id(binding_id);
  req.mutable_tx_send()->set_offset(offset);
  req.mutable_tx_send()->set_length(length);
  ASSIGN_OR_RETURN(v1::FdMessage reply, Call(std::move(req)));
  return reply.tx_accepted().send_id();
}

absl::StatusOr<std::optional<v1::FdMessage>> FdSessionClient::NextEvent(
    absl::Duration timeout) {
  if (!events_.empty()) {
    v1::FdMessage m = std::move(events_.front());
    events_.pop_front();
    return m;
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<v1::FdMessage> m,
                     ReadOne(deadline - absl::Now()));
    if (!m.has_value()) return std::nullopt;
    if (m->request_id() == 0) return m;
    // A late reply to an abandoned request: drop it.
  }
}

}  // namespace devmem::fdsock
