// End-to-end throughput of the demo path against plain loopback TCP.
//
//   BM_SimDevmem:   a sender thread writes to the binding's sim endpoint;
//                   devmemd (started here, from the same bin dir) receives
//                   into 4 KiB chunks of the job's memfd and sends the
//                   dmabuf_cmsg records on the binding's own data-path
//                   socket (devmemd only handed it over); this process
//                   receives them with RxSocket and returns the tokens.
//   BM_LoopbackTcp: the baseline: the same sender, readv straight into
//                   4 KiB chunks of a buffer of the same size.
// Both move kBytesPerIteration per iteration; bytes_per_second is the
// figure to compare (shared/reference/performance.md: ratios within a run).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "client/client.h"
#include "client/demo/pattern.h"
#include "client/dmabuf/dmabuf.h"
#include "client/rx_socket.h"

namespace devmem {
namespace {

constexpr uint64_t kBytesPerIteration = 256ull << 20;
constexpr uint64_t kBufferBytes = 64ull << 20;
constexpr uint32_t kChunk = 4096;

std::string BinDir() {
  char buf[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string p(buf, n > 0 ? static_cast<size_t>(n) : 0);
  return p.substr(0, p.find_last_of('/'));
}

// Sends `bytes` of pattern to 127.0.0.1:port and closes.
void Send(uint16_t port, uint64_t bytes) {
  static const std::vector<std::byte> block = [] {
    std::vector<std::byte> b(1 << 20);
    demo::FillPattern(0, absl::MakeSpan(b));
    return b;
  }();
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror("connect");
    std::abort();
  }
  uint64_t sent = 0;
  while (sent < bytes) {
    const size_t n = std::min<uint64_t>(block.size(), bytes - sent);
    const ssize_t w = ::send(s, block.data(), n, MSG_NOSIGNAL);
    if (w <= 0) break;
    sent += static_cast<uint64_t>(w);
  }
  ::shutdown(s, SHUT_WR);
  char c;
  while (::recv(s, &c, 1, 0) > 0) {
  }
  ::close(s);
}

class Daemon {
 public:
  Daemon() {
    char tmpl[] = "/tmp/devmem-bench.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string log = dir_ + "/devmemd.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen(log.c_str(), "w", stderr);
      const std::string bin = BinDir() + "/devmemd";
      const std::string rd = "--run_dir=" + dir_;
      ::execl(bin.c_str(), bin.c_str(), rd.c_str(), "--provider=sim",
              "--metrics_address=none", "--allow_all", "--log_level=warning",
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (::access((dir_ + "/fd.sock").c_str(), F_OK) != 0 ||
           ::access((dir_ + "/api.sock").c_str(), F_OK) != 0) {
      if (absl::Now() > deadline) {
        std::fprintf(stderr, "devmemd did not start\n");
        std::abort();
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  ~Daemon() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    (void)std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

void BM_SimDevmem(benchmark::State& state) {
  Daemon daemon;
  ClientOptions o;
  o.run_dir = daemon.dir();
  auto client = Client::Connect(o);
  if (!client.ok()) {
    state.SkipWithError(client.status().ToString().c_str());
    return;
  }
  auto buf = Dmabuf::CreateMemfd("bench", kBufferBytes);
  RxBindOptions rx;
  rx.device = "sim0";
  rx.num_queues = 1;
  rx.chunk_size = kChunk;
  auto binding = (*client)->BindRx(buf->fd(), rx);
  if (!binding.ok()) {
    state.SkipWithError(binding.status().ToString().c_str());
    return;
  }
  auto sock = (*client)->OpenRx(*binding);
  const std::string ep = binding->endpoint();
  const uint16_t port =
      static_cast<uint16_t>(std::stoi(ep.substr(ep.rfind(':') + 1)));
  uint64_t frags = 0, batches = 0;
  for (auto _ : state) {
    std::thread sender([port] { Send(port, kBytesPerIteration); });
    uint64_t got = 0;
    for (;;) {
      auto b = sock->Receive(absl::Seconds(10));
      if (!b.ok()) {
        state.SkipWithError(b.status().ToString().c_str());
        break;
      }
      if (b->end_of_stream) break;
      got += b->bytes;
      frags += b->frags.size();
      ++batches;
      if (!sock->Return(b->frags).ok()) std::abort();
    }
    sender.join();
    if (got != kBytesPerIteration) {
      state.SkipWithError("short stream");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * kBytesPerIteration);
  state.counters["frags_per_batch"] =
      batches ? static_cast<double>(frags) / batches : 0;
}
BENCHMARK(BM_SimDevmem)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(8);

void BM_LoopbackTcp(benchmark::State& state) {
  std::vector<std::byte> buffer(kBufferBytes);
  const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::listen(l, 4);
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);
  const size_t chunks = kBufferBytes / kChunk;
  std::vector<iovec> iov(64);
  for (auto _ : state) {
    std::thread sender([port] { Send(port, kBytesPerIteration); });
    const int c = ::accept(l, nullptr, nullptr);
    uint64_t got = 0;
    size_t next = 0;
    for (;;) {
      // Like the sim: up to 64 chunks of the buffer per read, ring-wise.
      for (auto& v : iov) {
        v.iov_base = buffer.data() + (next % chunks) * kChunk;
        v.iov_len = kChunk;
        ++next;
      }
      const ssize_t n = ::readv(c, iov.data(), static_cast<int>(iov.size()));
      if (n <= 0) break;
      got += static_cast<uint64_t>(n);
      next -= iov.size() - (static_cast<size_t>(n) + kChunk - 1) / kChunk;
    }
    ::close(c);
    sender.join();
    benchmark::DoNotOptimize(got);
  }
  ::close(l);
  state.SetBytesProcessed(state.iterations() * kBytesPerIteration);
}
BENCHMARK(BM_LoopbackTcp)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(8);

}  // namespace
}  // namespace devmem

BENCHMARK_MAIN();
