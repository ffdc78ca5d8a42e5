// The simulated NIC's RX data path: bytes sent to a binding's endpoint land
// in the dmabuf and come out as dmabuf_cmsg records; tokens, backpressure,
// link down, teardown. Runs on the sim's threads (label tsan).
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/errno_status.h"
#include "base/host_port.h"
#include "base/sim_datapath.h"
#include "client/dmabuf/dmabuf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/sim/sim_provider.h"
#include "tests/providers_sim/sim_test_util.h"
#include "tests/testing/seed.h"

namespace devmem {
namespace {

using ::devmem::testing::ConnectTo;
using ::devmem::testing::DataPathPeer;
using ::devmem::testing::Eventually;
using ::devmem::testing::ReturnAll;
using ::devmem::testing::WriteAll;

std::vector<uint8_t> RandomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

class SimRxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Provider>> p = CreateSimProvider(
        SimOptions{.spec = "sim0:rx=8,tx=8,hds=on;sim1:rx=4,tx=4,hds=on"});
    ASSERT_TRUE(p.ok()) << p.status();
    provider_ = std::move(*p);
    nic_ = GetSimNic(provider_.get());
  }

  // Binds `queues` of sim0 to a new memfd of `size` bytes.
  void Bind(uint64_t size, uint32_t chunk_size = 4096,
            std::vector<uint32_t> queues = {3}, std::string device = "sim0") {
    absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("rx", size);
    ASSERT_TRUE(buf.ok()) << buf.status();
    buf_ = std::make_unique<Dmabuf>(std::move(*buf));
    absl::StatusOr<DmabufMapping> map = buf_->Map();
    ASSERT_TRUE(map.ok());
    map_ = std::move(*map);
    absl::StatusOr<std::unique_ptr<ProviderBinding>> b =
        provider_->BindRx(RxBindSpec{.device = device,
                                     .queue_ids = queues,
                                     .dmabuf = buf_->fd(),
                                     .chunk_size = chunk_size});
    ASSERT_TRUE(b.ok()) << b.status();
    binding_ = std::move(*b);
    sink_ = std::make_unique<DataPathPeer>(*binding_);
    endpoint_ = sink_->endpoint();
    ASSERT_THAT(endpoint_, ::testing::HasSubstr("127.0.0.1:"));
  }

  // Checks each record and appends its bytes (read from our own mapping at
  // the reported offset) to `out`.
  void Collect(const std::vector<uapi::DmabufCmsg>& frags,
               std::vector<uint8_t>* out) {
    const uint32_t cs = binding_->region()->chunk_size();
    for (const uapi::DmabufCmsg& f : frags) {
      ASSERT_EQ(f.dmabuf_id, binding_->id());
      ASSERT_EQ(f.flags, 0u);
      ASSERT_GT(f.frag_size, 0u);
      ASSERT_LE(f.frag_size, cs);
      ASSERT_EQ(f.frag_offset % cs, 0u);            // one chunk per frag
      ASSERT_EQ(f.frag_token, f.frag_offset / cs);  // token = chunk index
      ASSERT_LE(f.frag_offset + f.frag_size, map_.size());
      const auto* p =
          reinterpret_cast<const uint8_t*>(map_.data()) + f.frag_offset;
      out->insert(out->end(), p, p + f.frag_size);
    }
  }

  // Consumes until `closes` flows ended, returning tokens as it goes.
  void ConsumeUntilClosed(size_t closes, std::vector<uint8_t>* out) {
    while (true) {
      std::vector<uapi::DmabufCmsg> frags = sink_->TakeOrClosed(closes);
      if (frags.empty()) {
        ASSERT_GE(sink_->closed().size(), closes) << "timed out";
        return;
      }
      Collect(frags, out);
      EXPECT_EQ(ReturnAll(*sink_, frags), frags.size());
    }
  }

  std::unique_ptr<Provider> provider_;
  SimNic* nic_ = nullptr;
  std::unique_ptr<Dmabuf> buf_;
  DmabufMapping map_;
  std::unique_ptr<ProviderBinding> binding_;
  std::string endpoint_;
  std::unique_ptr<DataPathPeer> sink_;
};

