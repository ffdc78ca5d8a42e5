#include "client/rx_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/uapi.h"
#include "client/internal/rx_impl.h"
#include "client/internal/sim_data_path.h"
#include "pool/token_range.h"

namespace devmem {
namespace rx_internal {
namespace {

using client_internal::PollTimeoutMs;

// How long a token return waits for the sim's answer.
constexpr absl::Duration kDontneedTimeout = absl::Seconds(30);

// Frags whose dmabuf_id is not the binding's: the flow was steered to
// another binding's queue.
absl::Status CheckBinding(const std::vector<Frag>& frags, uint32_t binding) {
  for (const Frag& f : frags) {
    if (f.is_dmabuf() && binding != 0 && f.binding_id != binding) {
      return absl::FailedPreconditionError(absl::StrCat(
          "flow steering error: a frag landed in binding ", f.binding_id,
          ", this socket receives for binding ", binding));
    }
  }
  return absl::OkStatus();
}

std::vector<uint32_t> TokensOf(absl::Span<const Frag> frags) {
  std::vector<uint32_t> tokens;
  tokens.reserve(frags.size());
  for (const Frag& f : frags) {
    if (f.is_dmabuf()) tokens.push_back(f.token);
  }
  return tokens;
}

}  // namespace

// ---- KernelRx -----------------------------------------------------------

KernelRx::KernelRx(UniqueFd tcp, uint32_t binding,
                   RxSocket::KernelOptions options, RxSocket::KernelOps ops)
    : tcp_(std::move(tcp)),
      options_(options),
      ops_(std::move(ops)),
      iov_(options.iov_bytes),
      control_(options.control_bytes) {
  binding_id = binding;
}

void KernelRx::GiveBack(const std::vector<Frag>& frags) {
  std::vector<uint32_t> tokens = TokensOf(frags);
  stats.tokens_outstanding += tokens.size();
  (void)ReturnTokens(std::move(tokens));
}

absl::StatusOr<RxBatch> KernelRx::Receive(absl::Duration timeout) {
  RxBatch batch;
  const int ready = ops_.poll_in(tcp_.get(), PollTimeoutMs(timeout));
  if (ready < 0) {
    if (errno == EINTR) return batch;
    return ErrnoStatus("poll devmem socket");
  }
  if (ready == 0) return batch;

  ssize_t n;
  msghdr msg;
  for (;;) {
    iovec iov{iov_.data(), iov_.size()};
    msg = msghdr{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control_.data();
    msg.msg_controllen = control_.size();
    n = ops_.recvmsg(tcp_.get(), &msg, uapi::kMsgSockDevmem | MSG_DONTWAIT);
    if (n >= 0) break;
    const int err = errno;
    if (err == kEtoosmall) {
      // Nothing was delivered: the next cmsg did not fit. Grow and retry
      // (kernels since early 2025; 6.12.0 truncated silently instead).
      errno = 0;
      if (control_.size() >= options_.max_control_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "recvmsg(MSG_SOCK_DEVMEM): control buffer of ", control_.size(),
            " bytes is still too small (ETOOSMALL) at its maximum"));
      }
      control_.resize(
          std::min(control_.size() * 2, options_.max_control_bytes));
      ++stats.control_grows;
      continue;
    }
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return batch;
    return devmem::ErrnoToStatus(err, "recvmsg(MSG_SOCK_DEVMEM)");
  }
  if (n == 0) {
    batch.end_of_stream = true;
    return batch;
  }

  ParsedControl parsed;
  absl::Status s = ParseDevmemControl(
      absl::MakeConstSpan(control_.data(), msg.msg_controllen), &parsed);
  if (!s.ok()) return s;  // tokens untrusted: the caller closes the socket
  const uint64_t got = static_cast<uint64_t>(n);
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    GiveBack(parsed.frags);
    if (control_.size() < options_.max_control_bytes) {
      control_.resize(
          std::min(control_.size() * 2, options_.max_control_bytes));
      ++stats.control_grows;
    }
    return absl::DataLossError(absl::StrCat(
        "recvmsg(MSG_SOCK_DEVMEM): control data truncated (MSG_CTRUNC, a "
        "kernel without ETOOSMALL): ",
        got - parsed.dmabuf_bytes - parsed.linear_bytes,
        " bytes lost; control buffer grown to ", control_.size()));
  }
  if (parsed.frags.empty()) {
    if (options_.host_data_is_error) {
      return absl::FailedPreconditionError(absl::StrCat(
          "flow steering error: ", got,
          " bytes arrived in host memory without devmem cmsgs (the flow is "
          "not steered to binding ",
          binding_id, "'s queues)"));
    }
    Frag f;
    f.kind = Frag::Kind::kLinear;
    f.size = static_cast<uint32_t>(got);
    parsed.frags.push_back(f);
    parsed.linear_bytes = got;
  }
  if (parsed.dmabuf_bytes + parsed.linear_bytes != got ||
      parsed.linear_bytes > iov_.size()) {
    GiveBack(parsed.frags);
    return absl::DataLossError(absl::StrCat(
        "recvmsg(MSG_SOCK_DEVMEM) returned ", got, " bytes but its cmsgs name ",
        parsed.dmabuf_bytes, " dmabuf + ", parsed.linear_bytes, " linear"));
  }
  if (absl::Status b = CheckBinding(parsed.frags, binding_id); !b.ok()) {
    GiveBack(parsed.frags);
    return b;
  }
  batch.frags = std::move(parsed.frags);
  batch.linear = absl::MakeConstSpan(iov_.data(), parsed.linear_bytes);
  batch.bytes = got;
  return batch;
}

