// Kernel-mode socket code without a devmem NIC: cmsg parsing on synthetic
// control buffers (well-formed, truncated, garbage), SO_DEVMEM_DONTNEED
// batching, RxSocket's kernel mode against a fake kernel (ETOOSMALL,
// MSG_CTRUNC, flow steering errors, EOF), zerocopy completions, TxSender's
// kernel mode, and the demo's verifiable pattern.
#include "client/devmem_socket.h"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

#include "base/errno_status.h"
#include "base/uapi.h"
#include "client/demo/pattern.h"
#include "client/rx_socket.h"
#include "client/tx_sender.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/seed.h"

namespace devmem {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

uapi::DmabufCmsg Rec(uint64_t off, uint32_t size, uint32_t token,
                     uint32_t id = 7) {
  return uapi::DmabufCmsg{off, size, token, id, 0};
}

absl::Span<const std::byte> Span(const std::vector<std::byte>& v) {
  return absl::MakeConstSpan(v);
}

// ---- ParseDevmemControl ----------------------------------------------------

TEST(ParseDevmemControl, DmabufAndLinearInOrder) {
  std::vector<std::byte> buf;
  AppendDevmemCmsg(uapi::kScmDevmemLinear, Rec(0, 66, 0, 0), &buf);
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(8192, 4096, 5), &buf);
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(4096, 100, 6), &buf);
  AppendDevmemCmsg(uapi::kScmDevmemLinear, Rec(0, 10, 0, 0), &buf);
  ASSERT_EQ(buf.size(), 4 * CMSG_SPACE(24));
  ParsedControl p;
  ASSERT_TRUE(ParseDevmemControl(Span(buf), &p).ok());
  ASSERT_THAT(p.frags, SizeIs(4));
  EXPECT_EQ(p.frags[0].kind, Frag::Kind::kLinear);
  EXPECT_EQ(p.frags[0].offset, 0u);
  EXPECT_EQ(p.frags[0].size, 66u);
  EXPECT_TRUE(p.frags[1].is_dmabuf());
  EXPECT_EQ(p.frags[1].offset, 8192u);
  EXPECT_EQ(p.frags[1].token, 5u);
  EXPECT_EQ(p.frags[1].binding_id, 7u);
  EXPECT_EQ(p.frags[2].size, 100u);
  EXPECT_EQ(p.frags[3].kind, Frag::Kind::kLinear);
  EXPECT_EQ(p.frags[3].offset, 66u);  // linear offsets are cumulative
  EXPECT_EQ(p.dmabuf_bytes, 4196u);
  EXPECT_EQ(p.linear_bytes, 76u);
}

TEST(ParseDevmemControl, EmptyBufferIsNothing) {
  ParsedControl p;
  EXPECT_TRUE(ParseDevmemControl({}, &p).ok());
  EXPECT_TRUE(p.frags.empty());
}

TEST(ParseDevmemControl, ForeignCmsgsAreSkipped) {
  std::vector<std::byte> buf(CMSG_SPACE(sizeof(int)));
  cmsghdr h{};
  h.cmsg_len = CMSG_LEN(sizeof(int));
  h.cmsg_level = SOL_SOCKET;
  h.cmsg_type = SCM_RIGHTS;
  std::memcpy(buf.data(), &h, sizeof(h));
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(0, 4096, 1), &buf);
  ParsedControl p;
  ASSERT_TRUE(ParseDevmemControl(Span(buf), &p).ok());
  EXPECT_EQ(p.foreign_cmsgs, 1u);
  ASSERT_THAT(p.frags, SizeIs(1));
  EXPECT_EQ(p.frags[0].token, 1u);
}

TEST(ParseDevmemControl, CmsgLenPastTheEndIsDataLoss) {
  std::vector<std::byte> buf;
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(0, 4096, 1), &buf);
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(4096, 4096, 2), &buf);
  buf.resize(buf.size() - 8);  // the second record is cut short
  ParsedControl p;
  absl::Status s = ParseDevmemControl(Span(buf), &p);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_TRUE(p.frags.empty()) << "nothing is appended on error";
}