class SimRxChunkTest : public SimRxTest,
                       public ::testing::WithParamInterface<uint32_t> {};

TEST_P(SimRxChunkTest, SeededPayloadsArriveByteExact) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  const uint32_t chunk = GetParam();
  Bind(std::max<uint64_t>(1 << 20, 4ull * chunk), chunk);

  // Three connections in a row, each a random number of random-sized writes.
  std::vector<uint8_t> sent;
  std::vector<std::vector<uint8_t>> pieces;
  std::vector<size_t> per_conn;
  for (int c = 0; c < 3; ++c) {
    const int writes = 1 + static_cast<int>(rng() % 40);
    per_conn.push_back(static_cast<size_t>(writes));
    for (int i = 0; i < writes; ++i) {
      const size_t n = 1 + rng() % (i % 7 == 0 ? 300000 : 5000);
      pieces.push_back(RandomBytes(rng, n));
      sent.insert(sent.end(), pieces.back().begin(), pieces.back().end());
    }
  }
  std::thread sender([&] {
    size_t k = 0;
    for (size_t n : per_conn) {
      UniqueFd fd = ConnectTo(endpoint_);
      for (size_t i = 0; i < n; ++i, ++k) {
        ASSERT_TRUE(WriteAll(fd.get(), pieces[k].data(), pieces[k].size()));
      }
      // Close, then the next connection is accepted after this one ends.
    }
  });
  std::vector<uint8_t> got;
  ConsumeUntilClosed(3, &got);
  sender.join();
  ASSERT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent) << "payload differs";
  for (const absl::Status& s : sink_->closed()) EXPECT_TRUE(s.ok()) << s;

  BindingStats stats = binding_->Stats();
  EXPECT_EQ(stats.bytes_received, sent.size());
  // (alloc_fail may be non-zero: a small pool of big chunks runs dry while
  // the consumer catches up; nothing is lost either way.)
  EXPECT_EQ(stats.pool.lent_tokens, 0u);
  EXPECT_GE(stats.frags, sent.size() / chunk);
  absl::StatusOr<std::vector<QueueStats>> qs = provider_->GetQueueStats("sim0");
  ASSERT_TRUE(qs.ok());
  EXPECT_EQ((*qs)[3].bytes, sent.size());
  EXPECT_EQ((*qs)[2].bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(ChunkSizes, SimRxChunkTest,
                         ::testing::Values(4096u, 65536u, 2u << 20));

TEST_F(SimRxTest, DataWaitsInTheDataPathUntilTheJobReads) {
  Bind(1 << 20);
  UniqueFd fd = ConnectTo(endpoint_);
  const uint8_t hello[] = {'h', 'e', 'l', 'l', 'o'};
  ASSERT_TRUE(WriteAll(fd.get(), hello, sizeof(hello)));
  fd.reset();
  std::vector<uint8_t> got;
  ConsumeUntilClosed(1, &got);
  EXPECT_EQ(got, std::vector<uint8_t>(hello, hello + 5));
  EXPECT_TRUE(sink_->closed()[0].ok()) << sink_->closed()[0];
  EXPECT_EQ(binding_->Stats().bytes_received, 5u);
}

TEST_F(SimRxTest, OneDataPathPerBinding) {
  Bind(1 << 20);
  EXPECT_FALSE(binding_->TakeDataPath().has_value());
}

TEST_F(SimRxTest, UnbindEndsTheDataPathWithEof) {
  Bind(1 << 20);
  std::vector<uint8_t> data(3 * 4096, 7);
  {
    UniqueFd fd = ConnectTo(endpoint_);
    ASSERT_TRUE(WriteAll(fd.get(), data.data(), data.size()));
  }
  ASSERT_TRUE(sink_->WaitBytes(data.size()));
  std::shared_ptr<Region> region = binding_->region();
  EXPECT_GT(region->Stats().lent_tokens, 0u);
  binding_.reset();  // tokens never returned
  ASSERT_TRUE(sink_->WaitEof());
  EXPECT_EQ(region->Stats().lent_tokens, 0u);
  EXPECT_TRUE(region->released());
}

TEST_F(SimRxTest, ClosingTheJobsEndReleasesItsTokens) {
  Bind(1 << 20);
  std::vector<uint8_t> data(5 * 4096, 9);
  {
    UniqueFd fd = ConnectTo(endpoint_);
    ASSERT_TRUE(WriteAll(fd.get(), data.data(), data.size()));
  }
  ASSERT_TRUE(sink_->WaitBytes(data.size()));
  EXPECT_EQ(binding_->Stats().pool.lent_tokens, 5u);
  sink_->Close();  // as the kernel does when a devmem socket closes
  ASSERT_TRUE(
      Eventually([&] { return binding_->Stats().pool.lent_tokens == 0; }));
  // No socket takes the flow any more: a new sender is refused.
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<UniqueFd> c = ConnectTcp(endpoint_);
    return !c.ok() && StatusErrno(c.status()) == ECONNREFUSED;
  }));
}

