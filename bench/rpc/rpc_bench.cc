// devmem_rpc_bench: what devmemd's RPCs cost against a bare gRPC call.
//
//   BM_BareUnary        an empty unary on a bare server, same Unix transport
//   BM_BindUnbind       RegisterDmabuf (a 1 GiB memfd over SCM_RIGHTS) +
//                       Bind (1 RX queue, sim provider) + Unbind, one round
//                       trip per iteration; p50/p99 in counters
//   BM_GetStatsQps      GetStats from 8 concurrent clients for 2 s
//   BM_BareQps          the bare empty unary, same 8 clients, same 2 s
//   BM_Sessions1000     1,000 sessions held open on a devmemd process; its
//                       RSS before and after
// Both servers run in this process (one devmemd Daemon, one bare server);
// BM_Sessions1000 spawns bin/devmemd.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "client/dmabuf/dmabuf.h"
#include "devmem/v1/devmem.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "providers/sim/sim_provider.h"
#include "server/config.h"
#include "server/daemon.h"
#include "session/fdsock_client.h"

namespace devmem {
namespace {

namespace v1 = ::devmem::v1;

// The bare baseline: the same service type, every method an empty return.
class BareService final : public v1::Devmem::Service {
  grpc::Status GetStats(grpc::ServerContext*, const v1::GetStatsRequest*,
                        v1::GetStatsResponse*) override {
    return grpc::Status::OK;
  }
};

struct Env {
  std::string dir;
  std::unique_ptr<server::Daemon> daemon;
  BareService bare;
  std::unique_ptr<grpc::Server> bare_server;
  std::string bare_addr;

