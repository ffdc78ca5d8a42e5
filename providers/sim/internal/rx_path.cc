#include "providers/sim/internal/rx_path.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/uapi.h"

namespace devmem::sim_internal {
namespace {

// One receive call fills at most this many bytes of chunks (and at most 64
// chunks): large enough to amortise the syscall, small enough that a sender
// of small messages does not make us allocate and free many chunks.
constexpr uint32_t kReadBytes = 256 << 10;
constexpr uint32_t kMaxChunksPerRead = 64;
// Receive calls per wake-up before the thread looks at its eventfd again.
constexpr int kReadsPerWake = 16;

}  // namespace

RxPath::RxPath(RxPathOptions options)
    : options_(std::move(options)),
      chunk_size_(options_.region->chunk_size()),
      chunk_shift_(options_.region->chunk_shift()),
      max_chunks_per_read_(
          std::clamp<uint32_t>(kReadBytes / chunk_size_, 1, kMaxChunksPerRead)),
      link_up_(options_.link_up),
      scratch_chunks_(max_chunks_per_read_),
      scratch_iov_(max_chunks_per_read_) {
  scratch_frags_.reserve(max_chunks_per_read_);
}

absl::StatusOr<std::unique_ptr<RxPath>> RxPath::Create(RxPathOptions options) {
  std::unique_ptr<RxPath> path(new RxPath(std::move(options)));
  const std::string& name = path->options_.name;
  path->event_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!path->event_.ok()) return ErrnoStatus(absl::StrCat(name, ": eventfd"));
  path->listener_ = UniqueFd(
      ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!path->listener_.ok()) {
    return ErrnoStatus(absl::StrCat(name, ": socket"));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(path->listener_.get(), reinterpret_cast<sockaddr*>(&addr),
             sizeof(addr)) != 0) {
    return ErrnoStatus(absl::StrCat(name, ": bind 127.0.0.1:0"));
  }
  if (::listen(path->listener_.get(), 16) != 0) {
    return ErrnoStatus(absl::StrCat(name, ": listen"));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(path->listener_.get(), reinterpret_cast<sockaddr*>(&addr),
                    &len) != 0) {
    return ErrnoStatus(absl::StrCat(name, ": getsockname"));
  }
  path->endpoint_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  RxPath* raw = path.get();
  path->thread_ = std::thread([raw] { raw->Run(); });
  return path;
}

RxPath::~RxPath() { Stop(); }

void RxPath::Stop() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
}

void RxPath::Wake() {
  const uint64_t one = 1;
  // EAGAIN only when the counter is saturated: a wake-up is pending anyway.
  (void)!::write(event_.get(), &one, sizeof(one));
}

absl::Status RxPath::StartRx(std::shared_ptr<RxSink> sink) {
  if (sink == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(options_.name, ": StartRx: null sink"));
  }
  {
    MutexLock lock(mu_);
    if (sink_ != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.name,
                       ": StartRx: already started (one sink "
                       "per binding)"));
    }
    sink_ = std::move(sink);
  }
  Wake();
  return absl::OkStatus();
}

TokenRelease RxPath::ReturnTokens(absl::Span<const TokenRange> ranges) {
  TokenRelease release = options_.region->ReleaseTokens(borrower(), ranges);
  // seq_cst pairs with the thread's store(true) before its last allocation
  // attempt: either that attempt sees these chunks or we see the flag.
  if (release.freed > 0 && stalled_.load() && stalled_.exchange(false)) {
    Wake();
  }
  return release;
}

void RxPath::SetLinkUp(bool up) {
  link_up_.store(up);
  Wake();
}

RxPathCounters RxPath::Counters() const {
  RxPathCounters c;
  c.bytes = bytes_.load(std::memory_order_relaxed);
  c.frags = frags_.load(std::memory_order_relaxed);
  c.packets = packets_.load(std::memory_order_relaxed);
  c.alloc_fail = alloc_fail_.load(std::memory_order_relaxed);
  return c;
}