TEST_F(SimRxTest, BadPacketsFromTheJobAreAnsweredAndChangeNothing) {
  Bind(1 << 20);
  {
    UniqueFd fd = ConnectTo(endpoint_);
    const uint8_t b[1] = {1};
    ASSERT_TRUE(WriteAll(fd.get(), b, 1));
  }
  ASSERT_TRUE(sink_->WaitBytes(1));
  sink_->SendRaw("abc");                      // shorter than a header
  sink_->SendRaw(simdp::TxSendPacket(0, 1));  // a TX request
  std::string odd = simdp::Dontneed({});
  odd.push_back('x');  // length not 8 x count
  sink_->SendRaw(odd);
  simdp::Header h{static_cast<simdp::Type>(77), 0, 0};
  sink_->SendRaw(std::string(reinterpret_cast<const char*>(&h), sizeof(h)));
  ASSERT_TRUE(sink_->WaitErrors(4));
  for (const absl::Status& e : sink_->errors()) {
    EXPECT_EQ(e.code(), absl::StatusCode::kInvalidArgument) << e;
    EXPECT_THAT(std::string(e.message()), ::testing::HasSubstr("nothing"));
  }
  EXPECT_EQ(binding_->Stats().pool.lent_tokens, 1u);  // still lent
  EXPECT_EQ(ReturnAll(*sink_, sink_->Take()), 1u);    // still usable
}

TEST_F(SimRxTest, BackpressureWhenTokensAreWithheld) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  constexpr uint64_t kPool = 16 * 4096;  // 16 chunks
  Bind(kPool);
  // Far more than the pool plus both sockets' buffers can hold.
  const std::vector<uint8_t> payload = RandomBytes(rng, 4 << 20);
  std::atomic<uint64_t> written{0};
  std::atomic<bool> done{false};
  std::thread sender([&] {
    UniqueFd fd = ConnectTo(endpoint_, /*sndbuf=*/64 << 10);
    for (size_t off = 0; off < payload.size(); off += 16384) {
      const size_t n = std::min<size_t>(16384, payload.size() - off);
      ASSERT_TRUE(WriteAll(fd.get(), payload.data() + off, n));
      written.fetch_add(n);
    }
    done.store(true);
  });

  // The pool fills: every chunk is lent (a chunk may hold less than 4 KiB
  // when a read found less), then the sim stops reading and counts an
  // allocation failure.
  ASSERT_TRUE(Eventually([&] { return binding_->Stats().alloc_fail > 0; }));
  BindingStats stats = binding_->Stats();
  EXPECT_EQ(stats.pool.lent_tokens, 16u);
  EXPECT_EQ(stats.frags, 16u);
  EXPECT_GT(stats.bytes_received, 0u);
  EXPECT_LE(stats.bytes_received, kPool);
  ASSERT_TRUE(sink_->WaitBytes(stats.bytes_received));  // all sent to the job
  EXPECT_EQ(sink_->bytes(), stats.bytes_received);
  EXPECT_GT(stats.pool.alloc_failed, 0u);
  // The sender is held back by TCP flow control: nothing was dropped.
  EXPECT_FALSE(done.load());
  EXPECT_LT(written.load(), payload.size());
  absl::StatusOr<std::vector<QueueStats>> qs = provider_->GetQueueStats("sim0");
  EXPECT_GT((*qs)[3].alloc_fail, 0u);

  // Tokens come back: the rest arrives, byte-exact.
  std::vector<uint8_t> got;
  std::thread closer([&] {
    sender.join();  // the sender closes its socket when done
  });
  ConsumeUntilClosed(1, &got);
  closer.join();
  EXPECT_TRUE(done.load());
  ASSERT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload);
}

