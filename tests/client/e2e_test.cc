// End to end with real processes: devmemd (sim provider) in a private run
// dir, devmem-demo-job and devmem-demo-sender, observed through the client
// library. Every wait is a condition polled against a deadline; the only
// timing check is the issue's "a killed job's binding is released within
// 1 s" (measured and logged; asserted with that bound).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/host_port.h"
#include "client/client.h"
#include "client/demo/pattern.h"
#include "client/dmabuf/dmabuf.h"
#include "client/rx_socket.h"
#include "client/tx_sender.h"
#include "gtest/gtest.h"
#include "tests/testing/wait.h"

#ifndef DEVMEM_BIN_DIR
#error "DEVMEM_BIN_DIR must name the directory with devmemd and the demo"
#endif

namespace devmem {
namespace {

using ::devmem::testing::WaitFor;

const std::string kBin = DEVMEM_BIN_DIR;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A child process with stdout+stderr in a file.
class Proc {
 public:
  Proc(std::vector<std::string> argv, std::string log) : log_(std::move(log)) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen(log_.c_str(), "w", stdout);
      ::dup2(STDOUT_FILENO, STDERR_FILENO);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      std::_Exit(127);
    }
  }
  ~Proc() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      (void)Wait(absl::Seconds(30));
    }
  }
  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadFile(log_); }
  bool Running() {
    Poll();
    return !exited_;
  }
  // Waits for exit; returns the exit code (128+sig if killed), -1 on
  // timeout.
  int Wait(absl::Duration timeout = absl::Seconds(120)) {
    if (!WaitFor([&] { return !Running(); }, timeout)) return -1;
    return status_;
  }

 private:
  void Poll() {
    if (exited_ || pid_ <= 0) return;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
  }
  std::string log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

int CountFds(pid_t pid) {
  DIR* d = ::opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

std::string FdList(pid_t pid) {
  std::string out;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    (void)!::readlink((dir + "/" + e->d_name).c_str(), target,
                      sizeof(target) - 1);
    absl::StrAppend(&out, "  ", e->d_name, " -> ", target, "\n");
  }
  ::closedir(d);
  return out;
}

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/devmem-e2e.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    daemon_ = std::make_unique<Proc>(
        std::vector<std::string>{kBin + "/devmemd", "--run_dir=" + dir_,
                                 "--provider=sim", "--metrics_address=none",
                                 "--allow_all"},
        dir_ + "/devmemd.log");
    ASSERT_TRUE(WaitFor([&] {
      return ReadFile(dir_ + "/devmemd.log").find("event=devmemd_started") !=
                 std::string::npos ||
             !daemon_->Running();
    })) << "devmemd did not start";
    ASSERT_TRUE(daemon_->Running()) << daemon_->Log();
    ClientOptions o;
    o.run_dir = dir_;
    o.client_name = "e2e observer";
    auto c = Client::Connect(o);
    ASSERT_TRUE(c.ok()) << c.status();
    observer_ = *std::move(c);
  }

  void TearDown() override {
    observer_.reset();
    if (daemon_ && daemon_->Running()) {
      ::kill(daemon_->pid(), SIGTERM);
      EXPECT_EQ(daemon_->Wait(), 0) << daemon_->Log();
    }
    daemon_.reset();
    (void)std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  std::unique_ptr<Proc> StartJob(const std::string& name,
                                 std::vector<std::string> extra) {
    std::vector<std::string> argv = {kBin + "/devmem-demo-job", "--run-dir",
                                     dir_, "--endpoint-file",
                                     dir_ + "/" + name + ".ep"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Proc>(argv, dir_ + "/" + name + ".log");
  }

  // Waits for the job's endpoint (its binding exists then).
  std::string Endpoint(const std::string& name, Proc& job) {
    std::string ep;
    EXPECT_TRUE(WaitFor([&] {
      ep = ReadFile(dir_ + "/" + name + ".ep");
      return !ep.empty() || !job.Running();
    })) << job.Log();
    while (!ep.empty() && ep.back() == '\n') ep.pop_back();
    EXPECT_FALSE(ep.empty()) << job.Log();
    return ep;
  }

  std::unique_ptr<Proc> StartSender(const std::string& name,
                                    const std::string& to,
                                    const std::string& bytes) {
    return std::make_unique<Proc>(
        std::vector<std::string>{kBin + "/devmem-demo-sender", "--to", to,
                                 "--bytes", bytes},
        dir_ + "/" + name + "-sender.log");
  }

  absl::StatusOr<std::unique_ptr<Client>> NewClient() {
    ClientOptions o;
    o.run_dir = dir_;
    return Client::Connect(o);
  }
  static RxBindOptions OneQueue() {
    RxBindOptions rx;
    rx.device = "sim0";
    rx.num_queues = 1;
    return rx;
  }

  std::vector<v1::Binding> Active() {
    auto r = observer_->ListBindings();
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->bindings().begin(), r->bindings().end()};
  }

  uint64_t BytesReceived(uint32_t binding) {
    auto s = observer_->GetStats();
    if (!s.ok()) return 0;
    for (const auto& b : s->bindings()) {
      if (b.binding_id() == binding) return b.bytes_received();
    }
    return 0;
  }

  std::string dir_;
  std::unique_ptr<Proc> daemon_;
  std::unique_ptr<Client> observer_;
};

