#include "server/fd_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/fd_socket.h"
#include "base/log.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "session/fdsock_codec.h"

namespace devmem::server {

namespace v1 = ::devmem::v1;

namespace {
constexpr uint64_t kWakeKey = 0;
constexpr uint64_t kListenerKey = 1;
constexpr uint64_t kKickKey = 2;  // a connection overflowed its queue
constexpr int kMaxMessagesPerWakeup = 64;
}  // namespace

// One connection: before Hello just a peer, after it a session's sink.
//
// Sends never block: what the socket does not take at once waits in a
// bounded per-session queue, flushed when epoll says the socket is writable.
// A session whose queue passes the bound (it sends but does not read) is
// closed alone, by the loop, with a logged reason; nobody else waits for it.
class FdServer::Conn : public SessionSink,
                       public std::enable_shared_from_this<Conn> {
 public:
  static constexpr size_t kMaxQueuedMessages = 256;
  static constexpr size_t kMaxQueuedBytes = 1 << 20;

  Conn(UniqueFd sock, PeerCred cred, int epoll_fd, uint64_t key, int kick_fd)
      : sock_(std::move(sock)),
        cred_(cred),
        epoll_fd_(epoll_fd),
        key_(key),
        kick_fd_(kick_fd) {}

  BorrowedFd sock() const { return sock_.borrow(); }
  const PeerCred& cred() const { return cred_; }
  uint64_t session = 0;  // loop thread only

  // Sends one message (with at most one fd), now or from the queue. False
  // when the connection is closed or has overflowed (the loop closes it).
  bool Send(const v1::FdMessage& m, absl::Span<const BorrowedFd> fds) {
    std::string bytes;
    if (!m.SerializeToString(&bytes)) return false;
    MutexLock l(mu_);
    if (closed_ || overflowed_) return false;
    if (out_.empty()) {
      absl::Status s = SendFrame(sock_.borrow(), bytes, fds, MSG_DONTWAIT);
      if (s.ok()) return true;
      if (s.code() != absl::StatusCode::kUnavailable) return false;  // EPIPE
    }
    if (out_.size() >= kMaxQueuedMessages ||
        out_bytes_ + bytes.size() > kMaxQueuedBytes) {
      overflowed_ = true;
      const uint64_t one = 1;
      (void)!::write(kick_fd_, &one, sizeof(one));  // the loop closes us
      return false;
    }
    Queued q;
    q.bytes = std::move(bytes);
    if (!fds.empty()) {
      // The caller's fd may close when we return; keep our own until sent.
      q.fd = UniqueFd(::fcntl(fds[0].get(), F_DUPFD_CLOEXEC, 0));
      if (!q.fd.ok()) return false;
    }
    out_bytes_ += q.bytes.size();
    out_.push_back(std::move(q));
    if (out_.size() == 1) WatchWritableLocked(true);
    return true;
  }
  bool Reply(const v1::FdMessage& m) { return Send(m, {}); }

  // On EPOLLOUT: sends what waits. False if the connection failed.
  bool Flush() {
    MutexLock l(mu_);
    while (!out_.empty()) {
      Queued& q = out_.front();
      BorrowedFd fds[1] = {q.fd.borrow()};
      absl::Status s =
          SendFrame(sock_.borrow(), q.bytes,
                    q.fd.ok() ? absl::Span<const BorrowedFd>(fds, 1)
                              : absl::Span<const BorrowedFd>(),
                    MSG_DONTWAIT);
      if (!s.ok()) {
        if (s.code() == absl::StatusCode::kUnavailable) return true;
        return false;
      }
      out_bytes_ -= q.bytes.size();
      out_.pop_front();
    }
    WatchWritableLocked(false);
    return true;
  }
  bool overflowed() {
    MutexLock l(mu_);
    return overflowed_;
  }

  absl::Status SendDataPath(uint32_t binding_id, BorrowedFd fd) override {
    v1::FdMessage m;
    m.mutable_data_path()->set_binding_id(binding_id);
    const BorrowedFd fds[] = {fd};
    if (!Send(m, fds)) {
      return absl::UnavailableError(
          "the session did not take its data-path fd (closed, or not "
          "reading)");
    }
    return absl::OkStatus();
  }
  void SendBindingClosed(uint32_t binding_id,
                         const absl::Status& why) override {
    v1::FdMessage m;
    m.mutable_binding_closed()->set_binding_id(binding_id);
    m.mutable_binding_closed()->set_code(static_cast<int>(why.code()));
    m.mutable_binding_closed()->set_message(std::string(why.message()));
    (void)Send(m, {});
  }

  // Makes every pending and future send fail at once; the fd itself closes
  // when the last holder (the loop, the broker's session) lets go.
  void Shutdown() {
    MutexLock l(mu_);
    closed_ = true;
    out_.clear();
    out_bytes_ = 0;
    ::shutdown(sock_.get(), SHUT_RDWR);
  }

 private:
  struct Queued {
    std::string bytes;
    UniqueFd fd;
  };
  void WatchWritableLocked(bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u);
    ev.data.u64 = key_;
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, sock_.get(), &ev);
  }

  const UniqueFd sock_;
  const PeerCred cred_;
  const int epoll_fd_;
  const uint64_t key_;
  const int kick_fd_;
  Mutex mu_;
  std::deque<Queued> out_ ABSL_GUARDED_BY(mu_);
  size_t out_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