TEST_F(SimRxTest, LinkDownDuringATransferClosesTheFlow) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  Bind(1 << 20);
  const std::vector<uint8_t> block = RandomBytes(rng, 65536);
  std::atomic<int> sender_errno{0};
  std::thread sender([&] {
    UniqueFd fd = ConnectTo(endpoint_);
    // Until the flow is closed under it.
    while (WriteAll(fd.get(), block.data(), block.size())) {
    }
    sender_errno.store(errno);
  });
  // Some data arrives; tokens are withheld for a while to keep bytes lent.
  ASSERT_TRUE(sink_->WaitBytes(8 * 4096));
  ASSERT_TRUE(nic_->SetLinkUp("sim0", false).ok());
  ASSERT_TRUE(sink_->WaitClosed(1));
  const absl::Status why = sink_->closed()[0];
  EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable) << why;
  EXPECT_EQ(StatusErrno(why), ENETDOWN);
  EXPECT_THAT(std::string(why.message()), ::testing::HasSubstr("sim0 binding"));
  sender.join();
  EXPECT_TRUE(sender_errno.load() == ECONNRESET || sender_errno.load() == EPIPE)
      << sender_errno.load();

  // What was delivered is intact, and its tokens are still valid.
  std::vector<uapi::DmabufCmsg> frags = sink_->Take();
  std::vector<uint8_t> got;
  Collect(frags, &got);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], block[i % block.size()]) << "byte " << i;
  }
  EXPECT_EQ(ReturnAll(*sink_, frags), frags.size());
  EXPECT_EQ(binding_->Stats().pool.lent_tokens, 0u);

  // Link up again: a new flow is received.
  ASSERT_TRUE(nic_->SetLinkUp("sim0", true).ok());
  std::thread again([&] {
    UniqueFd fd = ConnectTo(endpoint_);
    ASSERT_TRUE(WriteAll(fd.get(), block.data(), 1000));
  });
  std::vector<uint8_t> more;
  ConsumeUntilClosed(2, &more);
  again.join();
  EXPECT_EQ(more, std::vector<uint8_t>(block.begin(), block.begin() + 1000));
  EXPECT_TRUE(sink_->closed()[1].ok());
}

TEST_F(SimRxTest, DestroyReleasesLentTokensAndRetiresTheRegion) {
  Bind(1 << 20);
  std::vector<uint8_t> data(10 * 4096 + 17, 0xab);
  std::thread sender([&] {
    UniqueFd fd = ConnectTo(endpoint_);
    ASSERT_TRUE(WriteAll(fd.get(), data.data(), data.size()));
  });
  ASSERT_TRUE(sink_->WaitBytes(data.size()));
  sender.join();
  std::shared_ptr<Region> region = binding_->region();
  EXPECT_EQ(region->Stats().lent_tokens, binding_->Stats().frags);
  EXPECT_GE(region->Stats().lent_tokens, 11u);
  const uint32_t id = binding_->id();
  binding_.reset();  // tokens never returned
  EXPECT_TRUE(region->retired());
  EXPECT_TRUE(region->released());
  RegionStats s = region->Stats();
  EXPECT_EQ(s.lent_tokens, 0u);
  EXPECT_EQ(s.inflight_chunks, 0u);
  // The job's end reads EOF; nothing it was sent said otherwise.
  EXPECT_TRUE(sink_->WaitEof());
  for (const absl::Status& c : sink_->closed()) EXPECT_TRUE(c.ok()) << c;
  // The queue is free again and the id is not.
  absl::StatusOr<std::vector<DeviceInfo>> devs = provider_->ListDevices();
  EXPECT_FALSE((*devs)[0].queues[3].binding_id.has_value());
  (void)id;
}

