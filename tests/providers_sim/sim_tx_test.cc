// The simulated NIC's TX data path, driven over the binding's data-path
// socket: kTxSend ranges of the bound buffer to a loopback peer, completions
// as MSG_ZEROCOPY notifications, EFAULT for a range beyond the buffer, link
// down. Runs on the sim's threads (label tsan).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/sim_datapath.h"
#include "client/dmabuf/dmabuf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/sim/sim_provider.h"
#include "tests/providers_sim/sim_test_util.h"
#include "tests/testing/seed.h"

namespace devmem {
namespace {

using ::testing::HasSubstr;

// A loopback listener standing for the remote receiver.
class Peer {
 public:
  Peer() {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(
        ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_.get(), 4), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  }
  const std::string& address() const { return address_; }
  UniqueFd Accept() { return UniqueFd(::accept(fd_.get(), nullptr, nullptr)); }
  // Accepts one connection and reads it to EOF.
  std::vector<uint8_t> ReadAll() {
    UniqueFd c = Accept();
    std::vector<uint8_t> out;
    uint8_t buf[65536];
    while (true) {
      const ssize_t n = ::recv(c.get(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.insert(out.end(), buf, buf + n);
    }
    return out;
  }

 private:
  UniqueFd fd_;
  std::string address_;
};

class SimTxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = CreateSimProvider(SimOptions{.spec = "sim0:rx=4,tx=4"});
    ASSERT_TRUE(p.ok());
    provider_ = std::move(*p);
    nic_ = GetSimNic(provider_.get());
    auto buf = Dmabuf::CreateMemfd("tx", kSize);
    ASSERT_TRUE(buf.ok());
    buf_ = std::make_unique<Dmabuf>(std::move(*buf));
    auto map = buf_->Map();
    ASSERT_TRUE(map.ok());
    map_ = std::move(*map);
    auto b =
        provider_->BindTx(TxBindSpec{.device = "sim0", .dmabuf = buf_->fd()});
    ASSERT_TRUE(b.ok()) << b.status();
    binding_ = std::move(*b);
    sink_ = std::make_unique<testing::DataPathPeer>(*binding_);
  }

  static constexpr uint64_t kSize = 1 << 20;
  std::unique_ptr<Provider> provider_;
  SimNic* nic_ = nullptr;
  std::unique_ptr<Dmabuf> buf_;
  DmabufMapping map_;
  std::unique_ptr<ProviderBinding> binding_;
  std::unique_ptr<testing::DataPathPeer> sink_;
};

TEST_F(SimTxTest, SendsArriveByteExactAndComplete) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  auto* mem = reinterpret_cast<uint8_t*>(map_.data());
  for (uint64_t i = 0; i < kSize; ++i) mem[i] = static_cast<uint8_t>(rng());

  Peer peer;
  std::vector<uint8_t> received;
  std::thread reader([&] { received = peer.ReadAll(); });
  ASSERT_TRUE(sink_->TxConnect(peer.address()).ok());
  std::vector<uint8_t> expected;
  const int sends = 50 + static_cast<int>(rng() % 50);
  for (int i = 0; i < sends; ++i) {
    const uint64_t off = rng() % kSize;
    const uint64_t len = 1 + rng() % std::min<uint64_t>(kSize - off, 200000);
    absl::StatusOr<uint32_t> id = sink_->TxSend(off, len);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(*id, static_cast<uint32_t>(i));
    expected.insert(expected.end(), mem + off, mem + off + len);
  }
  ASSERT_TRUE(sink_->WaitCompleted(static_cast<uint32_t>(sends)));
  EXPECT_EQ(binding_->Stats().bytes_sent, expected.size());
  auto qs = provider_->GetQueueStats("sim0");
  ASSERT_TRUE(qs.ok());
  EXPECT_EQ((*qs)[4].bytes, expected.size());  // TX queue 0
  binding_.reset();  // closes the connection: the reader sees EOF
  reader.join();
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected);
  EXPECT_TRUE(sink_->WaitEof());  // the data path ends with the binding
  EXPECT_TRUE(sink_->closed().empty());
}

