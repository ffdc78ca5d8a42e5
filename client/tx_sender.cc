#include "client/tx_sender.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/uapi.h"
#include "client/devmem_socket.h"
#include "client/internal/sim_data_path.h"

namespace devmem {

TxSender::KernelOps TxSender::KernelOps::Real() {
  KernelOps ops;
  ops.sendmsg = [](int fd, const msghdr* msg, int flags) {
    return ::sendmsg(fd, msg, flags);
  };
  ops.recvmsg = [](int fd, msghdr* msg, int flags) {
    return ::recvmsg(fd, msg, flags);
  };
  ops.setsockopt = [](int fd, int level, int name, const void* v,
                      socklen_t len) {
    return ::setsockopt(fd, level, name, v, len);
  };
  ops.poll_err = [](int fd, int timeout_ms) {
    pollfd p{fd, 0, 0};  // POLLERR is always reported
    const int r = ::poll(&p, 1, timeout_ms);
    if (r > 0 && (p.revents & POLLERR) == 0) return 0;
    return r;
  };
  return ops;
}

TxSender::TxSender(uint32_t binding_id, TxArena arena)
    : binding_id_(binding_id),
      arena_(std::make_unique<TxArena>(std::move(arena))) {}
TxSender::TxSender(TxSender&&) noexcept = default;
TxSender& TxSender::operator=(TxSender&&) noexcept = default;
TxSender::~TxSender() = default;

absl::StatusOr<TxSender> TxSender::ForKernelSocket(UniqueFd tcp,
                                                   uint32_t binding_id,
                                                   uint64_t size_bytes,
                                                   uint32_t chunk_size,
                                                   KernelOps ops) {
  if (!tcp.ok()) {
    return absl::InvalidArgumentError("TxSender: no TCP socket given");
  }
  ASSIGN_OR_RETURN(TxArena arena,
                   TxArena::Create(size_bytes, chunk_size ? chunk_size : 4096));
  const int one = 1;
  if (ops.setsockopt(tcp.get(), SOL_SOCKET, uapi::kSoZerocopy, &one,
                     sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt(SO_ZEROCOPY)");
  }
  TxSender s(binding_id, std::move(arena));
  s.tcp_ = std::move(tcp);
  s.ops_ = std::move(ops);
  return s;
}

absl::StatusOr<TxSender> TxSender::ForSimDataPath(UniqueFd data_path,
                                                  uint32_t binding_id,
                                                  std::string_view peer,
                                                  uint64_t size_bytes,
                                                  uint32_t chunk_size) {
  if (!data_path.ok()) {
    return absl::InvalidArgumentError("TxSender: no data-path fd given");
  }
  ASSIGN_OR_RETURN(TxArena arena,
                   TxArena::Create(size_bytes, chunk_size ? chunk_size : 4096));
  TxSender s(binding_id, std::move(arena));
  s.dp_ = std::make_unique<client_internal::SimDataPath>(std::move(data_path),
                                                         binding_id);
  RETURN_IF_ERROR(s.dp_->Send(simdp::TxConnect(peer)));
  RETURN_IF_ERROR(s.AwaitAccepted().status());
  return s;
}

absl::Status TxSender::ApplySim(const simdp::Packet& p, uint32_t* completed) {
  switch (p.type) {
    case simdp::Type::kTxCompletion: {
      const simdp::TxCompletion c = simdp::Fixed<simdp::TxCompletion>(p);
      *completed += CompleteTransport(c.lo, c.hi);
      return absl::OkStatus();
    }
    case simdp::Type::kClosed:
    case simdp::Type::kError:
      return WithContext(
          simdp::ToStatus(simdp::Fixed<simdp::StatusRecord>(p), p.units),
          absl::StrCat("TX binding ", binding_id_));
    default:
      return absl::OkStatus();
  }
}

absl::StatusOr<uint32_t> TxSender::AwaitAccepted() {
  constexpr absl::Duration kTimeout = absl::Seconds(30);
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<simdp::Packet> p, dp_->Read(kTimeout));
    if (!p.has_value()) {
      return absl::DeadlineExceededError(
          absl::StrCat(dp_->Context(), "the sim did not answer in ",
                       absl::FormatDuration(kTimeout)));
    }
    if (p->type == simdp::Type::kTxAccepted) {
      const simdp::TxAccepted a = simdp::Fixed<simdp::TxAccepted>(*p);
      RETURN_IF_ERROR(simdp::ToStatus(a.status, p->units));
      return a.send_id;
    }
    uint32_t completed = 0;
    RETURN_IF_ERROR(ApplySim(*p, &completed));
  }
}

absl::StatusOr<TxRange> TxSender::Allocate(uint64_t bytes) {
  return arena_->Allocate(bytes);
}