TEST_F(SimRxTest, DestroyWhileASenderIsStalled) {
  Bind(4 * 4096);
  std::vector<uint8_t> data(1 << 20, 1);
  std::thread sender([&] {
    UniqueFd fd = ConnectTo(endpoint_);
    (void)WriteAll(fd.get(), data.data(), data.size());  // fails at teardown
  });
  ASSERT_TRUE(Eventually([&] { return binding_->Stats().alloc_fail > 0; }));
  binding_.reset();
  sender.join();
}

TEST_F(SimRxTest, ReturnTokensValidatesLikeDontneed) {
  Bind(1 << 20);
  std::thread sender([&] {
    UniqueFd fd = ConnectTo(endpoint_);
    uint8_t b[3] = {1, 2, 3};
    ASSERT_TRUE(WriteAll(fd.get(), b, 3));
  });
  ASSERT_TRUE(sink_->WaitBytes(3));
  sender.join();
  std::vector<uapi::DmabufCmsg> frags = sink_->Take();
  ASSERT_EQ(frags.size(), 1u);
  // More than 128 ranges: refused whole, nothing released.
  std::vector<TokenRange> many(129, TokenRange{frags[0].frag_token, 1});
  TokenRelease r = sink_->Dontneed(many);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.freed, 0u);
  // A token that is not lent is rejected, the good one released.
  const TokenRange two[] = {{frags[0].frag_token, 1}, {200, 1}};
  r = sink_->Dontneed(two);
  EXPECT_EQ(r.freed, 1u);
  EXPECT_EQ(r.rejected, 1u);
  EXPECT_FALSE(r.status.ok());
  r = sink_->Dontneed(two);  // the first is no longer lent either
  EXPECT_EQ(r.freed, 0u);
  EXPECT_EQ(r.rejected, 2u);
}

TEST_F(SimRxTest, TwoBindingsReceiveConcurrently) {
  const uint64_t seed = testing::TestSeed();
  DEVMEM_SEEDED_TRACE(seed);
  std::mt19937_64 rng(seed);
  Bind(1 << 20);
  auto buf2 = Dmabuf::CreateMemfd("rx2", 1 << 20);
  ASSERT_TRUE(buf2.ok());
  auto map2 = buf2->Map();
  ASSERT_TRUE(map2.ok());
  auto b2 = provider_->BindRx(
      RxBindSpec{.device = "sim1", .queue_ids = {1}, .dmabuf = buf2->fd()});
  ASSERT_TRUE(b2.ok()) << b2.status();
  auto sink2 = std::make_unique<DataPathPeer>(**b2);
  const std::vector<uint8_t> p1 = RandomBytes(rng, 3 << 20);
  const std::vector<uint8_t> p2 = RandomBytes(rng, 2 << 20);
  std::thread s1([&] {
    UniqueFd fd = ConnectTo(endpoint_);
    ASSERT_TRUE(WriteAll(fd.get(), p1.data(), p1.size()));
  });
  std::thread s2([&] {
    UniqueFd fd = ConnectTo(sink2->endpoint());
    ASSERT_TRUE(WriteAll(fd.get(), p2.data(), p2.size()));
  });
  std::vector<uint8_t> got2;
  std::thread c2([&] {
    while (true) {
      std::vector<uapi::DmabufCmsg> frags = sink2->TakeOrClosed(1);
      if (frags.empty()) break;
      for (const auto& f : frags) {
        const auto* p =
            reinterpret_cast<const uint8_t*>(map2->data()) + f.frag_offset;
        got2.insert(got2.end(), p, p + f.frag_size);
        ASSERT_EQ(f.dmabuf_id, (*b2)->id());
      }
      ReturnAll(*sink2, frags);
    }
  });
  std::vector<uint8_t> got1;
  ConsumeUntilClosed(1, &got1);
  c2.join();
  s1.join();
  s2.join();
  EXPECT_TRUE(got1 == p1);
  EXPECT_TRUE(got2 == p2);
}

}  // namespace
}  // namespace devmem