TEST_F(E2eTest, FullFlowVerifiesEveryByteAndReleasesTheBinding) {
  auto job = StartJob("job", {"--queues", "2", "--bytes", "64M"});
  const std::string ep = Endpoint("job", *job);
  std::vector<v1::Binding> active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].queues_size(), 2);
  EXPECT_EQ(active[0].endpoint(), ep);
  auto sender = StartSender("job", ep, "64M");
  EXPECT_EQ(job->Wait(), 0) << job->Log();
  EXPECT_EQ(sender->Wait(), 0) << sender->Log();
  EXPECT_NE(job->Log().find("RESULT OK"), std::string::npos) << job->Log();
  EXPECT_NE(job->Log().find("0 outstanding"), std::string::npos);
  auto b = observer_->GetBinding(active[0].id());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->state(), v1::BINDING_STATE_RELEASED);
  EXPECT_EQ(b->release_reason(), "unbind");
}

TEST_F(E2eTest, KillNineMidStreamReleasesTheBindingAndItsFds) {
  // Baseline with the observer connected (its gRPC channel connects on the
  // first call): everything after is the job's.
  ASSERT_TRUE(observer_->ListDevices().ok());
  ASSERT_TRUE(observer_->GetStats().ok());
  const std::string fds_before = FdList(daemon_->pid());
  const int baseline = CountFds(daemon_->pid());
  ASSERT_GT(baseline, 0);
  auto job = StartJob("job", {"--queues", "1"});
  const std::string ep = Endpoint("job", *job);
  std::vector<v1::Binding> active = Active();
  ASSERT_EQ(active.size(), 1u);
  const uint32_t id = active[0].id();
  auto sender = StartSender("job", ep, "64G");
  ASSERT_TRUE(WaitFor([&] { return BytesReceived(id) > (8u << 20); }))
      << job->Log();
  EXPECT_GT(CountFds(daemon_->pid()), baseline);

  ASSERT_EQ(::kill(job->pid(), SIGKILL), 0);
  const absl::Time killed = absl::Now();
  EXPECT_EQ(job->Wait(), 128 + SIGKILL);
  v1::BindingState state = v1::BINDING_STATE_ACTIVE;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto b = observer_->GetBinding(id);
        if (b.ok()) state = b->state();
        return state != v1::BINDING_STATE_ACTIVE;
      },
      absl::Seconds(30)));
  const absl::Duration unbound = absl::Now() - killed;
  ASSERT_TRUE(WaitFor([&] {
    auto b = observer_->GetBinding(id);
    return b.ok() && b->state() == v1::BINDING_STATE_RELEASED;
  }));
  const absl::Duration released = absl::Now() - killed;
  std::printf("kill -9 -> binding %u unbound after %s, RELEASED after %s\n", id,
              absl::FormatDuration(unbound).c_str(),
              absl::FormatDuration(released).c_str());
  EXPECT_LE(released, absl::Seconds(1)) << "the issue's bound";
  EXPECT_TRUE(Active().empty());
  int fds = -1;
  EXPECT_TRUE(WaitFor([&] {
    fds = CountFds(daemon_->pid());
    return fds == baseline;
  })) << "daemon fds "
      << fds << ", baseline " << baseline << "\nbefore:\n"
      << fds_before << "after:\n"
      << FdList(daemon_->pid());
  // The sender sees its connection closed and stops.
  EXPECT_NE(sender->Wait(), -1);
}