FdServer::FdServer(Broker* broker, Options options, ErrorCounter count_error)
    : broker_(broker),
      options_(std::move(options)),
      count_error_(std::move(count_error)) {}

FdServer::~FdServer() { Stop(); }

absl::Status FdServer::Start() {
  ASSIGN_OR_RETURN(listener_, ListenSeqPacket(options_.path, options_.mode));
  if (options_.group.has_value() &&
      ::chown(options_.path.c_str(), static_cast<uid_t>(-1), *options_.group) !=
          0) {
    return ErrnoStatus(
        absl::StrCat("chown fd socket to gid ", *options_.group));
  }
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.ok()) return ErrnoStatus("epoll_create1");
  wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.ok()) return ErrnoStatus("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeKey;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    return ErrnoStatus("epoll_ctl wake");
  }
  ev.data.u64 = kListenerKey;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), &ev) != 0) {
    return ErrnoStatus("epoll_ctl listener");
  }
  kick_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!kick_.ok()) return ErrnoStatus("eventfd");
  ev.data.u64 = kKickKey;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, kick_.get(), &ev) != 0) {
    return ErrnoStatus("epoll_ctl kick");
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void FdServer::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  thread_.join();
  std::vector<uint64_t> keys;
  for (const auto& [k, c] : conns_) keys.push_back(k);
  for (uint64_t k : keys) CloseConn(k);
  listener_.reset();
  ::unlink(options_.path.c_str());
  epoll_.reset();
  wake_.reset();
  kick_.reset();
}

void FdServer::Count(std::string_view reason) {
  if (count_error_) count_error_(reason);
}

void FdServer::Loop() {
  epoll_event events[64];
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      DEVMEM_LOG(kError, "fd_socket_epoll_failed").Kv("errno", errno);
      return;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t key = events[i].data.u64;
      if (key == kWakeKey) return;
      if (key == kListenerKey) {
        Accept();
        continue;
      }
      if (key == kKickKey) {
        uint64_t v;
        (void)!::read(kick_.get(), &v, sizeof(v));
        CloseOverflowed();
        continue;
      }
      auto it = conns_.find(key);
      if (it == conns_.end()) continue;
      std::shared_ptr<Conn> conn = it->second;
      if ((events[i].events & EPOLLOUT) && !conn->Flush()) {
        CloseConn(key);
        continue;
      }
      if ((events[i].events & ~static_cast<uint32_t>(EPOLLOUT)) != 0 &&
          !Service(*conn)) {
        if (conn->overflowed()) {
          CloseOverflowed();  // says why
        } else {
          CloseConn(key);
        }
        continue;
      }
      if (conn->overflowed()) CloseOverflowed();
    }
  }
}