TEST(ParseDevmemControl, CmsgLenSmallerThanHeaderIsDataLoss) {
  std::vector<std::byte> buf;
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(0, 4096, 1), &buf);
  cmsghdr h;
  std::memcpy(&h, buf.data(), sizeof(h));
  h.cmsg_len = 3;
  std::memcpy(buf.data(), &h, sizeof(h));
  ParsedControl p;
  EXPECT_EQ(ParseDevmemControl(Span(buf), &p).code(),
            absl::StatusCode::kDataLoss);
}

TEST(ParseDevmemControl, DevmemPayloadTooShortIsDataLoss) {
  std::vector<std::byte> buf(CMSG_SPACE(16));
  cmsghdr h{};
  h.cmsg_len = CMSG_LEN(16);  // a dmabuf_cmsg needs 24
  h.cmsg_level = SOL_SOCKET;
  h.cmsg_type = uapi::kScmDevmemDmabuf;
  std::memcpy(buf.data(), &h, sizeof(h));
  ParsedControl p;
  EXPECT_EQ(ParseDevmemControl(Span(buf), &p).code(),
            absl::StatusCode::kDataLoss);
}

TEST(ParseDevmemControl, ZeroSizeDmabufFragIsDataLoss) {
  std::vector<std::byte> buf;
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(0, 0, 1), &buf);
  ParsedControl p;
  EXPECT_EQ(ParseDevmemControl(Span(buf), &p).code(),
            absl::StatusCode::kDataLoss);
}

TEST(ParseDevmemControl, TrailingBytesShorterThanAHeaderAreIgnored) {
  std::vector<std::byte> buf;
  AppendDevmemCmsg(uapi::kScmDevmemDmabuf, Rec(0, 4096, 1), &buf);
  buf.resize(buf.size() + 8, std::byte{0xff});
  ParsedControl p;
  ASSERT_TRUE(ParseDevmemControl(Span(buf), &p).ok());
  EXPECT_THAT(p.frags, SizeIs(1));
}

TEST(ParseDevmemControl, RandomGarbageNeverCrashesOrOverreads) {
  // Run under ASan: any read past the buffer fails the test.
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::byte> buf;
    const int n = static_cast<int>(rng() % 4);
    for (int j = 0; j < n; ++j) {
      AppendDevmemCmsg(
          rng() % 2 ? uapi::kScmDevmemDmabuf : uapi::kScmDevmemLinear,
          Rec(rng() % (1 << 20), 1 + rng() % 4096,
              static_cast<uint32_t>(rng())),
          &buf);
    }
    // Corrupt some bytes and cut at a random length.
    for (int k = 0; k < 3 && !buf.empty(); ++k) {
      buf[rng() % buf.size()] = static_cast<std::byte>(rng());
    }
    if (!buf.empty()) buf.resize(rng() % (buf.size() + 1));
    std::vector<std::byte> exact(buf);  // heap block of exactly this size
    ParsedControl p;
    (void)ParseDevmemControl(Span(exact), &p);
  }
}

// ---- RxSocket kernel mode against a fake kernel ----------------------------

// One scripted recvmsg answer.
struct Answer {
  int err = 0;               // errno to fail with, or 0
  size_t needs_control = 0;  // ETOOSMALL while the buffer is smaller
  std::vector<std::byte> control;
  std::vector<std::byte> linear;  // copied to the iov
  ssize_t bytes = 0;              // return value
  bool ctrunc = false;
};

struct FakeKernel {
  std::deque<Answer> answers;
  std::vector<std::vector<uapi::DmabufToken>> dontneed_calls;
  std::vector<size_t> control_sizes_seen;
  bool unknown_tokens = false;