TEST_F(E2eTest, TwoJobsOnDifferentQueuesAtOnce) {
  auto job_a = StartJob("a", {"--queues", "1", "--bytes", "32M"});
  auto job_b = StartJob("b", {"--queues", "2", "--bytes", "32M"});
  const std::string ep_a = Endpoint("a", *job_a);
  const std::string ep_b = Endpoint("b", *job_b);
  std::vector<v1::Binding> active = Active();
  ASSERT_EQ(active.size(), 2u);
  for (uint32_t qa : active[0].queues()) {
    for (uint32_t qb : active[1].queues()) EXPECT_NE(qa, qb);
  }
  auto sa = StartSender("a", ep_a, "32M");
  auto sb = StartSender("b", ep_b, "32M");
  EXPECT_EQ(job_a->Wait(), 0) << job_a->Log();
  EXPECT_EQ(job_b->Wait(), 0) << job_b->Log();
  EXPECT_EQ(sa->Wait(), 0);
  EXPECT_EQ(sb->Wait(), 0);
  EXPECT_TRUE(Active().empty());
}

TEST_F(E2eTest, AJobThatNeverReturnsTokensStallsOnlyItself) {
  auto hog = StartJob("hog", {"--queues", "1", "--buffer-size", "1M",
                              "--no-return", "--idle-timeout", "600"});
  auto good = StartJob("good", {"--queues", "1", "--bytes", "64M"});
  const std::string ep_hog = Endpoint("hog", *hog);
  const std::string ep_good = Endpoint("good", *good);
  uint32_t hog_id = 0;
  for (const v1::Binding& b : Active()) {
    if (b.endpoint() == ep_hog) hog_id = b.id();
  }
  ASSERT_NE(hog_id, 0u);
  auto s_hog = StartSender("hog", ep_hog, "1G");
  // The hog's pool (256 chunks of 4 KiB) runs dry and its sim stops reading.
  ASSERT_TRUE(WaitFor([&] {
    auto s = observer_->GetStats();
    if (!s.ok()) return false;
    for (const auto& b : s->bindings()) {
      if (b.binding_id() == hog_id && b.alloc_fail() > 0) return true;
    }
    return false;
  })) << hog->Log();
  auto s_good = StartSender("good", ep_good, "64M");
  EXPECT_EQ(good->Wait(), 0) << good->Log();
  EXPECT_EQ(s_good->Wait(), 0);
  EXPECT_TRUE(hog->Running()) << "the stalled job is still waiting";
  EXPECT_TRUE(s_hog->Running()) << "its sender is held back by TCP";
  EXPECT_LE(BytesReceived(hog_id), 1u << 20);
}