void FdServer::Accept() {
  for (;;) {
    UniqueFd s(::accept4(listener_.get(), nullptr, nullptr,
                         SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!s.ok()) {
      if (errno != EAGAIN && errno != EINTR) {
        DEVMEM_LOG(kWarning, "fd_socket_accept_failed")
            .Kv("error", ErrnoName(errno));
      }
      return;
    }
    auto cred = GetPeerCred(s.borrow());
    if (!cred.ok()) continue;  // s closes
    const uint64_t key = next_key_++;
    auto conn = std::make_shared<Conn>(std::move(s), *cred, epoll_.get(), key,
                                       kick_.get());
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = key;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conn->sock().get(), &ev) !=
        0) {
      continue;
    }
    conns_.emplace(key, std::move(conn));
  }
}

void FdServer::CloseOverflowed() {
  std::vector<uint64_t> keys;
  for (const auto& [k, c] : conns_) {
    if (c->overflowed()) keys.push_back(k);
  }
  for (uint64_t k : keys) {
    const Conn& c = *conns_.at(k);
    DEVMEM_LOG(kWarning, "fd_session_dropped")
        .Kv("session", c.session)
        .Kv("uid", c.cred().uid)
        .Kv("pid", c.cred().pid)
        .Kv("reason", std::string("does not read its socket: more than ") +
                          std::to_string(Conn::kMaxQueuedMessages) +
                          " replies or 1 MiB waiting");
    Count("not_reading");
    CloseConn(k);
  }
}

void FdServer::CloseConn(uint64_t key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  std::shared_ptr<Conn> conn = std::move(it->second);
  conns_.erase(it);
  if (epoll_.ok()) {
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, conn->sock().get(), nullptr);
  }
  conn->Shutdown();
  // Releases every binding of the session before we go on: the 1 s promise.
  if (conn->session != 0) broker_->CloseSession(conn->session);
}

bool FdServer::Service(Conn& conn) {
  for (int i = 0; i < kMaxMessagesPerWakeup; ++i) {
    auto frame =
        RecvFrame(conn.sock(),
                  {.max_frame_bytes = fdsock::kMaxJobFrameBytes, .max_fds = 1},
                  MSG_DONTWAIT);
    if (!frame.ok()) {
      if (frame.status().code() == absl::StatusCode::kUnavailable) {
        return true;  // EAGAIN: drained
      }
      return false;  // ECONNRESET and the like
    }
    if (frame->eof) return false;
    if (frame->problem != FrameProblem::kNone) {
      const std::string reason(FrameProblemName(frame->problem));
      const size_t nfds = frame->fds.size();
      frame->fds.clear();  // closed now, before we answer
      absl::Status why = absl::InvalidArgumentError(absl::StrCat(
          "frame rejected (", reason, "): at most ", fdsock::kMaxJobFrameBytes,
          " bytes and one fd per packet; ", nfds, " fds received and closed"));
      if (!Reply(conn, 0, why, reason)) return false;
      continue;
    }
    if (frame->data.empty() && frame->fds.empty()) {
      // A zero-length SEQPACKET record: not EOF, and not a message.
      if (!Reply(conn, 0,
                 absl::InvalidArgumentError(
                     "empty packet (0 bytes): every packet is one FdMessage"),
                 "bad_message")) {
        return false;
      }
      continue;
    }
    if (!Handle(conn, frame->data, std::move(frame->fds))) return false;
  }
  return true;
}

bool FdServer::Reply(Conn& conn, uint64_t request_id,
                     const absl::Status& status, std::string_view reason) {
  Count(reason);
  DEVMEM_LOG(kInfo, "fd_socket_error")
      .Kv("session", conn.session)
      .Kv("uid", conn.cred().uid)
      .Kv("pid", conn.cred().pid)
      .Kv("reason", std::string(reason))
      .Kv("message", std::string(status.message()));
  v1::FdMessage m;
  m.set_request_id(request_id);
  *m.mutable_error() = fdsock::StatusToError(status, reason);
  return conn.Reply(m);
}

