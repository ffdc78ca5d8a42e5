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
#include "base/sim_datapath.h"
#include "base/uapi.h"
#include "pool/token_range.h"

namespace devmem::sim_internal {
namespace {

// One receive call fills at most this many bytes of chunks (and at most 64
// chunks): large enough to amortise the syscall, small enough that a sender
// of small messages does not make us allocate and free many chunks.
constexpr uint32_t kReadBytes = 256 << 10;
constexpr uint32_t kMaxChunksPerRead = 64;
// Receive calls per wake-up before the thread looks at its eventfd and the
// job again; their frags go out as one packet.
constexpr int kReadsPerWake = 16;
static_assert(kReadsPerWake * kMaxChunksPerRead <= simdp::kMaxFragsPerPacket);
// Packets from the job served per wake-up.
constexpr int kJobPacketsPerWake = 64;

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
  scratch_frags_.reserve(kReadsPerWake * max_chunks_per_read_);
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
  UniqueFd job_end;
  absl::StatusOr<DpSocket> dp = DpSocket::Create(name, &job_end);
  if (!dp.ok()) return dp.status();
  path->dp_ = *std::move(dp);
  {
    MutexLock lock(path->mu_);
    path->job_end_ = std::move(job_end);
  }
  RxPath* raw = path.get();
  path->thread_ = std::thread([raw] { raw->Run(); });
  return path;
}

RxPath::~RxPath() { Stop(); }

void RxPath::Stop() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  dp_.Close();  // the job reads EOF
  listener_.reset();
}

void RxPath::Wake() {
  const uint64_t one = 1;
  // EAGAIN only when the counter is saturated: a wake-up is pending anyway.
  (void)!::write(event_.get(), &one, sizeof(one));
}