TEST_F(E2eTest, BindingRaiiAndSessionClose) {
  ClientOptions o;
  o.run_dir = dir_;
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  auto buf = Dmabuf::CreateMemfd("raii", 1 << 20);
  ASSERT_TRUE(buf.ok());
  RxBindOptions rx;
  rx.device = "sim0";
  rx.queue_ids = {5};
  uint32_t first = 0;
  {
    auto b = (*client)->BindRx(buf->fd(), rx);
    ASSERT_TRUE(b.ok()) << b.status();
    first = b->id();
    Binding moved = *std::move(b);  // the move leaves nothing to unbind
    EXPECT_TRUE(moved.active());
    EXPECT_EQ(Active().size(), 1u);
  }  // destroyed: unbound
  auto after = observer_->GetBinding(first);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->state(), v1::BINDING_STATE_ACTIVE);
  EXPECT_EQ(after->release_reason(), "unbind");

  // Queue 5 is free again; this binding outlives its Client.
  auto b = (*client)->BindRx(buf->fd(), rx);
  ASSERT_TRUE(b.ok()) << b.status();
  const uint32_t second = b->id();
  client->reset();  // closes the session
  EXPECT_TRUE(WaitFor([&] {
    auto v = observer_->GetBinding(second);
    return v.ok() && v->state() == v1::BINDING_STATE_RELEASED;
  }));
  auto v = observer_->GetBinding(second);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->release_reason(), "session closed");
  b = absl::UnavailableError("drop the binding after its client");

  // Errors carry the daemon's code and message.
  auto c2 = Client::Connect(o);
  ASSERT_TRUE(c2.ok());
  rx.queue_ids = {99};
  auto bad = (*c2)->BindRx(buf->fd(), rx);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument)
      << bad.status();
  EXPECT_NE(bad.status().message().find("99"), absl::string_view::npos)
      << bad.status();
}

TEST_F(E2eTest, TxSenderSendsRangesAndGetsCompletions) {
  // The peer: a plain TCP listener that checks the stream.
  UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(l.get(), 1), 0);
  ASSERT_EQ(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  constexpr uint64_t kTotal = 8 << 20;
  std::optional<uint64_t> bad;
  uint64_t received = 0;
  std::thread peer([&] {
    UniqueFd c(::accept(l.get(), nullptr, nullptr));
    std::vector<std::byte> buf(1 << 16);
    for (;;) {
      const ssize_t n = ::recv(c.get(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      if (!bad) {
        bad = demo::VerifyPattern(received,
                                  absl::MakeConstSpan(buf.data(), size_t(n)));
      }
      received += static_cast<uint64_t>(n);
      if (received >= kTotal) break;
    }
  });

  ClientOptions o;
  o.run_dir = dir_;
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  auto buf = Dmabuf::CreateMemfd("tx", 1 << 20);
  ASSERT_TRUE(buf.ok());
  auto map = buf->Map();
  ASSERT_TRUE(map.ok());
  auto binding = (*client)->BindTx(buf->fd(), "sim0");
  ASSERT_TRUE(binding.ok()) << binding.status();
  auto tx = (*client)->OpenTx(*binding,
                              absl::StrCat("127.0.0.1:", ntohs(a.sin_port)));
  ASSERT_TRUE(tx.ok()) << tx.status();
  uint64_t pos = 0;
  while (pos < kTotal) {
    auto r = tx->Allocate(64 << 10);
    if (!r.ok()) {
      ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable)
          << r.status();
      ASSERT_TRUE(tx->PollCompletions(absl::Seconds(10)).ok());
      continue;
    }
    demo::FillPattern(pos, absl::MakeSpan(map->data() + r->offset, r->length));
    ASSERT_TRUE(tx->Send(*r).ok());
    pos += r->length;
  }
  ASSERT_TRUE(tx->Flush(absl::Seconds(30)).ok());
  EXPECT_EQ(tx->stats().in_flight, 0u);
  EXPECT_EQ(tx->stats().completed, tx->stats().sends);
  peer.join();
  EXPECT_EQ(received, kTotal);
  EXPECT_FALSE(bad.has_value()) << "first bad byte at " << *bad;
}

// Sends `bytes` of the demo pattern to `endpoint` and closes.
void SendPattern(const std::string& endpoint, uint64_t bytes) {
  absl::StatusOr<UniqueFd> fd = ConnectTcp(endpoint);
  ASSERT_TRUE(fd.ok()) << fd.status();
  std::vector<std::byte> block(1 << 20);
  for (uint64_t off = 0; off < bytes;) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(block.size(), bytes - off));
    demo::FillPattern(off, absl::MakeSpan(block.data(), n));
    for (size_t done = 0; done < n;) {
      const ssize_t w =
          ::send(fd->get(), block.data() + done, n - done, MSG_NOSIGNAL);
      ASSERT_GT(w, 0) << std::strerror(errno);
      done += static_cast<size_t>(w);
    }
    off += n;
  }
}