absl::Status KernelRx::ReturnTokens(std::vector<uint32_t> tokens) {
  const uint64_t asked = tokens.size();
  uint64_t freed = 0;
  for (const std::vector<TokenRange>& call :
       CoalesceTokens(std::move(tokens))) {
    const int r =
        ops_.dontneed(tcp_.get(), call.data(),
                      static_cast<socklen_t>(call.size() * sizeof(TokenRange)));
    if (r < 0) return ErrnoStatus("setsockopt(SO_DEVMEM_DONTNEED)");
    ++stats.return_calls;
    freed += static_cast<uint64_t>(r);
  }
  const uint64_t done = std::min(freed, asked);
  stats.tokens_returned += done;
  stats.tokens_outstanding -= std::min(stats.tokens_outstanding, asked);
  if (done < asked) {
    stats.tokens_rejected += asked - done;
    return absl::InvalidArgumentError(
        absl::StrCat("SO_DEVMEM_DONTNEED freed ", done, " of ", asked,
                     " tokens: the rest were not outstanding"));
  }
  return absl::OkStatus();
}

// ---- SimRx --------------------------------------------------------------

SimRx::SimRx(UniqueFd data_path, uint32_t binding)
    : dp_(std::move(data_path), binding) {
  binding_id = binding;
}

absl::StatusOr<RxBatch> SimRx::Deliver(std::vector<uapi::DmabufCmsg> recs) {
  RxBatch batch;
  batch.frags.reserve(recs.size());
  for (const uapi::DmabufCmsg& r : recs) {
    Frag f;
    f.kind = Frag::Kind::kDmabuf;
    f.offset = r.frag_offset;
    f.size = r.frag_size;
    f.token = r.frag_token;
    f.binding_id = r.dmabuf_id;
    batch.bytes += r.frag_size;
    batch.frags.push_back(f);
  }
  if (absl::Status b = CheckBinding(batch.frags, binding_id); !b.ok()) {
    stats.tokens_outstanding += batch.frags.size();
    (void)ReturnTokens(TokensOf(batch.frags));
    return b;
  }
  return batch;
}

absl::StatusOr<RxBatch> SimRx::FlowEnded(const absl::Status& why) {
  if (why.ok()) {
    RxBatch batch;
    batch.end_of_stream = true;
    return batch;
  }
  return WithContext(why, absl::StrCat("binding ", binding_id, " flow ended"));
}

absl::Status SimRx::Hold(const simdp::Packet& p) {
  Held h;
  switch (p.type) {
    case simdp::Type::kRxFrags:
      h.frags.resize(p.count);
      std::memcpy(h.frags.data(), p.units.data(), p.units.size());
      break;
    case simdp::Type::kClosed:
      h.is_close = true;
      h.closed = simdp::ToStatus(simdp::Fixed<simdp::StatusRecord>(p), p.units);
      break;
    case simdp::Type::kError:
      return simdp::ToStatus(simdp::Fixed<simdp::StatusRecord>(p), p.units);
    default:
      return absl::OkStatus();  // nothing an RX job needs
  }
  held_.push_back(std::move(h));
  return absl::OkStatus();
}

absl::StatusOr<RxBatch> SimRx::Receive(absl::Duration timeout) {
  const absl::Time deadline = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + timeout;
  for (;;) {
    if (!held_.empty()) {
      Held h = std::move(held_.front());
      held_.pop_front();
      if (h.is_close) return FlowEnded(h.closed);
      return Deliver(std::move(h.frags));
    }
    ASSIGN_OR_RETURN(
        std::optional<simdp::Packet> p,
        dp_.Read(deadline == absl::InfiniteFuture() ? absl::InfiniteDuration()
                                                    : deadline - absl::Now()));
    if (!p.has_value()) return RxBatch{};
    RETURN_IF_ERROR(Hold(*p));
  }
}