UniqueFd RxPath::TakeJobEnd() {
  MutexLock lock(mu_);
  return std::move(job_end_);
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

RxPath::Received RxPath::Receive(int conn) {
  Region& region = *options_.region;
  std::vector<Chunk>& chunks = scratch_chunks_;
  std::vector<iovec>& iov = scratch_iov_;
  std::vector<uapi::DmabufCmsg>& frags = scratch_frags_;
  frags.clear();
  Received result = Received::kMore;
  absl::Status ended;
  for (int round = 0; round < kReadsPerWake; ++round) {
    size_t n = region.AllocBulk(absl::MakeSpan(chunks));
    if (n == 0) {
      absl::StatusOr<Chunk> one = region.Alloc();  // counts alloc_failed
      if (!one.ok()) {
        alloc_fail_.fetch_add(1, std::memory_order_relaxed);
        result = Received::kDry;
        break;
      }
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
      if (got < 0 && (err == EAGAIN || err == EINTR)) break;
      result = Received::kEnded;
      if (got < 0) {
        ended = ErrnoToStatus(err, absl::StrCat(options_.name, ": recv"));
      }
      break;
    }
    const uint64_t bytes = static_cast<uint64_t>(got);
    const size_t used =
        static_cast<size_t>((bytes + chunk_size_ - 1) >> chunk_shift_);
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
    if (used < n) break;  // the socket had no more for now
  }
  if (!frags.empty()) dp_.Send(simdp::RxFrags(frags));
  if (result == Received::kEnded) {
    dp_.Send(simdp::StatusPacket(simdp::Type::kClosed, ended));
  }
  return result;
}

bool RxPath::ServeJob() {
  bool returned = false;
  for (int i = 0; i < kJobPacketsPerWake && dp_.open() && dp_.events() & POLLIN;
       ++i) {
    bool truncated = false;
    const DpSocket::Read r =
        dp_.Recv(&scratch_in_, simdp::kMaxPacketBytes, &truncated);
    if (r != DpSocket::Read::kPacket) break;
    if (truncated) {
      dp_.Send(simdp::StatusPacket(
          simdp::Type::kError,
          absl::InvalidArgumentError(absl::StrCat(
              options_.name, ": data-path packet longer than ",
              simdp::kMaxPacketBytes, " bytes; nothing changed"))));
      continue;
    }
    absl::StatusOr<simdp::Packet> p = simdp::Parse(scratch_in_);
    if (p.ok() && p->type != simdp::Type::kDontneed) {
      p = absl::InvalidArgumentError(
          absl::StrCat(simdp::TypeName(static_cast<uint16_t>(p->type)),
                       " is not taken by an RX binding's data path"));
    }
    if (!p.ok()) {
      dp_.Send(simdp::StatusPacket(
          simdp::Type::kError,
          WithContext(p.status(),
                      absl::StrCat(options_.name, ": nothing changed"))));
      continue;
    }
    // struct dmabuf_token and TokenRange share one layout.
    std::vector<TokenRange> ranges(p->count);
    std::memcpy(ranges.data(), p->units.data(), p->units.size());
    const TokenRelease rel = options_.region->ReleaseTokens(borrower(), ranges);
    returned |= rel.freed > 0;
    dp_.Send(simdp::DontneedDonePacket(rel.freed, rel.rejected, rel.status));
  }
  return returned;
}

void RxPath::JobGone() {
  dp_.Close();
  const uint64_t tokens = options_.region->ReleaseAllTokens(borrower());
  listener_.reset();  // no socket takes the flow any more: refused
  DEVMEM_LOG(kInfo, "sim_data_path_closed")
      .Kv("binding", options_.name)
      .Kv("tokens_released", tokens);
}

void RxPath::Run() {
  UniqueFd conn;
  bool dry = false;
  bool link_up = link_up_.load();
  const std::string& name = options_.name;
  while (true) {
    pollfd fds[4];
    nfds_t nfds = 0;
    fds[nfds++] = pollfd{event_.get(), POLLIN, 0};
    int dp_at = -1;
    int listen_at = -1;
    int conn_at = -1;
    if (dp_.open()) {
      dp_at = static_cast<int>(nfds);
      fds[nfds++] = pollfd{dp_.fd(), dp_.events(), 0};
      if (link_up && !conn.ok()) {
        listen_at = static_cast<int>(nfds);
        fds[nfds++] = pollfd{listener_.get(), POLLIN, 0};
      }
      // Frags wait in the socket (TCP backpressure) while the pool is dry
      // or the job has not read what was sent.
      if (link_up && conn.ok() && !dry && !dp_.backlogged()) {
        conn_at = static_cast<int>(nfds);
        fds[nfds++] = pollfd{conn.get(), POLLIN, 0};
      }
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
      link_up = link_up_.load();
      if (!link_up && conn.ok()) {
        conn.reset();
        dp_.Send(simdp::StatusPacket(
            simdp::Type::kClosed,
            ErrnoToStatus(ENETDOWN, absl::StrCat(name, ": link down"))));
      }
      continue;  // the poll set may have changed
    }
    if (dp_at >= 0 && fds[dp_at].revents != 0) {
      const short rev = fds[dp_at].revents;
      if (rev & POLLOUT) dp_.Flush();
      if ((rev & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) && ServeJob()) {
        dry = false;  // tokens came back: try again
      }
      if (!dp_.open()) {
        conn.reset();
        JobGone();
        continue;
      }
    }
    if (listen_at >= 0 && fds[listen_at].revents != 0) {
      conn = UniqueFd(::accept4(listener_.get(), nullptr, nullptr,
                                SOCK_NONBLOCK | SOCK_CLOEXEC));
      // EAGAIN (the peer went away first) just leaves us listening.
    }
    if (conn_at >= 0 && fds[conn_at].revents != 0) {
      switch (Receive(conn.get())) {
        case Received::kMore:
          break;
        case Received::kDry:
          dry = true;
          break;
        case Received::kEnded:
          conn.reset();
          break;
      }
      if (!dp_.open()) {
        conn.reset();
        JobGone();
      }
    }
  }
}

}  // namespace devmem::sim_internal