// Receives one flow on `rx`, checking every byte; returns the bytes seen.
uint64_t ReceiveFlow(RxSocket& rx, const DmabufMapping& map) {
  uint64_t offset = 0;
  for (;;) {
    absl::StatusOr<RxBatch> b = rx.Receive(absl::Seconds(60));
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok() || b->end_of_stream) return offset;
    EXPECT_FALSE(b->empty()) << "no data in 60 s";
    if (b->empty()) return offset;
    for (const Frag& f : b->frags) {
      auto bad = demo::VerifyPattern(
          offset, absl::MakeConstSpan(map.data() + f.offset, f.size));
      EXPECT_FALSE(bad.has_value()) << "wrong byte at " << *bad;
      offset += f.size;
    }
    EXPECT_TRUE(rx.Return(b->frags).ok());
  }
}

TEST_F(E2eTest, ReceiveLoopsOfOneClientRunInParallel) {
  auto client = NewClient();
  ASSERT_TRUE(client.ok()) << client.status();
  auto buf_a = Dmabuf::CreateMemfd("a", 4 << 20);
  auto buf_b = Dmabuf::CreateMemfd("b", 4 << 20);
  ASSERT_TRUE(buf_a.ok() && buf_b.ok());
  auto map_a = buf_a->Map();
  auto map_b = buf_b->Map();
  ASSERT_TRUE(map_a.ok() && map_b.ok());
  const RxBindOptions rx = OneQueue();
  auto a = (*client)->BindRx(buf_a->fd(), rx);
  auto b = (*client)->BindRx(buf_b->fd(), rx);
  ASSERT_TRUE(a.ok() && b.ok());
  auto rx_a = (*client)->OpenRx(*a);
  auto rx_b = (*client)->OpenRx(*b);
  ASSERT_TRUE(rx_a.ok() && rx_b.ok());
  // A's loop blocks in Receive with nothing sent to it. If the two loops
  // shared a lock, B's loop below could not make progress.
  absl::StatusOr<RxBatch> first_a;
  std::thread loop_a(
      [&] { first_a = rx_a->Receive(absl::InfiniteDuration()); });
  constexpr uint64_t kBytes = 32 << 20;
  std::thread send_b([&] { SendPattern(b->endpoint(), kBytes); });
  EXPECT_EQ(ReceiveFlow(*rx_b, *map_b), kBytes);
  send_b.join();
  // Only now does A get anything.
  SendPattern(a->endpoint(), 4096);
  loop_a.join();
  ASSERT_TRUE(first_a.ok()) << first_a.status();
  ASSERT_FALSE(first_a->frags.empty());
  EXPECT_EQ(first_a->frags[0].binding_id, a->id());
  EXPECT_TRUE(rx_a->Return(first_a->frags).ok());
}

