#include "providers/sim/internal/tx_path.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/host_port.h"
#include "base/log.h"

namespace devmem::sim_internal {
namespace {

// Packets from the job taken per wake-up.
constexpr int kJobPacketsPerWake = 64;

}  // namespace

TxPath::TxPath(TxPathOptions options)
    : options_(std::move(options)), link_up_(options_.link_up) {}

absl::StatusOr<std::unique_ptr<TxPath>> TxPath::Create(TxPathOptions options) {
  std::unique_ptr<TxPath> path(new TxPath(std::move(options)));
  const std::string& name = path->options_.name;
  path->event_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!path->event_.ok()) return ErrnoStatus(absl::StrCat(name, ": eventfd"));
  UniqueFd job_end;
  absl::StatusOr<DpSocket> dp = DpSocket::Create(name, &job_end);
  if (!dp.ok()) return dp.status();
  path->dp_ = *std::move(dp);
  {
    MutexLock lock(path->mu_);
    path->job_end_ = std::move(job_end);
  }
  TxPath* raw = path.get();
  path->thread_ = std::thread([raw] { raw->Run(); });
  return path;
}

TxPath::~TxPath() { Stop(); }

void TxPath::Stop() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  dp_.Close();  // the job reads EOF
  tcp_.reset();
  queue_.clear();
}

void TxPath::Wake() {
  const uint64_t one = 1;
  (void)!::write(event_.get(), &one, sizeof(one));
}

UniqueFd TxPath::TakeJobEnd() {
  MutexLock lock(mu_);
  return std::move(job_end_);
}

void TxPath::SetLinkUp(bool up) {
  {
    MutexLock lock(mu_);
    link_up_ = up;
  }
  Wake();
}

bool TxPath::link_up() const {
  MutexLock lock(mu_);
  return link_up_;
}

void TxPath::Connect(std::string_view peer) {
  const std::string& name = options_.name;
  const absl::string_view text(peer.data(), peer.size());
  absl::Status s;
  absl::StatusOr<SocketAddress> addr = ParseHostPort(text);
  if (connected_once_) {
    s = absl::FailedPreconditionError(
        absl::StrCat(name, ": TxConnect: already connected"));
  } else if (!addr.ok()) {
    s = WithContext(addr.status(), absl::StrCat(name, ": TxConnect"));
  } else if (!link_up()) {
    s = ErrnoToStatus(ENETDOWN, absl::StrCat(name, ": TxConnect: link down"));
  } else {
    // Loopback connects complete (or fail) at once.
    absl::StatusOr<UniqueFd> fd = ConnectTcp(*addr);
    if (!fd.ok()) {
      s = WithContext(fd.status(), absl::StrCat(name, ": TxConnect ", text));
    } else {
      const int flags = ::fcntl(fd->get(), F_GETFL);
      if (flags < 0 || ::fcntl(fd->get(), F_SETFL, flags | O_NONBLOCK) != 0) {
        s = ErrnoStatus(absl::StrCat(name, ": TxConnect: O_NONBLOCK"));
      } else {
        tcp_ = *std::move(fd);
        connected_once_ = true;
      }
    }
  }
  dp_.Send(simdp::TxAcceptedPacket(0, s));
}

absl::StatusOr<uint32_t> TxPath::Accept(const simdp::TxSend& send) {
  const std::string& name = options_.name;
  if (send.length == 0) {
    return ErrnoToStatus(EINVAL, absl::StrCat(name, ": send: length 0"));
  }
  if (send.offset >= options_.size ||
      send.length > options_.size - send.offset) {
    return ErrnoToStatus(
        EFAULT, absl::StrCat(name, ": send [", send.offset, ", +", send.length,
                             ") beyond the ", options_.size, "-byte buffer"));
  }
  if (!connected_once_) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": send before TxConnect"));
  }
  if (!closed_.ok()) return closed_;
  return next_id_++;  // wraps at 2^32, as the kernel's
}