absl::Status SimRx::ReturnTokens(std::vector<uint32_t> tokens) {
  const uint64_t asked = tokens.size();
  uint64_t freed = 0;
  uint64_t rejected = 0;
  absl::Status first_error;
  for (const std::vector<TokenRange>& ranges :
       CoalesceTokens(std::move(tokens))) {
    // TokenRange and struct dmabuf_token share one layout.
    std::vector<uapi::DmabufToken> wire(ranges.size());
    std::memcpy(wire.data(), ranges.data(), ranges.size() * sizeof(wire[0]));
    RETURN_IF_ERROR(dp_.Send(simdp::Dontneed(wire)));
    ++stats.return_calls;
    for (;;) {
      ASSIGN_OR_RETURN(std::optional<simdp::Packet> p,
                       dp_.Read(kDontneedTimeout));
      if (!p.has_value()) {
        return absl::DeadlineExceededError(absl::StrCat(
            dp_.Context(), "the sim did not answer a token return in ",
            absl::FormatDuration(kDontneedTimeout)));
      }
      if (p->type != simdp::Type::kDontneedDone) {
        RETURN_IF_ERROR(Hold(*p));
        continue;
      }
      const simdp::DontneedDone d = simdp::Fixed<simdp::DontneedDone>(*p);
      freed += d.freed;
      rejected += d.rejected;
      if (first_error.ok()) first_error = simdp::ToStatus(d.status, "");
      break;
    }
  }
  stats.tokens_returned += std::min(freed, asked);
  stats.tokens_outstanding -= std::min(stats.tokens_outstanding, asked);
  if (rejected > 0 || freed < asked) {
    const uint64_t bad = std::max(rejected, asked - std::min(freed, asked));
    stats.tokens_rejected += bad;
    return absl::InvalidArgumentError(absl::StrCat(
        "ReturnTokens: ", bad, " of ", asked, " tokens were not outstanding"));
  }
  return first_error;
}

}  // namespace rx_internal

// ---- RxSocket -----------------------------------------------------------

RxKernelOps RxKernelOps::Real() {
  RxKernelOps ops;
  ops.recvmsg = [](int fd, msghdr* msg, int flags) {
    return ::recvmsg(fd, msg, flags);
  };
  ops.dontneed = [](int fd, const void* opt, socklen_t len) {
    return ::setsockopt(fd, SOL_SOCKET, uapi::kSoDevmemDontneed, opt, len);
  };
  ops.poll_in = [](int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms);
  };
  return ops;
}

absl::StatusOr<RxSocket> RxSocket::ForKernelSocket(UniqueFd tcp,
                                                   uint32_t binding_id,
                                                   KernelOptions options,
                                                   KernelOps ops) {
  if (!tcp.ok()) {
    return absl::InvalidArgumentError("RxSocket: no TCP socket given");
  }
  if (options.iov_bytes == 0 || options.control_bytes < CMSG_SPACE(24) ||
      options.max_control_bytes < options.control_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RxSocket: bad buffer sizes (iov ", options.iov_bytes, ", control ",
        options.control_bytes, "..", options.max_control_bytes, ")"));
  }
  return RxSocket(std::make_unique<rx_internal::KernelRx>(
      std::move(tcp), binding_id, options, std::move(ops)));
}

absl::StatusOr<RxSocket> RxSocket::ForSimDataPath(UniqueFd data_path,
                                                  uint32_t binding_id) {
  if (!data_path.ok()) {
    return absl::InvalidArgumentError("RxSocket: no data-path fd given");
  }
  return RxSocket(
      std::make_unique<rx_internal::SimRx>(std::move(data_path), binding_id));
}

RxSocket::RxSocket(std::unique_ptr<rx_internal::RxImpl> impl)
    : impl_(std::move(impl)) {}
RxSocket::RxSocket(RxSocket&&) noexcept = default;
RxSocket& RxSocket::operator=(RxSocket&&) noexcept = default;
RxSocket::~RxSocket() = default;

absl::StatusOr<RxBatch> RxSocket::Receive(absl::Duration timeout) {
  if (impl_ == nullptr) {
    return absl::FailedPreconditionError("RxSocket: moved from");
  }
  absl::StatusOr<RxBatch> b = impl_->Receive(timeout);
  if (b.ok() && !b->frags.empty()) {
    RxStats& s = impl_->stats;
    s.bytes += b->bytes;
    s.frags += b->frags.size();
    ++s.batches;
    for (const Frag& f : b->frags) {
      if (f.is_dmabuf()) ++s.tokens_outstanding;
    }
  }
  return b;
}

absl::Status RxSocket::Return(absl::Span<const Frag> frags) {
  if (impl_ == nullptr) {
    return absl::FailedPreconditionError("RxSocket: moved from");
  }
  std::vector<uint32_t> tokens = rx_internal::TokensOf(frags);
  if (tokens.empty()) return absl::OkStatus();
  return impl_->ReturnTokens(std::move(tokens));
}

RxStats RxSocket::stats() const {
  return impl_ == nullptr ? RxStats{} : impl_->stats;
}

uint32_t RxSocket::binding_id() const {
  return impl_ == nullptr ? 0 : impl_->binding_id;
}

}  // namespace devmem
