// devmemd in-process: the real Daemon (gRPC on a temp Unix socket, fd
// socket, metrics) over the sim provider, driven by the client-side helpers.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/dmabuf/dmabuf.h"
#include "devmem/v1/devmem.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "pool/token_range.h"
#include "providers/sim/sim_provider.h"
#include "server/config.h"
#include "server/daemon.h"
#include "server/grpc_status.h"
#include "session/fdsock_client.h"
#include "session/fdsock_codec.h"
#include "tests/server/test_util.h"
#include "tests/testing/data_path_peer.h"
#include "tests/testing/wait.h"

namespace devmem::server {
namespace {

using devmem::testing::CountFds;
using devmem::testing::WaitFor;
using fdsock::FdSessionClient;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_dir_ = devmem::testing::TempRunDir();
    v1::DaemonConfig c;
    c.set_run_dir(run_dir_);
    c.set_metrics_address("127.0.0.1:0");
    c.mutable_allow()->set_allow_all(true);
    ApplyDefaults(&c);
    ASSERT_TRUE(ValidateConfig(c).ok());
    auto p = CreateSimProvider({.spec = "sim0:rx=8,tx=8"});
    ASSERT_TRUE(p.ok()) << p.status();
    daemon_ = std::make_unique<Daemon>(*std::move(p), c);
    ASSERT_TRUE(daemon_->Start().ok());
    channel_ = grpc::CreateChannel("unix:" + daemon_->api_socket(),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Devmem::NewStub(channel_);
  }
  void TearDown() override {
    stub_.reset();
    channel_.reset();
    daemon_.reset();
    ::rmdir(run_dir_.c_str());
  }

  std::unique_ptr<FdSessionClient> Session() {
    auto s = FdSessionClient::Connect(daemon_->fd_socket(), "service_test");
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  static void Auth(grpc::ClientContext* ctx, const FdSessionClient& s) {
    for (const auto& [k, v] : s.Metadata()) ctx->AddMetadata(k, v);
  }
  absl::StatusOr<v1::Binding> BindRx(FdSessionClient& s, const Dmabuf& buf,
                                     uint32_t n) {
    auto t = s.RegisterDmabuf(buf.fd(), "buf");
    if (!t.ok()) return t.status();
    v1::BindRequest req;
    req.set_ticket(t->ticket());
    req.set_device("sim0");
    req.mutable_rx()->set_num_queues(n);
    v1::BindResponse resp;
    grpc::ClientContext ctx;
    Auth(&ctx, s);
    grpc::Status st = stub_->Bind(&ctx, req, &resp);
    if (!st.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                          st.error_message());
    }
    return resp.binding();
  }
  v1::Binding Get(uint32_t id, FdSessionClient& s) {
    v1::GetBindingRequest req;
    req.set_binding_id(id);
    v1::GetBindingResponse resp;
    grpc::ClientContext ctx;
    Auth(&ctx, s);
    EXPECT_TRUE(stub_->GetBinding(&ctx, req, &resp).ok());
    return resp.binding();
  }