bool FdServer::Handle(Conn& conn, std::string_view data,
                      std::vector<UniqueFd> fds) {
  v1::FdMessage in;
  if (!in.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return Reply(
        conn, 0,
        absl::InvalidArgumentError("packet is not a devmem.v1.FdMessage"),
        "bad_message");
  }
  const uint64_t rid = in.request_id();
  const auto body = in.body_case();
  if (!fds.empty() && body != v1::FdMessage::kRegisterDmabuf) {
    const size_t n = fds.size();
    fds.clear();
    return Reply(conn, rid,
                 absl::InvalidArgumentError(
                     absl::StrCat("only RegisterDmabuf may carry an fd; ", n,
                                  " fds received and closed")),
                 "unexpected_fd");
  }
  v1::FdMessage out;
  out.set_request_id(rid);

  if (conn.session == 0) {
    if (body != v1::FdMessage::kHello) {
      return Reply(conn, rid,
                   absl::FailedPreconditionError(
                       "no session yet: the first message must be Hello"),
                   "no_session");
    }
    if (in.hello().protocol_version() != fdsock::kProtocolVersion) {
      (void)Reply(
          conn, rid,
          absl::FailedPreconditionError(absl::StrCat(
              "protocol version ", in.hello().protocol_version(),
              " not supported; this daemon speaks ", fdsock::kProtocolVersion)),
          "bad_version");
      return false;
    }
    // The session sink is this connection; share ownership with the broker.
    auto grant = broker_->OpenSession(conn.cred(), in.hello().client_name(),
                                      conn.shared_from_this());
    if (!grant.ok()) {
      (void)Reply(conn, rid, grant.status(),
                  grant.status().code() == absl::StatusCode::kPermissionDenied
                      ? "not_allowed"
                      : "session_refused");
      return false;
    }
    conn.session = grant->id;
    v1::Welcome* w = out.mutable_welcome();
    w->set_session_id(grant->id);
    w->set_session_secret(grant->secret);
    w->set_protocol_version(fdsock::kProtocolVersion);
    w->set_uid(conn.cred().uid);
    w->set_gid(conn.cred().gid);
    w->set_pid(static_cast<uint32_t>(conn.cred().pid));
    w->set_provider(std::string(broker_->provider_name()));
    w->set_ticket_ttl_ms(absl::ToInt64Milliseconds(broker_->ticket_ttl()));
    return conn.Reply(out);
  }

  switch (body) {
    case v1::FdMessage::kHello:
      return Reply(conn, rid,
                   absl::FailedPreconditionError("session already open"),
                   "already_hello");
    case v1::FdMessage::kRegisterDmabuf: {
      if (fds.empty()) {
        return Reply(conn, rid,
                     absl::InvalidArgumentError(
                         "RegisterDmabuf carries no fd: attach exactly one "
                         "dmabuf fd with SCM_RIGHTS"),
                     "no_fd");
      }
      auto t = broker_->RegisterDmabuf(conn.session, std::move(fds[0]));
      if (!t.ok()) {
        return Reply(
            conn, rid, t.status(),
            // A failed syscall (mmap ENOMEM of a huge buffer) is
            // the dmabuf's fault, not the ticket quota's.
            t.status().code() == absl::StatusCode::kResourceExhausted &&
                    !CarriesErrno(t.status())
                ? "too_many_tickets"
                : "not_dmabuf");
      }
      v1::Ticket* tk = out.mutable_ticket();
      tk->set_ticket(t->ticket.ticket);
      tk->set_size_bytes(t->info.size_bytes);
      tk->set_expires_unix_ms(absl::ToUnixMillis(t->ticket.expires));
      tk->set_exporter(t->info.exporter);
      return conn.Reply(out);
    }
    case v1::FdMessage::BODY_NOT_SET:
      return Reply(
          conn, rid,
          absl::InvalidArgumentError("unknown message type (newer protocol?)"),
          "unknown_type");
    default:
      return Reply(conn, rid,
                   absl::InvalidArgumentError(
                       absl::StrCat("message type ", static_cast<int>(body),
                                    " is sent by the daemon only")),
                   "unexpected_type");
  }
}

}  // namespace devmem::server