  RxSocket::KernelOps Ops() {
    RxSocket::KernelOps ops;
    ops.poll_in = [this](int, int) { return answers.empty() ? 0 : 1; };
    ops.recvmsg = [this](int, msghdr* msg, int flags) -> ssize_t {
      EXPECT_NE(flags & uapi::kMsgSockDevmem, 0);
      control_sizes_seen.push_back(msg->msg_controllen);
      Answer& a = answers.front();
      // Like the kernel: a control buffer too small for the next cmsg is
      // ETOOSMALL when nothing was delivered yet.
      if (a.needs_control > msg->msg_controllen ||
          a.control.size() > msg->msg_controllen) {
        errno = kEtoosmall;
        return -1;
      }
      Answer ans = std::move(a);
      answers.pop_front();
      if (ans.err != 0) {
        errno = ans.err;
        return -1;
      }
      if (!ans.control.empty()) {
        std::memcpy(msg->msg_control, ans.control.data(), ans.control.size());
      }
      msg->msg_controllen = ans.control.size();
      if (!ans.linear.empty()) {
        std::memcpy(msg->msg_iov[0].iov_base, ans.linear.data(),
                    ans.linear.size());
      }
      msg->msg_flags = ans.ctrunc ? MSG_CTRUNC : 0;
      return ans.bytes;
    };
    ops.dontneed = [this](int, const void* opt, socklen_t len) {
      EXPECT_EQ(len % sizeof(uapi::DmabufToken), 0u);
      EXPECT_LE(len, 128 * sizeof(uapi::DmabufToken));
      std::vector<uapi::DmabufToken> call(len / sizeof(uapi::DmabufToken));
      std::memcpy(call.data(), opt, len);
      dontneed_calls.push_back(call);
      int n = 0;
      for (const auto& r : call) n += static_cast<int>(r.token_count);
      return unknown_tokens ? n / 2 : n;
    };
    return ops;
  }
};

// A real fd for the socket (never read: the fake answers).
UniqueFd SomeFd() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ::close(sv[1]);
  return UniqueFd(sv[0]);
}

Answer DmabufAnswer(std::vector<uapi::DmabufCmsg> recs) {
  Answer a;
  for (const auto& r : recs) {
    AppendDevmemCmsg(uapi::kScmDevmemDmabuf, r, &a.control);
    a.bytes += r.frag_size;
  }
  return a;
}

TEST(KernelRxSocket, ReceivesFragsAndReturnsCoalescedTokens) {
  FakeKernel k;
  Answer a =
      DmabufAnswer({Rec(0, 4096, 1), Rec(4096, 4096, 2), Rec(65536, 1000, 9)});
  AppendDevmemCmsg(uapi::kScmDevmemLinear, Rec(0, 5, 0, 0), &a.control);
  a.linear = {std::byte{'h'}, std::byte{'e'}, std::byte{'l'}, std::byte{'l'},
              std::byte{'o'}};
  a.bytes += 5;
  k.answers.push_back(a);
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(rx.ok()) << rx.status();
  auto b = rx->Receive(absl::Seconds(1));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_THAT(b->frags, SizeIs(4));
  EXPECT_EQ(b->bytes, 4096u + 4096 + 1000 + 5);
  ASSERT_EQ(b->linear.size(), 5u);
  EXPECT_EQ(b->linear[0], std::byte{'h'});
  EXPECT_EQ(rx->stats().tokens_outstanding, 3u);
  ASSERT_TRUE(rx->Return(b->frags).ok());
  ASSERT_THAT(k.dontneed_calls, SizeIs(1));
  ASSERT_THAT(k.dontneed_calls[0], SizeIs(2));
  EXPECT_EQ(k.dontneed_calls[0][0].token_start, 1u);
  EXPECT_EQ(k.dontneed_calls[0][0].token_count, 2u);
  EXPECT_EQ(k.dontneed_calls[0][1].token_start, 9u);
  EXPECT_EQ(rx->stats().tokens_outstanding, 0u);
  EXPECT_EQ(rx->stats().tokens_returned, 3u);
}

TEST(KernelRxSocket, TimeoutIsAnEmptyBatch) {
  FakeKernel k;
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(rx.ok());
  auto b = rx->Receive(absl::Milliseconds(1));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->empty());
}

