// The simulated NIC's RX data path against plain loopback TCP.
//
// BM_SimRx: a sender writes 1 MiB per iteration to an RX binding's endpoint;
// the binding receives into 4 KiB chunks of a 16 MiB memfd and sends the
// dmabuf_cmsg records on the binding's data-path socket; a job thread reads
// them there and gives tokens back once it holds `batch` of them (coalesced,
// up to 128 ranges per packet, as SO_DEVMEM_DONTNEED).
// BM_PlainTcpRx (the in-run baseline): the same sender, and a thread that
// recv()s 256 KiB at a time straight into a 16 MiB memfd mapping.
// Both report bytes per second of payload received. Work happens on other
// threads, so both use real time; the bytes still in socket buffers when the
// loop ends (a few MiB of several GiB) are not waited for.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/sim_datapath.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "benchmark/benchmark.h"
#include "client/dmabuf/dmabuf.h"
#include "pool/token_range.h"
#include "providers/sim/sim_provider.h"

namespace devmem {
namespace {

constexpr uint64_t kBufferBytes = 16 << 20;
constexpr size_t kSendBytes = 1 << 20;  // per iteration
constexpr size_t kRecvBytes = 256 << 10;

UniqueFd Connect(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    return UniqueFd();
  }
  return fd;
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// The sender side, shared by both benchmarks: the benchmark thread writes.
void SendLoop(benchmark::State& state, int fd) {
  std::vector<char> src(kSendBytes, 'x');
  for (auto _ : state) {
    if (!SendAll(fd, src.data(), src.size())) {
      state.SkipWithError("send failed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(kSendBytes));
}

// The job, as thin as a job can be: reads the binding's data-path socket
// (base/sim_datapath.h) until the flow ends, and once it holds `batch`
// tokens sends them back (coalesced, <= 128 ranges / 1024 tokens a packet,
// as SO_DEVMEM_DONTNEED) without waiting for each answer (the sim answers in
// order; the answers are read with the frags).
struct JobResult {
  uint64_t frags = 0;
  std::string error;
};
JobResult RunJob(int fd, uint32_t batch) {
  JobResult r;
  std::string buf(simdp::kMaxPacketBytes, '\0');
  std::vector<Token> held;
  auto give_back = [&]() -> bool {
    for (const std::vector<TokenRange>& ranges :
         CoalesceTokens(std::move(held))) {
      std::vector<uapi::DmabufToken> wire(ranges.size());
      std::memcpy(wire.data(), ranges.data(), ranges.size() * sizeof(wire[0]));
      const std::string p = simdp::Dontneed(wire);
      if (::send(fd, p.data(), p.size(), MSG_NOSIGNAL) < 0) return false;
    }
    held.clear();
    return true;
  };
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      r.error = "data path closed";
      return r;
    }
    absl::StatusOr<simdp::Packet> p =
        simdp::Parse(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!p.ok()) {
      r.error = p.status().ToString();
      return r;
    }
    if (p->type == simdp::Type::kClosed) break;
    if (p->type != simdp::Type::kRxFrags) continue;  // answers
    r.frags += p->count;
    for (uint32_t i = 0; i < p->count; ++i) {
      held.push_back(simdp::Unit<uapi::DmabufCmsg>(*p, i).frag_token);
    }
    if (held.size() >= batch && !give_back()) {
      r.error = "send failed";
      return r;
    }
  }
  if (!give_back()) r.error = "send failed";
  return r;
}

uint16_t PortOf(const std::string& endpoint) {
  uint32_t port = 0;
  (void)absl::SimpleAtoi(endpoint.substr(endpoint.rfind(':') + 1), &port);
  return static_cast<uint16_t>(port);
}

void BM_SimRx(benchmark::State& state) {
  const uint32_t batch = static_cast<uint32_t>(state.range(0));
  auto provider =
      CreateSimProvider(SimOptions{.spec = "sim0:rx=4,tx=4,hds=on"});
  auto buf = Dmabuf::CreateMemfd("bench", kBufferBytes);
  if (!provider.ok() || !buf.ok()) {
    state.SkipWithError("setup failed");
    return;
  }
  auto binding = (*provider)->BindRx(RxBindSpec{.device = "sim0",
                                                .queue_ids = {3},
                                                .dmabuf = buf->fd(),
                                                .chunk_size = 4096});
  if (!binding.ok()) {
    state.SkipWithError(binding.status().ToString().c_str());
    return;
  }
  std::optional<DataPath> dp = (*binding)->TakeDataPath();
  if (!dp.has_value()) {
    state.SkipWithError("no data path");
    return;
  }
  JobResult job;
  std::thread job_thread([&] { job = RunJob(dp->job_end.get(), batch); });
  UniqueFd fd = Connect(PortOf(dp->rx_endpoint));
  SendLoop(state, fd.get());
  fd.reset();
  job_thread.join();
  if (!job.error.empty()) state.SkipWithError(job.error.c_str());
  const BindingStats stats = (*binding)->Stats();
  state.counters["frags"] = benchmark::Counter(static_cast<double>(stats.frags),
                                               benchmark::Counter::kIsRate);
  state.counters["alloc_fail"] = static_cast<double>(stats.alloc_fail);
  state.counters["bytes_per_frag"] =
      stats.frags ? static_cast<double>(stats.bytes_received) / stats.frags : 0;
}
BENCHMARK(BM_SimRx)->Arg(64)->Arg(1024)->UseRealTime()->MinTime(1.0);

void BM_PlainTcpRx(benchmark::State& state) {
  auto buf = Dmabuf::CreateMemfd("bench", kBufferBytes);
  auto map =
      buf.ok() ? buf->Map() : absl::StatusOr<DmabufMapping>(buf.status());
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (!map.ok() ||
      ::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr),
             sizeof(addr)) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) !=
          0) {
    state.SkipWithError("setup failed");
    return;
  }
  std::thread receiver([&] {
    UniqueFd conn(::accept(listener.get(), nullptr, nullptr));
    uint64_t off = 0;
    while (true) {
      const ssize_t n = ::recv(conn.get(), map->data() + off, kRecvBytes, 0);
      if (n <= 0) break;
      off = (off + kRecvBytes) % kBufferBytes;
    }
  });
  UniqueFd fd = Connect(ntohs(addr.sin_port));
  SendLoop(state, fd.get());
  fd.reset();
  receiver.join();
}
BENCHMARK(BM_PlainTcpRx)->UseRealTime()->MinTime(1.0);

}  // namespace
}  // namespace devmem

BENCHMARK_MAIN();