TEST_F(SimTxTest, SendErrors) {
  EXPECT_EQ(sink_->TxSend(0, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);  // before TxConnect
  EXPECT_EQ(sink_->TxConnect("127.0.0.1:0").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusErrno(sink_->TxConnect("localhost:80")), EINVAL);
  Peer peer;
  ASSERT_TRUE(sink_->TxConnect(peer.address()).ok());
  EXPECT_EQ(sink_->TxConnect(peer.address()).code(),
            absl::StatusCode::kFailedPrecondition);
  absl::Status s = sink_->TxSend(kSize - 10, 11).status();
  EXPECT_EQ(StatusErrno(s), EFAULT);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("beyond"));
  EXPECT_EQ(StatusErrno(sink_->TxSend(kSize, 1).status()), EFAULT);
  EXPECT_EQ(StatusErrno(sink_->TxSend(1, ~uint64_t{0}).status()), EFAULT);
  EXPECT_EQ(StatusErrno(sink_->TxSend(0, 0).status()), EINVAL);
  absl::StatusOr<uint32_t> ok = sink_->TxSend(kSize - 10, 10);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 0u);  // failed sends take no id
}

TEST_F(SimTxTest, ConnectRefused) {
  // A port nobody listens on: bind one, read it, close it.
  std::string address;
  {
    Peer gone;
    address = gone.address();
  }
  EXPECT_EQ(StatusErrno(sink_->TxConnect(address)), ECONNREFUSED);
}

TEST_F(SimTxTest, LinkDownClosesTheConnectionAndCompletesEverything) {
  Peer peer;
  ASSERT_TRUE(sink_->TxConnect(peer.address()).ok());
  UniqueFd conn = peer.Accept();  // never read: sends pile up
  uint32_t sends = 0;
  for (; sends < 200; ++sends) {
    ASSERT_TRUE(sink_->TxSend(0, kSize).ok());
  }
  ASSERT_TRUE(nic_->SetLinkUp("sim0", false).ok());
  ASSERT_TRUE(sink_->WaitClosed(1));
  const absl::Status why = sink_->closed()[0];
  EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable) << why;
  EXPECT_EQ(StatusErrno(why), ENETDOWN);
  // Every send is completed: its buffer range is free again.
  EXPECT_TRUE(sink_->WaitCompleted(sends));
  EXPECT_EQ(StatusErrno(sink_->TxSend(0, 1).status()), ENETDOWN);
  binding_.reset();
  EXPECT_TRUE(sink_->WaitEof());
  EXPECT_EQ(sink_->closed().size(), 1u);  // no second kClosed
}

TEST_F(SimTxTest, TxConnectOnADownLinkIsEnetdown) {
  Peer peer;
  ASSERT_TRUE(nic_->SetLinkUp("sim0", false).ok());
  EXPECT_EQ(StatusErrno(sink_->TxConnect(peer.address())), ENETDOWN);
}

TEST_F(SimTxTest, DestroyWithSendsInFlight) {
  Peer peer;
  ASSERT_TRUE(sink_->TxConnect(peer.address()).ok());
  UniqueFd conn = peer.Accept();  // never read
  for (uint32_t i = 0; i < 100; ++i) ASSERT_TRUE(sink_->TxSend(0, kSize).ok());
  binding_.reset();  // must not hang on the peer that does not read
  EXPECT_TRUE(sink_->WaitEof());
  EXPECT_TRUE(sink_->closed().empty());
}

TEST_F(SimTxTest, SendsQueueWhileThePeerDoesNotRead) {
  Peer peer;
  ASSERT_TRUE(sink_->TxConnect(peer.address()).ok());
  UniqueFd conn = peer.Accept();  // not read yet
  // Far more than the sockets hold: each send is answered at once.
  constexpr uint32_t kSends = 64;
  for (uint32_t i = 0; i < kSends; ++i) {
    absl::StatusOr<uint32_t> id = sink_->TxSend(0, kSize);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(*id, i);
  }
  EXPECT_LT(sink_->completed(), kSends);
  // The peer reads: everything is written and completed, in order.
  uint64_t got = 0;
  std::vector<uint8_t> buf(1 << 16);
  while (got < kSends * kSize) {
    const ssize_t n = ::recv(conn.get(), buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0);
    got += static_cast<uint64_t>(n);
  }
  EXPECT_TRUE(sink_->WaitCompleted(kSends));
}

TEST_F(SimTxTest, RxRequestsOnATxDataPathAreErrors) {
  sink_->SendRaw(simdp::Dontneed({}));
  ASSERT_TRUE(sink_->WaitErrors(1));
  EXPECT_EQ(sink_->errors()[0].code(), absl::StatusCode::kInvalidArgument);
  Peer peer;
  EXPECT_TRUE(sink_->TxConnect(peer.address()).ok());  // still usable
}

}  // namespace
}  // namespace devmem
