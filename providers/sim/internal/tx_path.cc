#include "providers/sim/internal/tx_path.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem::sim_internal {
namespace {

// Parses "A.B.C.D:PORT" or "[v6]:PORT" into `ss`.
bool ParsePeer(absl::string_view peer, sockaddr_storage* ss, socklen_t* len) {
  const size_t colon = peer.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view host = peer.substr(0, colon);
  uint32_t port = 0;
  if (!absl::SimpleAtoi(peer.substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    return false;
  }
  *ss = {};
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string h(host.substr(1, host.size() - 2));
    auto* a6 = reinterpret_cast<sockaddr_in6*>(ss);
    if (::inet_pton(AF_INET6, h.c_str(), &a6->sin6_addr) != 1) return false;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*a6);
    return true;
  }
  const std::string h(host);
  auto* a4 = reinterpret_cast<sockaddr_in*>(ss);
  if (::inet_pton(AF_INET, h.c_str(), &a4->sin_addr) != 1) return false;
  a4->sin_family = AF_INET;
  a4->sin_port = htons(static_cast<uint16_t>(port));
  *len = sizeof(*a4);
  return true;
}

}  // namespace

TxPath::TxPath(TxPathOptions options)
    : options_(std::move(options)), link_up_(options_.link_up) {}

TxPath::~TxPath() {
  Stop();
  if (fd_ >= 0) ::close(fd_);
}

void TxPath::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
    cv_.SignalAll();
    // Unblocks a send() stuck on a peer that does not read.
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status TxPath::Start(std::string_view peer_view,
                           std::shared_ptr<TxSink> sink) {
  const std::string peer(peer_view);
  const std::string& name = options_.name;
  sockaddr_storage ss;
  socklen_t len = 0;
  if (sink == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": StartTx: null sink"));
  }
  if (!ParsePeer(peer, &ss, &len)) {
    return ErrnoToStatus(
        EINVAL, absl::StrCat(name, ": StartTx: bad peer \"", peer,
                             "\" (want 127.0.0.1:PORT or [::1]:PORT)"));
  }
  MutexLock lock(mu_);
  if (started_) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": StartTx: already started"));
  }
  if (!link_up_) {
    return ErrnoToStatus(ENETDOWN, absl::StrCat(name, ": StartTx: link down"));
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return ErrnoStatus(absl::StrCat(name, ": StartTx: socket"));
  // Loopback connects complete (or fail) at once; no lock is held for long.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return ErrnoStatus(absl::StrCat(name, ": StartTx: connect ", peer));
  }
  fd_ = fd.release();
  started_ = true;
  thread_ = std::thread(
      [this, sink = std::move(sink)]() mutable { Run(std::move(sink)); });
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> TxPath::Send(uint64_t offset, uint64_t length) {
  const std::string& name = options_.name;
  if (length == 0) {
    return ErrnoToStatus(EINVAL, absl::StrCat(name, ": send: length 0"));
  }
  if (offset >= options_.size || length > options_.size - offset) {
    return ErrnoToStatus(
        EFAULT, absl::StrCat(name, ": send [", offset, ", +", length,
                             ") beyond the ", options_.size, "-byte buffer"));
  }
  MutexLock lock(mu_);
  if (!started_) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": send before StartTx"));
  }
  if (!closed_.ok()) return closed_;
  const uint32_t id = next_id_++;  // wraps at 2^32, as the kernel's
  queue_.push_back(Pending{id, offset, length});
  cv_.SignalAll();
  return id;
}

void TxPath::SetLinkUp(bool up) {
  MutexLock lock(mu_);
  link_up_ = up;
  cv_.SignalAll();
  if (!up && fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

bool TxPath::HasWorkLocked() const {
  return !queue_.empty() || stop_ || !link_up_;
}

int TxPath::WriteAll(const Pending& p) {
  const std::byte* data = options_.cpu_base + p.offset;
  uint64_t left = p.length;
  while (left > 0) {
    const ssize_t n = ::send(fd_, data, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    left -= static_cast<uint64_t>(n);
    bytes_sent_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  return 0;
}

void TxPath::Run(std::shared_ptr<TxSink> sink) {
  const std::string& name = options_.name;
  std::vector<Pending> batch;
  absl::Status closed_with;
  while (true) {
    batch.clear();
    bool stopping = false;
    {
      MutexLock lock(mu_);
      cv_.Await(mu_, [this] {
        mu_.AssertHeld();
        return HasWorkLocked();
      });
      batch.assign(queue_.begin(), queue_.end());
      queue_.clear();
      stopping = stop_;
      if (!link_up_ && closed_.ok()) {
        closed_ = ErrnoToStatus(ENETDOWN, absl::StrCat(name, ": link down"));
        closed_with = closed_;
      }
    }
    int err = 0;
    if (closed_with.ok() && !stopping) {
      for (const Pending& p : batch) {
        if ((err = WriteAll(p)) != 0) break;
      }
    }
    if (err != 0) {
      MutexLock lock(mu_);
      for (const Pending& p : queue_) batch.push_back(p);
      queue_.clear();
      if (stop_) {
        // Stop() shut the socket down to unblock us: a release, not an error.
        stopping = true;
      } else {
        // A link going down shows up as EPIPE from the shutdown() it did.
        closed_ = !link_up_ ? ErrnoToStatus(ENETDOWN,
                                            absl::StrCat(name, ": link down"))
                            : ErrnoToStatus(err, absl::StrCat(name, ": send"));
        closed_with = closed_;
      }
    }
    // Written, or never to be written: either way the buffer ranges are
    // free again, which is what a zerocopy completion says.
    if (!batch.empty()) sink->Completed(batch.front().id, batch.back().id);
    if (stopping || !closed_with.ok()) break;
  }
  if (!closed_with.ok()) {
    sink->Closed(closed_with);
    // Later sends fail with closed_; wait for the destructor.
    MutexLock lock(mu_);
    cv_.Await(mu_, [this] {
      mu_.AssertHeld();
      return stop_;
    });
    queue_.clear();
    return;
  }
  sink->Closed(absl::CancelledError(absl::StrCat(name, ": binding released")));
}

}  // namespace devmem::sim_internal