bool RxPath::Receive(int conn, RxSink& sink, bool& dry) {
  Region& region = *options_.region;
  std::vector<Chunk>& chunks = scratch_chunks_;
  std::vector<iovec>& iov = scratch_iov_;
  std::vector<uapi::DmabufCmsg>& frags = scratch_frags_;
  for (int round = 0; round < kReadsPerWake; ++round) {
    size_t n = region.AllocBulk(absl::MakeSpan(chunks));
    if (n == 0) {
      // Dry. Announce it before the last try, so a ReturnTokens racing with
      // us either frees in time for Alloc() or sees the flag and wakes us.
      stalled_.store(true);
      absl::StatusOr<Chunk> one = region.Alloc();  // counts alloc_failed
      if (!one.ok()) {
        alloc_fail_.fetch_add(1, std::memory_order_relaxed);
        dry = true;
        return true;
      }
      stalled_.store(false);
      chunks[0] = *one;
      n = 1;
    }
    for (size_t i = 0; i < n; ++i) {
      iov[i].iov_base =
          options_.cpu_base + (uint64_t{chunks[i].index} << chunk_shift_);
      iov[i].iov_len = chunk_size_;
    }
    const ssize_t got = ::readv(conn, iov.data(), static_cast<int>(n));
    const int err = errno;
    if (got <= 0) {
      (void)region.UnrefBulk(absl::MakeConstSpan(chunks.data(), n));
      if (got < 0 && (err == EAGAIN || err == EINTR)) return true;
      sink.Closed(
          got == 0 ? absl::OkStatus()
                   : ErrnoToStatus(err, absl::StrCat(options_.name, ": recv")));
      return false;
    }
    const uint64_t bytes = static_cast<uint64_t>(got);
    const size_t used =
        static_cast<size_t>((bytes + chunk_size_ - 1) >> chunk_shift_);
    frags.clear();
    uint64_t left = bytes;
    for (size_t i = 0; i < used; ++i) {
      absl::StatusOr<Token> token = region.Lend(chunks[i], borrower());
      DEVMEM_CHECK(token.ok()) << options_.name << ": lend: " << token.status();
      const uint32_t size =
          static_cast<uint32_t>(std::min<uint64_t>(left, chunk_size_));
      left -= size;
      frags.push_back(uapi::DmabufCmsg{
          .frag_offset = region.Offset(chunks[i]),
          .frag_size = size,
          .frag_token = *token,
          .dmabuf_id = options_.binding_id,
          .flags = 0,
      });
    }
    // Drop the allocation references: filled chunks stay held by their
    // tokens, the rest go back to the pool.
    (void)region.UnrefBulk(absl::MakeConstSpan(chunks.data(), n));
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
    frags_.fetch_add(used, std::memory_order_relaxed);
    packets_.fetch_add(1, std::memory_order_relaxed);
    sink.Deliver(frags);
    if (used < n) return true;  // the socket had no more for now
  }
  return true;
}

void RxPath::Run() {
  std::shared_ptr<RxSink> sink;
  UniqueFd conn;
  bool dry = false;
  bool link_up = link_up_.load();
  const std::string& name = options_.name;
  while (true) {
    pollfd fds[3];
    nfds_t nfds = 0;
    fds[nfds++] = pollfd{event_.get(), POLLIN, 0};
    int listen_at = -1;
    int conn_at = -1;
    if (link_up && !conn.ok()) {
      listen_at = static_cast<int>(nfds);
      fds[nfds++] = pollfd{listener_.get(), POLLIN, 0};
    }
    if (link_up && conn.ok() && sink != nullptr && !dry) {
      conn_at = static_cast<int>(nfds);
      fds[nfds++] = pollfd{conn.get(), POLLIN, 0};
    }
    if (::poll(fds, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      DEVMEM_LOG(kError, "sim_rx_poll_failed")
          .Kv("binding", name)
          .Kv("errno", ErrnoName(errno));
      break;
    }
    if (fds[0].revents != 0) {
      uint64_t value;
      (void)!::read(event_.get(), &value, sizeof(value));
      if (stop_.load()) break;
      if (sink == nullptr) {
        MutexLock lock(mu_);
        sink = sink_;
      }
      link_up = link_up_.load();
      if (!link_up && conn.ok()) {
        conn.reset();
        if (sink != nullptr) {
          sink->Closed(
              ErrnoToStatus(ENETDOWN, absl::StrCat(name, ": link down")));
        }
      }
      dry = false;  // tokens may have come back: try again
      continue;     // the poll set may have changed
    }
    if (listen_at >= 0 && fds[listen_at].revents != 0) {
      conn = UniqueFd(::accept4(listener_.get(), nullptr, nullptr,
                                SOCK_NONBLOCK | SOCK_CLOEXEC));
      // EAGAIN (the peer went away first) just leaves us listening.
    }
    if (conn_at >= 0 && fds[conn_at].revents != 0) {
      if (!Receive(conn.get(), *sink, dry)) conn.reset();
    }
  }
  conn.reset();
  if (sink != nullptr) {
    sink->Closed(
        absl::CancelledError(absl::StrCat(name, ": binding released")));
  }
}

}  // namespace devmem::sim_internal