TEST(KernelRxSocket, EtoosmallGrowsTheControlBufferAndRetries) {
  FakeKernel k;
  std::vector<uapi::DmabufCmsg> recs;
  for (uint32_t i = 0; i < 100; ++i) recs.push_back(Rec(i * 4096, 4096, i + 1));
  Answer a = DmabufAnswer(recs);
  a.needs_control = a.control.size();  // 100 * 40 = 4000 bytes
  k.answers.push_back(a);
  RxSocket::KernelOptions o;
  o.control_bytes = 1024;
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, o, k.Ops());
  ASSERT_TRUE(rx.ok());
  auto b = rx->Receive(absl::Seconds(1));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(b->frags, SizeIs(100));
  EXPECT_THAT(k.control_sizes_seen, ElementsAre(1024, 2048, 4096));
  EXPECT_EQ(rx->stats().control_grows, 2u);
  EXPECT_EQ(errno, 0) << "the ETOOSMALL errno is cleared";
}

TEST(KernelRxSocket, EtoosmallAtTheMaximumIsResourceExhausted) {
  FakeKernel k;
  Answer a = DmabufAnswer({Rec(0, 4096, 1)});
  a.needs_control = 1 << 20;
  k.answers.push_back(a);
  RxSocket::KernelOptions o;
  o.control_bytes = 1024;
  o.max_control_bytes = 4096;
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, o, k.Ops());
  ASSERT_TRUE(rx.ok());
  EXPECT_EQ(rx->Receive(absl::Seconds(1)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(KernelRxSocket, CtruncIsDataLossAndGivesTokensBack) {
  FakeKernel k;
  Answer a = DmabufAnswer({Rec(0, 4096, 1), Rec(4096, 4096, 2)});
  a.bytes += 4096;  // a third frag whose cmsg did not fit
  a.ctrunc = true;
  k.answers.push_back(a);
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(rx.ok());
  EXPECT_EQ(rx->Receive(absl::Seconds(1)).status().code(),
            absl::StatusCode::kDataLoss);
  ASSERT_THAT(k.dontneed_calls, SizeIs(1));
  EXPECT_EQ(k.dontneed_calls[0][0].token_count, 2u);
  EXPECT_EQ(rx->stats().tokens_outstanding, 0u);
}

TEST(KernelRxSocket, FragOfAnotherBindingIsAFlowSteeringError) {
  FakeKernel k;
  k.answers.push_back(DmabufAnswer({Rec(0, 4096, 1, 7), Rec(0, 4096, 2, 8)}));
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(rx.ok());
  absl::Status s = rx->Receive(absl::Seconds(1)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("flow steering"));
  EXPECT_THAT(k.dontneed_calls, SizeIs(1)) << "the tokens went back";
}

TEST(KernelRxSocket, HostDataWithoutCmsgs) {
  FakeKernel k;
  Answer a;
  a.linear = std::vector<std::byte>(10, std::byte{1});
  a.bytes = 10;
  k.answers.push_back(a);
  k.answers.push_back(a);
  auto strict = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(strict.ok());
  EXPECT_EQ(strict->Receive(absl::Seconds(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  RxSocket::KernelOptions o;
  o.host_data_is_error = false;
  auto lenient = RxSocket::ForKernelSocket(SomeFd(), 7, o, k.Ops());
  ASSERT_TRUE(lenient.ok());
  auto b = lenient->Receive(absl::Seconds(1));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_THAT(b->frags, SizeIs(1));
  EXPECT_EQ(b->frags[0].kind, Frag::Kind::kLinear);
  EXPECT_EQ(b->linear.size(), 10u);
}

TEST(KernelRxSocket, ByteCountMismatchIsDataLoss) {
  FakeKernel k;
  Answer a = DmabufAnswer({Rec(0, 4096, 1)});
  a.bytes = 5000;
  k.answers.push_back(a);
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(rx.ok());
  EXPECT_EQ(rx->Receive(absl::Seconds(1)).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(KernelRxSocket, EndOfStreamAndErrno) {
  FakeKernel k;
  Answer eof;
  k.answers.push_back(eof);
  Answer reset;
  reset.err = ECONNRESET;
  k.answers.push_back(reset);
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(rx.ok());
  auto b = rx->Receive(absl::Seconds(1));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->end_of_stream);
  absl::Status s = rx->Receive(absl::Seconds(1)).status();
  EXPECT_EQ(StatusErrno(s), ECONNRESET) << s;
}

TEST(KernelRxSocket, ManyTokensAreReturnedInKernelSizedCalls) {
  FakeKernel k;
  std::vector<uapi::DmabufCmsg> recs;
  // 3000 frags, every other token: 1500 ranges -> 12 calls of <= 128.
  for (uint32_t i = 0; i < 3000; ++i) recs.push_back(Rec(0, 4096, 2 * i + 1));
  k.answers.push_back(DmabufAnswer(recs));
  RxSocket::KernelOptions o;
  o.iov_bytes = 16 << 20;
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, o, k.Ops());
  ASSERT_TRUE(rx.ok());
  auto b = rx->Receive(absl::Seconds(1));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(rx->Return(b->frags).ok());
  EXPECT_THAT(k.dontneed_calls, SizeIs(24));  // 3000 / 128, rounded up
  EXPECT_EQ(rx->stats().tokens_outstanding, 0u);
}

TEST(KernelRxSocket, TokensTheKernelDidNotKnowAreReported) {
  FakeKernel k;
  k.unknown_tokens = true;
  k.answers.push_back(DmabufAnswer({Rec(0, 4096, 1), Rec(4096, 4096, 2)}));
  auto rx = RxSocket::ForKernelSocket(SomeFd(), 7, {}, k.Ops());
  ASSERT_TRUE(rx.ok());
  auto b = rx->Receive(absl::Seconds(1));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(rx->Return(b->frags).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rx->stats().tokens_rejected, 1u);
}

// ---- TX --------------------------------------------------------------------

std::vector<std::byte> ZerocopyCmsg(uint32_t lo, uint32_t hi,
                                    uint32_t err = 0) {
  std::vector<std::byte> buf(CMSG_SPACE(sizeof(sock_extended_err)));
  cmsghdr h{};
  h.cmsg_len = CMSG_LEN(sizeof(sock_extended_err));
  h.cmsg_level = SOL_IP;
  h.cmsg_type = IP_RECVERR;
  sock_extended_err ee{};
  ee.ee_origin = SO_EE_ORIGIN_ZEROCOPY;
  ee.ee_errno = err;
  ee.ee_info = lo;
  ee.ee_data = hi;
  std::memcpy(buf.data(), &h, sizeof(h));
  std::memcpy(buf.data() + CMSG_LEN(0), &ee, sizeof(ee));
  return buf;
}

TEST(ParseZerocopyControl, RangesAndErrors) {
  std::vector<ZerocopyRange> out;
  ASSERT_TRUE(ParseZerocopyControl(Span(ZerocopyCmsg(3, 9)), &out).ok());
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].lo, 3u);
  EXPECT_EQ(out[0].hi, 9u);
  EXPECT_EQ(StatusErrno(
                ParseZerocopyControl(Span(ZerocopyCmsg(0, 0, ENOBUFS)), &out)),
            ENOBUFS);
  std::vector<std::byte> cut = ZerocopyCmsg(1, 2);
  cut.resize(cut.size() - 12);
  EXPECT_EQ(ParseZerocopyControl(Span(cut), &out).code(),
            absl::StatusCode::kDataLoss);
}

TEST(KernelTxSender, SendsOffsetsWithTheBindingCmsgAndCompletes) {
  struct Sent {
    uint64_t offset;
    size_t len;
    uint32_t binding;
    int flags;
  };
  std::vector<Sent> sent;
  std::deque<std::vector<std::byte>> errq;
  bool zerocopy_on = false;
  TxSender::KernelOps ops;
  ops.setsockopt = [&](int, int level, int name, const void* v, socklen_t) {
    zerocopy_on = level == SOL_SOCKET && name == uapi::kSoZerocopy &&
                  *static_cast<const int*>(v) == 1;
    return 0;
  };
  ops.sendmsg = [&](int, const msghdr* msg, int flags) -> ssize_t {
    const cmsghdr* c = CMSG_FIRSTHDR(msg);
    EXPECT_EQ(c->cmsg_type, uapi::kScmDevmemDmabuf);
    EXPECT_EQ(c->cmsg_len, CMSG_LEN(4));
    uint32_t id;
    std::memcpy(&id, CMSG_DATA(c), 4);
    sent.push_back({reinterpret_cast<uint64_t>(msg->msg_iov[0].iov_base),
                    msg->msg_iov[0].iov_len, id, flags});
    // Short write of big sends: the sender must loop (two zerocopy ids).
    return static_cast<ssize_t>(
        std::min<size_t>(msg->msg_iov[0].iov_len, 8192));
  };
  ops.poll_err = [&](int, int) { return errq.empty() ? 0 : 1; };
  ops.recvmsg = [&](int, msghdr* msg, int flags) -> ssize_t {
    EXPECT_EQ(flags & MSG_ERRQUEUE, MSG_ERRQUEUE);
    if (errq.empty()) {
      errno = EAGAIN;
      return -1;
    }
    std::memcpy(msg->msg_control, errq.front().data(), errq.front().size());
    msg->msg_controllen = errq.front().size();
    errq.pop_front();
    return 0;
  };
  auto tx = TxSender::ForKernelSocket(SomeFd(), 42, 1 << 20, 4096, ops);
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_TRUE(zerocopy_on);
  auto r1 = tx->Allocate(4096);
  auto r2 = tx->Allocate(12288);
  ASSERT_TRUE(r1.ok() && r2.ok());
  ASSERT_TRUE(tx->Send(*r1).ok());
  ASSERT_TRUE(tx->Send(*r2).ok());  // 8192 + 4096: zerocopy ids 1 and 2
  ASSERT_THAT(sent, SizeIs(3));
  EXPECT_EQ(sent[0].binding, 42u);
  EXPECT_EQ(sent[0].flags & uapi::kMsgZerocopy, uapi::kMsgZerocopy);
  EXPECT_EQ(sent[1].offset, r2->offset);
  EXPECT_EQ(sent[2].offset, r2->offset + 8192);
  EXPECT_EQ(tx->stats().in_flight, 2u);
  errq.push_back(ZerocopyCmsg(0, 1));  // r1 done, half of r2
  auto done = tx->PollCompletions(absl::ZeroDuration());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(*done, 1u);
  errq.push_back(ZerocopyCmsg(2, 2));
  ASSERT_TRUE(tx->Flush(absl::Seconds(5)).ok());
  EXPECT_EQ(tx->stats().completed, 2u);
  EXPECT_EQ(tx->stats().in_flight, 0u);
}

// ---- the demo pattern -------------------------------------------------------

TEST(Pattern, FillThenVerifyAtAnyOffset) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200; ++i) {
    const uint64_t off = rng() % (1ull << 40);
    std::vector<std::byte> buf(rng() % 5000);
    demo::FillPattern(off, absl::MakeSpan(buf));
    EXPECT_FALSE(demo::VerifyPattern(off, buf).has_value());
    for (size_t j = 0; j < std::min<size_t>(buf.size(), 20); ++j) {
      EXPECT_EQ(buf[j], std::byte{demo::PatternByte(off + j)});
    }
  }
}

TEST(Pattern, FindsTheFirstWrongByte) {
  std::vector<std::byte> buf(4096);
  demo::FillPattern(1000, absl::MakeSpan(buf));
  buf[777] ^= std::byte{1};
  EXPECT_EQ(demo::VerifyPattern(1000, buf), 1777u);
}

TEST(Pattern, DataAtTheWrongOffsetFails) {
  std::vector<std::byte> buf(4096);
  demo::FillPattern(8192, absl::MakeSpan(buf));
  EXPECT_TRUE(demo::VerifyPattern(4096, buf).has_value());
  EXPECT_TRUE(demo::VerifyPattern(8193, buf).has_value());
}

}  // namespace
}  // namespace devmem