TEST_F(E2eTest, ADataPathHandedToAnotherProcessCarriesOnlyItsFlow) {
  auto client = NewClient();
  ASSERT_TRUE(client.ok()) << client.status();
  auto buf_a = Dmabuf::CreateMemfd("handed", 4 << 20);
  auto buf_b = Dmabuf::CreateMemfd("kept", 4 << 20);
  ASSERT_TRUE(buf_a.ok() && buf_b.ok());
  auto map_b = buf_b->Map();
  ASSERT_TRUE(map_b.ok());
  const RxBindOptions rx = OneQueue();
  auto a = (*client)->BindRx(buf_a->fd(), rx);
  auto b = (*client)->BindRx(buf_b->fd(), rx);
  ASSERT_TRUE(a.ok() && b.ok());
  auto dp = (*client)->TakeDataPath(*a);
  ASSERT_TRUE(dp.ok()) << dp.status();
  // Taken: the client cannot open it a second time.
  EXPECT_EQ((*client)->OpenRx(*a).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The reader inherits the data path and the dmabuf, nothing else of ours.
  const std::string log = dir_ + "/reader.log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    (void)::fcntl(dp->get(), F_SETFD, 0);
    (void)::fcntl(buf_a->fd().get(), F_SETFD, 0);
    std::freopen(log.c_str(), "w", stdout);
    ::dup2(STDOUT_FILENO, STDERR_FILENO);
    const std::string bin = kBin + "/data_path_reader";
    const std::string f1 = std::to_string(dp->get());
    const std::string f2 = std::to_string(buf_a->fd().get());
    const std::string id = std::to_string(a->id());
    ::execl(bin.c_str(), bin.c_str(), f1.c_str(), f2.c_str(), id.c_str(),
            nullptr);
    std::_Exit(127);
  }
  ASSERT_GT(pid, 0);
  dp->reset();  // ours closes; the reader's copy keeps the data path
  constexpr uint64_t kA = 8 << 20;
  constexpr uint64_t kB = 2 << 20;
  std::thread send_a([&] { SendPattern(a->endpoint(), kA); });
  std::thread send_b([&] { SendPattern(b->endpoint(), kB); });
  auto rx_b = (*client)->OpenRx(*b);
  ASSERT_TRUE(rx_b.ok());
  EXPECT_EQ(ReceiveFlow(*rx_b, *map_b), kB);  // only B's flow here
  send_a.join();
  send_b.join();
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find(absl::StrCat("received ", kA, " bytes")),
            std::string::npos)
      << ReadFile(log);
}

TEST_F(E2eTest, AnUnboundBindingsDataPathReadsEofAndRefusesSends) {
  auto client = NewClient();
  ASSERT_TRUE(client.ok()) << client.status();
  auto rbuf = Dmabuf::CreateMemfd("rx", 1 << 20);
  auto tbuf = Dmabuf::CreateMemfd("tx", 1 << 20);
  ASSERT_TRUE(rbuf.ok() && tbuf.ok());
  const RxBindOptions rx = OneQueue();
  auto r = (*client)->BindRx(rbuf->fd(), rx);
  auto t = (*client)->BindTx(tbuf->fd(), "sim0");
  ASSERT_TRUE(r.ok() && t.ok());
  auto rx_sock = (*client)->OpenRx(*r);
  ASSERT_TRUE(rx_sock.ok());
  // A peer to connect the TX binding to.
  UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  ASSERT_EQ(::listen(l.get(), 1), 0);
  ASSERT_EQ(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&addr), &len),
            0);
  auto tx =
      (*client)->OpenTx(*t, absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)));
  ASSERT_TRUE(tx.ok()) << tx.status();

  ASSERT_TRUE(r->Unbind().ok());
  ASSERT_TRUE(t->Unbind().ok());
  absl::StatusOr<RxBatch> got = rx_sock->Receive(absl::Seconds(30));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable)
      << got.status();
  EXPECT_NE(got.status().message().find("released"), std::string::npos)
      << got.status();
  auto range = tx->Allocate(4096);
  ASSERT_TRUE(range.ok());
  absl::Status s = tx->Send(*range);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("released"), std::string::npos) << s;
}

}  // namespace
}  // namespace devmem