void TxPath::ServeJob() {
  for (int i = 0; i < kJobPacketsPerWake && dp_.open() &&
                  (dp_.events() & POLLIN) && queue_.size() < kMaxQueuedSends;
       ++i) {
    bool truncated = false;
    const DpSocket::Read r =
        dp_.Recv(&scratch_in_, simdp::kMaxPacketBytes, &truncated);
    if (r != DpSocket::Read::kPacket) return;
    absl::StatusOr<simdp::Packet> p =
        truncated ? absl::InvalidArgumentError(
                        absl::StrCat("data-path packet longer than ",
                                     simdp::kMaxPacketBytes, " bytes"))
                  : simdp::Parse(scratch_in_);
    if (p.ok() && p->type == simdp::Type::kTxConnect) {
      Connect(p->units);
      continue;
    }
    if (p.ok() && p->type == simdp::Type::kTxSend) {
      const simdp::TxSend send = simdp::Fixed<simdp::TxSend>(*p);
      absl::StatusOr<uint32_t> id = Accept(send);
      dp_.Send(simdp::TxAcceptedPacket(id.ok() ? *id : 0, id.status()));
      if (id.ok()) queue_.push_back(Pending{*id, send.offset, send.length});
      continue;
    }
    if (p.ok()) {
      p = absl::InvalidArgumentError(
          absl::StrCat(simdp::TypeName(static_cast<uint16_t>(p->type)),
                       " is not taken by a TX binding's data path"));
    }
    dp_.Send(simdp::StatusPacket(
        simdp::Type::kError,
        WithContext(p.status(),
                    absl::StrCat(options_.name, ": nothing changed"))));
  }
}

void TxPath::Write() {
  if (!tcp_.ok() || queue_.empty()) return;
  bool any = false;
  uint32_t lo = 0;
  uint32_t hi = 0;
  int err = 0;
  while (!queue_.empty()) {
    const Pending& p = queue_.front();
    const ssize_t n =
        ::send(tcp_.get(), options_.cpu_base + p.offset + front_written_,
               p.length - front_written_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) err = errno;
      break;
    }
    bytes_sent_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    front_written_ += static_cast<uint64_t>(n);
    if (front_written_ < p.length) continue;
    if (!any) lo = p.id;
    hi = p.id;
    any = true;
    front_written_ = 0;
    queue_.pop_front();
  }
  if (any) dp_.Send(simdp::TxCompletionPacket(lo, hi));
  if (err != 0) {
    CloseConnection(ErrnoToStatus(err, absl::StrCat(options_.name, ": send")));
  }
}

void TxPath::CloseConnection(const absl::Status& why) {
  if (!closed_.ok()) return;
  closed_ = why;
  tcp_.reset();
  // Never to be written: the buffer ranges are free again, which is what a
  // zerocopy completion says.
  if (!queue_.empty()) {
    dp_.Send(simdp::TxCompletionPacket(queue_.front().id, queue_.back().id));
    queue_.clear();
    front_written_ = 0;
  }
  dp_.Send(simdp::StatusPacket(simdp::Type::kClosed, why));
}

void TxPath::Run() {
  while (!stop_.load()) {
    pollfd fds[3];
    nfds_t nfds = 0;
    fds[nfds++] = pollfd{event_.get(), POLLIN, 0};
    int dp_at = -1;
    int tcp_at = -1;
    if (dp_.open()) {
      dp_at = static_cast<int>(nfds);
      short ev = dp_.events();
      if (queue_.size() >= kMaxQueuedSends) ev &= ~POLLIN;
      fds[nfds++] = pollfd{dp_.fd(), ev, 0};
    }
    if (tcp_.ok() && !queue_.empty()) {
      tcp_at = static_cast<int>(nfds);
      fds[nfds++] = pollfd{tcp_.get(), POLLOUT, 0};
    }
    if (::poll(fds, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      DEVMEM_LOG(kError, "sim_tx_poll_failed")
          .Kv("binding", options_.name)
          .Kv("errno", ErrnoName(errno));
      return;
    }
    if (fds[0].revents != 0) {
      uint64_t value;
      (void)!::read(event_.get(), &value, sizeof(value));
      if (stop_.load()) return;
      if (!link_up() && tcp_.ok()) {
        CloseConnection(ErrnoToStatus(
            ENETDOWN, absl::StrCat(options_.name, ": link down")));
      }
      continue;
    }
    if (dp_at >= 0 && fds[dp_at].revents != 0) {
      if (fds[dp_at].revents & POLLOUT) dp_.Flush();
      ServeJob();
      Write();
      if (!dp_.open()) {
        // The job closed its end: nothing more will be sent.
        tcp_.reset();
        queue_.clear();
        DEVMEM_LOG(kInfo, "sim_data_path_closed").Kv("binding", options_.name);
        continue;
      }
    }
    if (tcp_at >= 0 && fds[tcp_at].revents != 0) Write();
  }
}

}  // namespace devmem::sim_internal