  Env() {
    char tmpl[] = "/tmp/devmem-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    v1::DaemonConfig c;
    c.set_run_dir(dir);
    c.set_metrics_address("none");
    c.mutable_allow()->set_allow_all(true);
    c.mutable_quota()->set_max_bound_bytes(uint64_t{1} << 42);
    server::ApplyDefaults(&c);
    auto p = CreateSimProvider({.spec = "sim0:rx=16,tx=16"});
    daemon = std::make_unique<server::Daemon>(*std::move(p), c);
    if (!daemon->Start().ok()) std::abort();
    bare_addr = "unix:" + dir + "/bare.sock";
    grpc::ServerBuilder b;
    b.AddListeningPort(bare_addr, grpc::InsecureServerCredentials());
    b.RegisterService(&bare);
    bare_server = b.BuildAndStart();
  }
  std::unique_ptr<v1::Devmem::Stub> Stub(bool bare_server_stub) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // own connection
    return v1::Devmem::NewStub(grpc::CreateCustomChannel(
        bare_server_stub ? bare_addr : "unix:" + daemon->api_socket(),
        grpc::InsecureChannelCredentials(), args));
  }
};

Env& GetEnv() {
  static Env* env = new Env;
  return *env;
}

void Percentiles(benchmark::State& state, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  if (us.empty()) return;
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
}

void BM_BareUnary(benchmark::State& state) {
  auto stub = GetEnv().Stub(true);
  std::vector<double> us;
  for (auto _ : state) {
    const absl::Time t0 = absl::Now();
    grpc::ClientContext ctx;
    v1::GetStatsResponse resp;
    if (!stub->GetStats(&ctx, {}, &resp).ok()) state.SkipWithError("rpc");
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
  Percentiles(state, us);
}
BENCHMARK(BM_BareUnary)->Iterations(2000)->UseRealTime();

void BM_BindUnbind(benchmark::State& state) {
  Env& env = GetEnv();
  auto stub = env.Stub(false);
  auto session = fdsock::FdSessionClient::Connect(env.daemon->fd_socket());
  auto buf = Dmabuf::CreateMemfd("bench", uint64_t{1} << 30);
  if (!session.ok() || !buf.ok()) {
    state.SkipWithError("setup");
    return;
  }
  auto& s = **session;
  std::vector<double> us;
  for (auto _ : state) {
    const absl::Time t0 = absl::Now();
    auto t = s.RegisterDmabuf(buf->fd());
    v1::BindRequest req;
    req.set_ticket(t.ok() ? t->ticket() : "");
    req.set_device("sim0");
    req.mutable_rx()->set_num_queues(1);
    v1::BindResponse resp;
    grpc::ClientContext ctx;
    for (const auto& [k, v] : s.Metadata()) ctx.AddMetadata(k, v);
    grpc::Status st = stub->Bind(&ctx, req, &resp);
    if (!st.ok()) {
      state.SkipWithError(st.error_message().c_str());
      return;
    }
    v1::UnbindRequest u;
    u.set_binding_id(resp.binding().id());
    v1::UnbindResponse ur;
    grpc::ClientContext uctx;
    for (const auto& [k, v] : s.Metadata()) uctx.AddMetadata(k, v);
    if (!stub->Unbind(&uctx, u, &ur).ok()) state.SkipWithError("unbind");
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
  Percentiles(state, us);
}
BENCHMARK(BM_BindUnbind)->Iterations(300)->UseRealTime();

void Qps(benchmark::State& state, bool bare) {
  Env& env = GetEnv();
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<v1::Devmem::Stub>> stubs;
  for (int i = 0; i < kClients; ++i) stubs.push_back(env.Stub(bare));
  // One real binding so GetStats has something to report.
  auto session = fdsock::FdSessionClient::Connect(env.daemon->fd_socket());
  auto buf = Dmabuf::CreateMemfd("qps", 64 << 20);
  if (!session.ok() || !buf.ok()) return;
  auto t = (*session)->RegisterDmabuf(buf->fd());
  v1::BindRequest req;
  req.set_ticket(t.ok() ? t->ticket() : "");
  req.set_device("sim0");
  req.mutable_rx()->set_num_queues(1);
  v1::BindResponse resp;
  grpc::ClientContext ctx;
  for (const auto& [k, v] : (*session)->Metadata()) ctx.AddMetadata(k, v);
  (void)env.Stub(false)->Bind(&ctx, req, &resp);
  auto meta = (*session)->Metadata();
  for (auto _ : state) {
    std::atomic<uint64_t> calls{0};
    const absl::Time end = absl::Now() + absl::Seconds(2);
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
      threads.emplace_back([&, i] {
        uint64_t n = 0;
        while (absl::Now() < end) {
          grpc::ClientContext c;
          for (const auto& [k, v] : meta) c.AddMetadata(k, v);
          v1::GetStatsResponse r;
          if (stubs[i]->GetStats(&c, {}, &r).ok()) ++n;
        }
        calls += n;
      });
    }
    for (auto& th : threads) th.join();
    state.counters["qps"] = static_cast<double>(calls.load()) / 2.0;
  }
}
void BM_GetStatsQps(benchmark::State& state) { Qps(state, false); }
void BM_BareQps(benchmark::State& state) { Qps(state, true); }
BENCHMARK(BM_BareQps)->Iterations(1)->UseRealTime();
BENCHMARK(BM_GetStatsQps)->Iterations(1)->UseRealTime();

double RssMib(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  }
  return -1;
}

std::string BinDir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string exe(buf, n > 0 ? n : 0);
  return exe.substr(0, exe.rfind('/'));
}

void BM_Sessions1000(benchmark::State& state) {
  rlimit rl{8192, 8192};
  ::setrlimit(RLIMIT_NOFILE, &rl);  // inherited by devmemd
  char tmpl[] = "/tmp/devmem-bench1k-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    const std::string bin = BinDir() + "/devmemd";
    ::execl(bin.c_str(), bin.c_str(), "--run-dir", dir.c_str(),
            "--metrics-address", "none", "--allow-all", nullptr);
    _exit(98);
  }
  struct stat st;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (::stat((dir + "/api.sock").c_str(), &st) != 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // polling for startup
  }
  const double before = RssMib(pid);
  for (auto _ : state) {
    std::vector<std::unique_ptr<fdsock::FdSessionClient>> sessions;
    for (int i = 0; i < 1000; ++i) {
      auto s = fdsock::FdSessionClient::Connect(dir + "/fd.sock", "bench");
      if (!s.ok()) {
        state.SkipWithError(std::string(s.status().message()).c_str());
        break;
      }
      sessions.push_back(*std::move(s));
    }
    state.counters["sessions"] = sessions.size();
    state.counters["rss_before_mib"] = before;
    state.counters["rss_1000_mib"] = RssMib(pid);
  }
  ::kill(pid, SIGTERM);
  int status;
  ::waitpid(pid, &status, 0);
  std::system(("rm -rf " + dir).c_str());
}
BENCHMARK(BM_Sessions1000)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace devmem

BENCHMARK_MAIN();