absl::StatusOr<uint32_t> TxSender::SendOnce(uint64_t offset, uint64_t length) {
  ++stats_.transport_calls;
  if (dp_ != nullptr) {
    RETURN_IF_ERROR(dp_->Send(simdp::TxSendPacket(offset, length)));
    ASSIGN_OR_RETURN(uint32_t id, AwaitAccepted());
    next_zc_id_ = id;  // the sim's id for this send
    return static_cast<uint32_t>(length);
  }
  // iov_base is an offset into the dmabuf, not an address (devmem TX).
  iovec iov{reinterpret_cast<void*>(static_cast<uintptr_t>(offset)),
            static_cast<size_t>(length)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = uapi::kScmDevmemDmabuf;
  c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
  std::memcpy(CMSG_DATA(c), &binding_id_, sizeof(binding_id_));
  for (;;) {
    const ssize_t n = ops_.sendmsg(tcp_.get(), &msg, uapi::kMsgZerocopy);
    if (n >= 0) return static_cast<uint32_t>(n);
    if (errno == EINTR) continue;
    return ErrnoStatus(absl::StrCat("sendmsg(MSG_ZEROCOPY, binding ",
                                    binding_id_, ", offset ", offset, ")"));
  }
}

absl::Status TxSender::Send(const TxRange& range) {
  uint64_t done = 0;
  uint32_t transports = 0;
  while (done < range.length) {
    const uint64_t len =
        std::min<uint64_t>(range.length - done, uint64_t{1} << 30);
    absl::StatusOr<uint32_t> sent = SendOnce(range.offset + done, len);
    if (!sent.ok()) {
      if (transports == 0) {
        (void)arena_->Complete(range.id, range.id);  // never left us
      }
      return sent.status();
    }
    // Sim: the send id is the sim's counter, which counts exactly our
    // kTxSend packets on this binding, as the kernel's zerocopy id counts
    // sendmsg calls on the socket.
    transport_[next_zc_id_++] = range.id;
    ++transports;
    done += *sent;
  }
  pending_[range.id] = transports;
  ++stats_.sends;
  stats_.bytes += range.length;
  return absl::OkStatus();
}

uint32_t TxSender::CompleteTransport(uint32_t lo, uint32_t hi) {
  uint32_t completed = 0;
  auto complete_one = [&](uint32_t tid) {
    auto t = transport_.find(tid);
    if (t == transport_.end()) return;
    const uint32_t send = t->second;
    transport_.erase(t);
    auto p = pending_.find(send);
    if (p != pending_.end() && --p->second == 0) {
      pending_.erase(p);
      if (arena_->Complete(send, send).ok()) ++completed;
    }
  };
  const uint64_t span = uint64_t{static_cast<uint32_t>(hi - lo)} + 1;
  if (span <= transport_.size()) {
    for (uint64_t i = 0; i < span; ++i) {
      complete_one(static_cast<uint32_t>(lo + i));
    }
  } else {
    std::vector<uint32_t> ids;
    for (const auto& [tid, send] : transport_) {
      if (static_cast<uint32_t>(tid - lo) < span) ids.push_back(tid);
    }
    for (uint32_t tid : ids) complete_one(tid);
  }
  stats_.completed += completed;
  return completed;
}

absl::StatusOr<uint32_t> TxSender::PollCompletions(absl::Duration timeout) {
  uint32_t completed = 0;
  if (dp_ != nullptr) {
    absl::Duration wait = timeout;
    for (;;) {
      ASSIGN_OR_RETURN(std::optional<simdp::Packet> p, dp_->Read(wait));
      if (!p.has_value()) break;
      RETURN_IF_ERROR(ApplySim(*p, &completed));
      wait = absl::ZeroDuration();  // drain what is queued, then return
    }
    return completed;
  }
  int ms = timeout == absl::InfiniteDuration()
               ? -1
               : static_cast<int>(absl::ToInt64Milliseconds(timeout));
  for (;;) {
    const int r = ops_.poll_err(tcp_.get(), ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll error queue");
    }
    if (r == 0) break;
    alignas(cmsghdr) char control[256];
    msghdr msg{};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ops_.recvmsg(tcp_.get(), &msg, MSG_ERRQUEUE);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return ErrnoStatus("recvmsg(MSG_ERRQUEUE)");
    }
    std::vector<ZerocopyRange> ranges;
    RETURN_IF_ERROR(ParseZerocopyControl(
        absl::MakeConstSpan(reinterpret_cast<const std::byte*>(control),
                            msg.msg_controllen),
        &ranges));
    for (const ZerocopyRange& z : ranges) {
      completed += CompleteTransport(z.lo, z.hi);
    }
    ms = 0;
  }
  return completed;
}

absl::Status TxSender::Flush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pending_.empty()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "TxSender: ", pending_.size(), " sends still in flight"));
    }
    RETURN_IF_ERROR(
        PollCompletions(std::min(left, absl::Milliseconds(100))).status());
  }
  return absl::OkStatus();
}

TxStats TxSender::stats() const {
  TxStats s = stats_;
  s.in_flight = pending_.size();
  return s;
}

}  // namespace devmem