  std::string run_dir_;
  std::unique_ptr<Daemon> daemon_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Devmem::Stub> stub_;
};

TEST_F(ServiceTest, HealthServing) {
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  grpc::ByteBuffer req, resp;  // HealthCheckRequest{} is empty
  grpc::Slice empty("");
  req = grpc::ByteBuffer(&empty, 1);
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                    &req, &resp, [&](grpc::Status s) {
                      status = s;
                      done.Notify();
                    });
  done.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

TEST_F(ServiceTest, ListDevicesAnonymous) {
  grpc::ClientContext ctx;
  v1::ListDevicesResponse resp;
  ASSERT_TRUE(stub_->ListDevices(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.provider(), "sim");
  ASSERT_EQ(resp.devices_size(), 1);
  EXPECT_EQ(resp.devices(0).name(), "sim0");
  EXPECT_EQ(resp.devices(0).rx_queues(), 8u);
  EXPECT_EQ(resp.devices(0).free_rx_queues(), 7u);
}

TEST_F(ServiceTest, BindReceiveReturnUnbind) {
  auto s = Session();
  ASSERT_NE(s, nullptr);
  auto buf = Dmabuf::CreateMemfd("rx", 4 << 20);
  ASSERT_TRUE(buf.ok());
  auto b = BindRx(*s, *buf, 2);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->state(), v1::BINDING_STATE_ACTIVE);
  EXPECT_EQ(b->queues_size(), 2);
  EXPECT_EQ(b->queues(0), 6u);
  EXPECT_EQ(b->queues(1), 7u);
  EXPECT_EQ(b->chunk_size(), 4096u);
  ASSERT_FALSE(b->endpoint().empty());

  EXPECT_TRUE(b->data_path());

  // The data path came over the session, before the Bind reply, with its fd.
  auto ev = s->NextEvent(absl::ZeroDuration());
  ASSERT_TRUE(ev.ok()) << ev.status();
  ASSERT_TRUE(ev->has_value()) << "no DataPath before the Bind reply";
  ASSERT_TRUE((*ev)->message.has_data_path());
  EXPECT_EQ((*ev)->message.data_path().binding_id(), b->id());
  EXPECT_EQ((*ev)->message.request_id(), 0u);
  ASSERT_TRUE((*ev)->fd.ok());
  devmem::testing::DataPathPeer dp(std::move((*ev)->fd));

  // Bytes sent to the endpoint land in the dmabuf and come back as frags on
  // the binding's own data path; the session carries none of them.
  std::string payload(10000, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = char('a' + i % 26);
  UniqueFd tcp = devmem::testing::SendTcp(b->endpoint(), payload);
  ASSERT_TRUE(tcp.ok());
  auto map = buf->Map();
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(dp.WaitBytes(payload.size()));
  std::string got;
  std::vector<Token> tokens;
  for (const uapi::DmabufCmsg& f : dp.Take()) {
    EXPECT_EQ(f.dmabuf_id, b->id());
    got.append(reinterpret_cast<const char*>(map->data()) + f.frag_offset,
               f.frag_size);
    tokens.push_back(f.frag_token);
  }
  EXPECT_EQ(got, payload);
  const std::vector<std::vector<TokenRange>> releases = CoalesceTokens(tokens);
  ASSERT_EQ(releases.size(), 1u);
  TokenRelease ret = dp.Dontneed(releases[0]);
  ASSERT_TRUE(ret.status.ok()) << ret.status;
  EXPECT_EQ(ret.freed, tokens.size());
  EXPECT_EQ(ret.rejected, 0u);
  // Returning them again is rejected without disturbing anything.
  ret = dp.Dontneed(releases[0]);
  EXPECT_EQ(ret.rejected, tokens.size());
  auto none = s->NextEvent(absl::ZeroDuration());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value()) << "the session carried data-path traffic";

  {
    grpc::ClientContext ctx;
    Auth(&ctx, *s);
    v1::GetStatsResponse st;
    ASSERT_TRUE(stub_->GetStats(&ctx, {}, &st).ok());
    EXPECT_EQ(st.sessions(), 1u);
    EXPECT_EQ(st.bindings_active(), 1u);
    ASSERT_EQ(st.bindings_size(), 1);
    EXPECT_EQ(st.bindings(0).bytes_received(), payload.size());
    EXPECT_EQ(st.bindings(0).pool().lent_tokens(), 0u);
    ASSERT_EQ(st.devices_size(), 1);
    EXPECT_EQ(st.devices(0).queues_in_use(), 2u);
  }
  grpc::ClientContext ctx;
  Auth(&ctx, *s);
  v1::UnbindRequest ureq;
  ureq.set_binding_id(b->id());
  v1::UnbindResponse uresp;
  ASSERT_TRUE(stub_->Unbind(&ctx, ureq, &uresp).ok());
  EXPECT_NE(uresp.binding().state(), v1::BINDING_STATE_ACTIVE);
  EXPECT_EQ(uresp.binding().release_reason(), "unbind");
  EXPECT_TRUE(WaitFor(
      [&] { return Get(b->id(), *s).state() == v1::BINDING_STATE_RELEASED; }));
  // The data path reads EOF; the session heard why.
  EXPECT_TRUE(dp.WaitEof());
  auto closed = s->NextEvent(absl::Seconds(10));
  ASSERT_TRUE(closed.ok() && closed->has_value());
  ASSERT_TRUE((*closed)->message.has_binding_closed());
  EXPECT_EQ((*closed)->message.binding_closed().binding_id(), b->id());
}

TEST_F(ServiceTest, AuthenticationAndLocality) {
  auto s = Session();
  auto buf = Dmabuf::CreateMemfd("a", 1 << 20);
  ASSERT_TRUE(buf.ok());
  auto t = s->RegisterDmabuf(buf->fd());
  ASSERT_TRUE(t.ok());
  v1::BindRequest req;
  req.set_ticket(t->ticket());
  req.set_device("sim0");
  req.mutable_rx()->set_num_queues(1);
  v1::BindResponse resp;
  {
    grpc::ClientContext ctx;  // no session
    EXPECT_EQ(stub_->Bind(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("devmem-session", absl::StrCat(s->session_id()));
    ctx.AddMetadata("devmem-secret", std::string(32, '0'));
    EXPECT_EQ(stub_->Bind(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::ClientContext ctx2;
    ctx2.AddMetadata("devmem-session", "not-a-number");
    ctx2.AddMetadata("devmem-secret", s->secret());
    v1::ListDevicesResponse l;
    EXPECT_EQ(stub_->ListDevices(&ctx2, {}, &l).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    // The in-process channel counts as local; the ticket was not burnt by
    // the rejected calls.
    auto inproc = v1::Devmem::NewStub(daemon_->InProcessChannel());
    grpc::ClientContext ctx;
    Auth(&ctx, *s);
    grpc::Status st = inproc->Bind(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto other = Session();
  grpc::ClientContext ctx;
  Auth(&ctx, *other);
  v1::UnbindRequest u;
  u.set_binding_id(resp.binding().id());
  v1::UnbindResponse ur;
  EXPECT_EQ(stub_->Unbind(&ctx, u, &ur).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// The release itself; how long it takes is a figure, printed here and
// measured across processes in devmemd_process_test (no wall-clock asserts).
TEST_F(ServiceTest, SessionCloseReleasesTheBinding) {
  auto watcher = Session();
  auto s = Session();
  auto buf = Dmabuf::CreateMemfd("c", 1 << 20);
  ASSERT_TRUE(buf.ok());
  auto b = BindRx(*s, *buf, 3);
  ASSERT_TRUE(b.ok()) << b.status();
  const absl::Time t0 = absl::Now();
  s.reset();  // the job exits
  // RELEASED comes after the provider binding is gone (DRAINING before).
  ASSERT_TRUE(WaitFor([&] {
    return Get(b->id(), *watcher).state() == v1::BINDING_STATE_RELEASED;
  }));
  const absl::Duration took = absl::Now() - t0;
  std::printf("session close -> binding released in %s\n",
              absl::FormatDuration(took).c_str());
  EXPECT_EQ(Get(b->id(), *watcher).release_reason(), "session closed");
  grpc::ClientContext ctx;
  v1::ListDevicesResponse l;
  ASSERT_TRUE(stub_->ListDevices(&ctx, {}, &l).ok());
  EXPECT_EQ(l.devices(0).free_rx_queues(), 7u);
}

// Raw fd-socket peer for the bad-input tests.
class RawPeer {
 public:
  explicit RawPeer(const std::string& path) {
    auto s = ConnectSeqPacket(path);
    EXPECT_TRUE(s.ok());
    sock_ = *std::move(s);
  }
  void SendBytes(std::string_view b, std::vector<BorrowedFd> fds = {}) {
    ASSERT_TRUE(SendFrame(sock_.borrow(), b, fds).ok());
  }
  void Send(const v1::FdMessage& m, std::vector<BorrowedFd> fds = {}) {
    ASSERT_TRUE(fdsock::SendMessage(sock_.borrow(), m, fds).ok());
  }
  // The reply's error reason ("" if not an error); "<eof>" on close.
  std::string Reply(v1::FdMessage* out = nullptr) {
    auto r =
        fdsock::RecvMessage(sock_.borrow(), fdsock::kMaxDaemonFrameBytes, 0);
    if (!r.ok()) return "<" + r.status().ToString() + ">";
    if (r->eof) return "<eof>";
    if (out) *out = r->message;
    return r->message.has_error() ? r->message.error().reason() : "";
  }
  static v1::FdMessage Hello(uint32_t version = 1) {
    v1::FdMessage m;
    m.set_request_id(1);
    m.mutable_hello()->set_protocol_version(version);
    return m;
  }
  static v1::FdMessage Register() {
    v1::FdMessage m;
    m.set_request_id(2);
    m.mutable_register_dmabuf();
    return m;
  }
  // Sends without asserting (the daemon may have closed us).
  bool TrySend(const v1::FdMessage& m) {
    return fdsock::SendMessage(sock_.borrow(), m, {}, MSG_NOSIGNAL).ok();
  }

 private:
  UniqueFd sock_;
};

TEST_F(ServiceTest, ASessionThatSendsButNeverReadsIsClosedAlone) {
  RawPeer slow(daemon_->fd_socket());
  slow.Send(RawPeer::Hello());
  // Thousands of requests, none of their answers read: each is an Error
  // reply (no fd) the daemon must not wait on.
  int sent = 0;
  for (; sent < 5000; ++sent) {
    if (!slow.TrySend(RawPeer::Register())) break;  // closed on us: fine
  }
  // A bystander is served, and the slow session is gone, not stalling it.
  auto other = Session();
  ASSERT_NE(other, nullptr);
  auto buf = Dmabuf::CreateMemfd("by", 1 << 20);
  ASSERT_TRUE(buf.ok());
  EXPECT_TRUE(BindRx(*other, *buf, 1).ok());
  // The slow peer reads what was queued for it, then EOF: bounded.
  int replies = 0;
  std::string last;
  while ((last = slow.Reply()) != "<eof>" && replies < 100000) ++replies;
  EXPECT_EQ(last, "<eof>");
  EXPECT_LT(replies, sent);  // not every request was answered
  EXPECT_TRUE(WaitFor([&] {
    return daemon_->metrics().Render().find(
               "devmem_fd_socket_errors_total{reason=\"not_reading\"} 1") !=
           std::string::npos;
  }));
  EXPECT_EQ(daemon_->broker().session_count(), 1u);  // the bystander
}

TEST_F(ServiceTest, BadInputOnFdSocketGetsClearErrorsAndLeaksNothing) {
  const int baseline = CountFds();
  auto buf = Dmabuf::CreateMemfd("ok", 1 << 20);
  ASSERT_TRUE(buf.ok());
  const int with_buf = CountFds();
  {
    RawPeer p(daemon_->fd_socket());
    p.Send(RawPeer::Register(), {buf->fd()});
    EXPECT_EQ(p.Reply(), "no_session");  // and the fd is closed
    p.Send(RawPeer::Register());
    EXPECT_EQ(p.Reply(), "no_session");
    p.Send(RawPeer::Hello());
    v1::FdMessage w;
    EXPECT_EQ(p.Reply(&w), "");
    EXPECT_TRUE(w.has_welcome());
    EXPECT_EQ(w.welcome().uid(), ::getuid());
    p.Send(RawPeer::Hello());
    EXPECT_EQ(p.Reply(), "already_hello");
    p.Send(RawPeer::Register());
    EXPECT_EQ(p.Reply(), "no_fd");
    p.Send(RawPeer::Register(), {buf->fd(), buf->fd()});
    EXPECT_EQ(p.Reply(), "too_many_fds");
    int pipefd[2];
    ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    p.Send(RawPeer::Register(), {BorrowedFd(pipefd[0])});
    EXPECT_EQ(p.Reply(), "not_dmabuf");
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    auto unsealed = UniqueFd(::memfd_create("unsealed", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(unsealed.get(), 4096), 0);
    p.Send(RawPeer::Register(), {unsealed.borrow()});
    EXPECT_EQ(p.Reply(), "not_dmabuf");
    p.SendBytes(std::string(fdsock::kMaxJobFrameBytes + 10, 'x'), {buf->fd()});
    EXPECT_EQ(p.Reply(), "too_large");
    p.SendBytes("\xff\xff\xff garbage");
    EXPECT_EQ(p.Reply(), "bad_message");
    // Issue 10 defect 5: a zero-length record is answered, not taken as EOF.
    p.SendBytes("");
    EXPECT_EQ(p.Reply(), "bad_message");
    // Issue 10 defect 3: a sealed 2^62-byte memfd cannot be mapped (ENOMEM):
    // that is the dmabuf's fault, not the ticket quota's.
    auto huge =
        UniqueFd(::memfd_create("huge", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    ASSERT_EQ(::ftruncate(huge.get(), off_t{1} << 62), 0);
    ASSERT_EQ(::fcntl(huge.get(), F_ADD_SEALS, F_SEAL_SHRINK), 0);
    v1::FdMessage huge_reply;
    p.Send(RawPeer::Register(), {huge.borrow()});
    EXPECT_EQ(p.Reply(&huge_reply), "not_dmabuf");
    EXPECT_EQ(huge_reply.error().code(),
              static_cast<int>(absl::StatusCode::kResourceExhausted))
        << huge_reply.error().message();
    huge.reset();
    p.SendBytes(std::string("\x08\x07\xfa\x06\x00", 5));  // field 111
    EXPECT_EQ(p.Reply(), "unknown_type");
    // 20,000 nested groups of an unknown field (40 KB, under the size limit):
    // the parser's depth limit rejects it long before the end.
    std::string nested;
    for (int i = 0; i < 20000; ++i) nested += "\xa3\x06";  // field 100, group
    p.SendBytes(nested);
    EXPECT_EQ(p.Reply(), "bad_message");
    v1::FdMessage bogus;
    bogus.mutable_welcome();
    p.Send(bogus);
    EXPECT_EQ(p.Reply(), "unexpected_type");
    v1::FdMessage with_fd;
    with_fd.mutable_hello();
    p.Send(with_fd, {buf->fd()});
    EXPECT_EQ(p.Reply(), "unexpected_fd");
    v1::FdMessage from_daemon;
    from_daemon.mutable_data_path()->set_binding_id(12345);
    p.Send(from_daemon);
    EXPECT_EQ(p.Reply(), "unexpected_type");
    // A field number the data path used to have (ReturnTokens, 16) is now
    // unknown: answered, nothing else happens.
    p.SendBytes(std::string("\x08\x07\x82\x01\x00", 5));
    EXPECT_EQ(p.Reply(), "unknown_type");
    // After all that the session still works.
    p.Send(RawPeer::Register(), {buf->fd()});
    v1::FdMessage t;
    EXPECT_EQ(p.Reply(&t), "");
    EXPECT_EQ(t.ticket().ticket().size(), 32u);
    EXPECT_EQ(t.ticket().size_bytes(), 1u << 20);
  }
  {
    RawPeer p(daemon_->fd_socket());
    p.Send(RawPeer::Hello(2));
    EXPECT_EQ(p.Reply(), "bad_version");
    EXPECT_EQ(p.Reply(), "<eof>");
  }
  {
    // Tickets of a closed session die with it (its fd closes).
    auto s = Session();
    ASSERT_TRUE(s->RegisterDmabuf(buf->fd()).ok());
  }
  buf = absl::InternalError("drop");  // close our own buffer fd
  EXPECT_TRUE(WaitFor([&] { return CountFds() == baseline; }))
      << "fds now " << CountFds() << ", baseline " << baseline << " (with buf "
      << with_buf << ")";
  const std::string metrics = daemon_->metrics().Render();
  EXPECT_NE(metrics.find("devmem_fd_socket_errors_total{reason=\"no_fd\"} 1"),
            std::string::npos);
}

TEST_F(ServiceTest, ExpiredTicketViaRpc) {
  // Real clock, so only the single-use rule is checked here; expiry is
  // covered with a fake clock in broker_test.
  auto s = Session();
  auto buf = Dmabuf::CreateMemfd("e", 1 << 20);
  ASSERT_TRUE(buf.ok());
  auto t = s->RegisterDmabuf(buf->fd());
  ASSERT_TRUE(t.ok());
  v1::BindRequest req;
  req.set_ticket(t->ticket());
  req.set_device("sim0");
  req.mutable_tx();
  v1::BindResponse resp;
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    Auth(&ctx, *s);
    grpc::Status st = stub_->Bind(&ctx, req, &resp);
    if (i == 0) {
      ASSERT_TRUE(st.ok()) << st.error_message();
      EXPECT_EQ(resp.binding().direction(), v1::DIRECTION_TX);
    } else {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    }
  }
}

TEST_F(ServiceTest, WatchBindingsStreamsTransitions) {
  auto s = Session();
  grpc::ClientContext wctx;
  Auth(&wctx, *s);
  v1::WatchBindingsRequest wreq;
  auto reader = stub_->WatchBindings(&wctx, wreq);
  auto buf = Dmabuf::CreateMemfd("w", 1 << 20);
  ASSERT_TRUE(buf.ok());
  // The stream is registered once the server handler runs; Bind until an
  // event arrives is not needed: the subscription precedes any event we
  // make after the first Read could see it, so bind after a metadata wait.
  wctx.set_wait_for_ready(true);
  auto b = BindRx(*s, *buf, 1);
  ASSERT_TRUE(b.ok());
  s.reset();
  std::vector<v1::BindingEventKind> kinds;
  v1::BindingEvent ev;
  while (kinds.size() < 3 && reader->Read(&ev)) {
    if (ev.binding().id() == b->id()) kinds.push_back(ev.kind());
    if (ev.kind() == v1::BINDING_EVENT_KIND_RELEASED) break;
  }
  wctx.TryCancel();
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.back(), v1::BINDING_EVENT_KIND_RELEASED);
}

TEST_F(ServiceTest, MetricsPassPromtool) {
  auto s = Session();
  auto buf = Dmabuf::CreateMemfd("m", 1 << 20);
  ASSERT_TRUE(buf.ok());
  ASSERT_TRUE(BindRx(*s, *buf, 2).ok());
  const std::string text = daemon_->metrics().Render();
  for (const char* name :
       {"devmem_sessions 1", "devmem_bindings{state=\"active\"} 1",
        "devmem_bound_bytes 1048576", "devmem_queues_in_use{device=\"sim0\"} 2",
        "devmem_pool_inflight_chunks{", "devmem_rpc_latency_seconds_bucket",
        "devmem_queue_rx_bytes_total{device=\"sim0\",queue=\"7\"}",
        "devmem_queue_rx_alloc_fail_total{device=\"sim0\",queue=\"0\"} 0",
        "devmem_queue_tx_bytes_total{device=\"sim0\",queue=\"0\"}",
        "devmem_fd_socket_errors_total"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  EXPECT_GT(daemon_->metrics_port(), 0);
  if (::access("/usr/bin/promtool", X_OK) != 0) {
    GTEST_SKIP() << "promtool not installed";
  }
  const std::string path = run_dir_ + "/metrics.txt";
  std::ofstream(path) << text;
  const int rc = std::system(
      ("promtool check metrics < " + path + " >/dev/null 2>&1").c_str());
  ::unlink(path.c_str());
  EXPECT_EQ(rc, 0) << text;
}

TEST(GrpcStatusTest, CodesMatchAndPathsHidden) {
  grpc::Status s = ToGrpcStatus(absl::ResourceExhaustedError(
      "quota: open /run/devmemd/fd.sock failed (at /etc/x)"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.error_message(), "quota: open <path> failed (at <path>)");
  EXPECT_EQ(ToGrpcStatus(absl::OkStatus()).error_code(), grpc::StatusCode::OK);
  for (int c = 1; c <= 16; ++c) {
    EXPECT_EQ(
        static_cast<int>(
            ToGrpcStatus(absl::Status(absl::StatusCode(c), "x")).error_code()),
        c);
  }
  EXPECT_LE(ToGrpcStatus(absl::InternalError(std::string(5000, 'a')))
                .error_message()
                .size(),
            kMaxMessageBytes);
}

}  // namespace
}  // namespace devmem::server
