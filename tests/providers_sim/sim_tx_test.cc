// The simulated NIC's TX data path: Send() ranges of the bound buffer to a
// loopback peer, completions as MSG_ZEROCOPY notifications, EFAULT for a
// range beyond the buffer, link down. Runs on the sim's threads (label tsan).
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
#include "client/dmabuf/dmabuf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/sim/sim_provider.h"
#include "tests/providers_sim/sim_test_util.h"
#include "tests/testing/seed.h"

namespace devmem {
namespace {

using ::testing::HasSubstr;

class RecordingTxSink : public TxSink {
 public:
  void Completed(uint32_t lo, uint32_t hi) override {
    MutexLock lock(mu_);
    // Completions arrive in order here and must not overlap or skip.
    EXPECT_EQ(lo, next_) << "completion gap";
    EXPECT_LE(lo, hi);
    next_ = hi + 1;
    cv_.SignalAll();
  }
  void Closed(const absl::Status& why) override {
    MutexLock lock(mu_);
    closed_.push_back(why);
    cv_.SignalAll();
  }
  // Waits until every id below `n` completed.
  bool WaitCompleted(uint32_t n) {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, testing::kWait, [&] {
      mu_.AssertHeld();
      return next_ >= n;
    });
  }
  bool WaitClosed() {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, testing::kWait, [&] {
      mu_.AssertHeld();
      return !closed_.empty();
    });
  }
  uint32_t completed() const {
    MutexLock lock(mu_);
    return next_;
  }
  std::vector<absl::Status> closed() const {
    MutexLock lock(mu_);
    return closed_;
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  uint32_t next_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
};

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
    sink_ = std::make_shared<RecordingTxSink>();
  }

  static constexpr uint64_t kSize = 1 << 20;
  std::unique_ptr<Provider> provider_;
  SimNic* nic_ = nullptr;
  std::unique_ptr<Dmabuf> buf_;
  DmabufMapping map_;
  std::unique_ptr<ProviderBinding> binding_;
  std::shared_ptr<RecordingTxSink> sink_;
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
  ASSERT_TRUE(binding_->StartTx(peer.address(), sink_).ok());
  std::vector<uint8_t> expected;
  const int sends = 50 + static_cast<int>(rng() % 50);
  for (int i = 0; i < sends; ++i) {
    const uint64_t off = rng() % kSize;
    const uint64_t len = 1 + rng() % std::min<uint64_t>(kSize - off, 200000);
    absl::StatusOr<uint32_t> id = binding_->Send(off, len);
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
  ASSERT_EQ(sink_->closed().size(), 1u);
  EXPECT_EQ(sink_->closed()[0].code(), absl::StatusCode::kCancelled);
}

TEST_F(SimTxTest, SendErrors) {
  EXPECT_EQ(binding_->Send(0, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);  // before StartTx
  EXPECT_EQ(binding_->StartTx("127.0.0.1:0", sink_).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusErrno(binding_->StartTx("localhost:80", sink_)), EINVAL);
  EXPECT_EQ(binding_->StartTx("127.0.0.1:9", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  Peer peer;
  ASSERT_TRUE(binding_->StartTx(peer.address(), sink_).ok());
  EXPECT_EQ(binding_->StartTx(peer.address(), sink_).code(),
            absl::StatusCode::kFailedPrecondition);
  absl::Status s = binding_->Send(kSize - 10, 11).status();
  EXPECT_EQ(StatusErrno(s), EFAULT);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("beyond"));
  EXPECT_EQ(StatusErrno(binding_->Send(kSize, 1).status()), EFAULT);
  EXPECT_EQ(StatusErrno(binding_->Send(1, ~uint64_t{0}).status()), EFAULT);
  EXPECT_EQ(StatusErrno(binding_->Send(0, 0).status()), EINVAL);
  absl::StatusOr<uint32_t> ok = binding_->Send(kSize - 10, 10);
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
  EXPECT_EQ(StatusErrno(binding_->StartTx(address, sink_)), ECONNREFUSED);
}

TEST_F(SimTxTest, LinkDownClosesTheConnectionAndCompletesEverything) {
  Peer peer;
  ASSERT_TRUE(binding_->StartTx(peer.address(), sink_).ok());
  UniqueFd conn = peer.Accept();  // never read: sends pile up
  uint32_t sends = 0;
  for (; sends < 200; ++sends) {
    ASSERT_TRUE(binding_->Send(0, kSize).ok());
  }
  ASSERT_TRUE(nic_->SetLinkUp("sim0", false).ok());
  ASSERT_TRUE(sink_->WaitClosed());
  const absl::Status why = sink_->closed()[0];
  EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable) << why;
  EXPECT_EQ(StatusErrno(why), ENETDOWN);
  // Every send is completed: its buffer range is free again.
  EXPECT_TRUE(sink_->WaitCompleted(sends));
  EXPECT_EQ(StatusErrno(binding_->Send(0, 1).status()), ENETDOWN);
  binding_.reset();
  EXPECT_EQ(sink_->closed().size(), 1u);  // no second Closed
}

TEST_F(SimTxTest, StartTxOnADownLinkIsEnetdown) {
  Peer peer;
  ASSERT_TRUE(nic_->SetLinkUp("sim0", false).ok());
  EXPECT_EQ(StatusErrno(binding_->StartTx(peer.address(), sink_)), ENETDOWN);
}

TEST_F(SimTxTest, DestroyWithSendsInFlight) {
  Peer peer;
  ASSERT_TRUE(binding_->StartTx(peer.address(), sink_).ok());
  UniqueFd conn = peer.Accept();  // never read
  for (uint32_t i = 0; i < 100; ++i) ASSERT_TRUE(binding_->Send(0, kSize).ok());
  binding_.reset();  // must not hang on the blocked send
  EXPECT_EQ(sink_->completed(), 100u);
  ASSERT_EQ(sink_->closed().size(), 1u);
  EXPECT_EQ(sink_->closed()[0].code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace devmem
