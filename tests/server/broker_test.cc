// The server core without gRPC: sessions, tickets, Bind with its undo ladder,
// quotas, authorization, redaction, session close.
#include "server/broker.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "client/dmabuf/dmabuf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/fake_provider.h"

namespace devmem::server {
namespace {

using testing::FakeProvider;

// Records what the broker sends a session; can refuse the data-path fd.
class RecordingSink : public SessionSink {
 public:
  absl::Status SendDataPath(uint32_t id, BorrowedFd fd) override {
    absl::MutexLock l(&mu_);
    if (refuse_data_path) return absl::UnavailableError("sink refused");
    // The sink must not keep the broker's fd: keep a dup, as the socket does.
    data_paths[id] = UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    return absl::OkStatus();
  }
  void SendBindingClosed(uint32_t id, const absl::Status& why) override {
    absl::MutexLock l(&mu_);
    closed.emplace_back(id, why);
  }
  absl::Mutex mu_;
  bool refuse_data_path = false;
  std::map<uint32_t, UniqueFd> data_paths;
  std::vector<std::pair<uint32_t, absl::Status>> closed;
};

UniqueFd Buf(uint64_t size = 1 << 20) {
  auto d = Dmabuf::CreateMemfd("broker_test", size);
  EXPECT_TRUE(d.ok()) << d.status();
  return d->ReleaseFd();
}

class BrokerTest : public ::testing::Test {
 protected:
  BrokerTest() {
    Broker::Options o;
    o.clock = &clock_;
    o.ticket_ttl = absl::Seconds(30);
    o.allow.uids = {1000, 1001};
    o.quota.max_bindings = 4;
    o.quota.max_queues = 6;
    o.quota.max_bound_bytes = 8 << 20;
    o.released_history = 4;
    broker_ = std::make_unique<Broker>(&provider_, o);
  }

  struct Sess {
    Broker::SessionGrant grant;
    Caller caller;
  };
  Sess Open(uid_t uid, pid_t pid = 42) {
    sink_ = std::make_shared<RecordingSink>();
    auto g = broker_->OpenSession({pid, uid, uid}, "test", sink_);
    EXPECT_TRUE(g.ok()) << g.status();
    auto c = broker_->Authenticate(g->id, g->secret);
    EXPECT_TRUE(c.ok()) << c.status();
    return {*g, *c};
  }
  std::string Ticket(const Sess& s, uint64_t size = 1 << 20) {
    auto t = broker_->RegisterDmabuf(s.grant.id, Buf(size));
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->ticket.ticket : "";
  }
  BindParams Rx(std::string ticket, uint32_t n = 2) {
    BindParams p;
    p.ticket = std::move(ticket);
    p.device = "fake0";
    p.num_queues = n;
    return p;
  }
  void ExpectNothingHeld() {
    EXPECT_EQ(provider_.state().bindings.load(), 0);
    EXPECT_EQ(provider_.state().preparations.load(), 0);
    EXPECT_EQ(provider_.state().flows.load(), 0);
  }

  FakeClock clock_;
  FakeProvider provider_;
  std::unique_ptr<Broker> broker_;
  std::shared_ptr<RecordingSink> sink_;  // of the last Open()
};

TEST_F(BrokerTest, AllowlistAndRoot) {
  EXPECT_TRUE(broker_->OpenSession({1, 0, 0}, "", nullptr).ok());
  EXPECT_TRUE(broker_->OpenSession({1, 1000, 5}, "", nullptr).ok());
  auto denied = broker_->OpenSession({1, 2000, 2000}, "", nullptr);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  broker_->UpdatePolicy({.gids = {2000}}, {});
  EXPECT_TRUE(broker_->OpenSession({1, 2000, 2000}, "", nullptr).ok());
}

TEST_F(BrokerTest, AuthenticateChecksSecret) {
  Sess s = Open(1000);
  EXPECT_EQ(s.caller.uid, 1000u);
  EXPECT_EQ(broker_->Authenticate(s.grant.id, "00").status().code(),
            absl::StatusCode::kPermissionDenied);
  std::string wrong = s.grant.secret;
  wrong[5] = wrong[5] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(broker_->Authenticate(s.grant.id, wrong).ok());
  EXPECT_FALSE(broker_->Authenticate(s.grant.id + 7, s.grant.secret).ok());
  EXPECT_EQ(s.grant.secret.size(), 32u);
}

TEST_F(BrokerTest, BindPicksHighestQueuesAndKeepsZero) {
  Sess s = Open(1000);
  auto b = broker_->Bind(s.caller, Rx(Ticket(s), 3));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->queues, (std::vector<uint32_t>{5, 6, 7}));
  EXPECT_EQ(b->state, BindingState::kActive);
  EXPECT_EQ(b->size_bytes, 1u << 20);
  auto b2 = broker_->Bind(s.caller, Rx(Ticket(s), 3));
  ASSERT_TRUE(b2.ok()) << b2.status();
  EXPECT_EQ(b2->queues, (std::vector<uint32_t>{2, 3, 4}));
  // Only queue 1 is left besides queue 0.
  auto b3 = broker_->Bind(s.caller, Rx(Ticket(s), 2));
  EXPECT_EQ(b3.status().code(), absl::StatusCode::kResourceExhausted);
  auto devs = broker_->ListDevices(s.caller);
  ASSERT_TRUE(devs.ok());
  EXPECT_EQ((*devs)[0].free_rx_queues, 1u);
}

TEST_F(BrokerTest, TicketIsSingleUseSessionBoundAndExpires) {
  Sess a = Open(1000), b = Open(1000);
  const std::string t = Ticket(a);
  // Another session cannot use it (and does not burn it).
  auto foreign = broker_->Bind(b.caller, Rx(t));
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(broker_->Bind(a.caller, Rx(t)).ok());
  auto reused = broker_->Bind(a.caller, Rx(t));
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kNotFound);
  const std::string t2 = Ticket(a);
  clock_.Advance(absl::Seconds(31));
  auto expired = broker_->Bind(a.caller, Rx(t2));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
  auto unknown = broker_->Bind(a.caller, Rx("deadbeef"));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }
template <typename T>
std::string Msg(const absl::StatusOr<T>& s) {
  return Msg(s.status());
}

// Issue 10 defect 6: "expired" was said only until the next sweep (about
// 100 ms); then the generic "unknown ticket". Now until the session closes.
TEST_F(BrokerTest, ExpiredTicketSaysExpiredUntilTheSessionCloses) {
  Sess a = Open(1000), b = Open(1000);
  const std::string t = Ticket(a);
  Caller root{.session_id = 99, .uid = 0};
  clock_.Advance(absl::Seconds(31));
  broker_->Housekeeping();  // the daemon's sweep: the fd is closed now
  EXPECT_EQ(broker_->GetStats(root).tickets_outstanding, 0u);
  clock_.Advance(absl::Hours(2));
  broker_->Housekeeping();
  for (int i = 0; i < 2; ++i) {
    auto expired = broker_->Bind(a.caller, Rx(t));
    EXPECT_EQ(expired.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(Msg(expired), ::testing::HasSubstr("ticket expired"));
  }
  // Another session learns nothing: the same answer as a ticket never issued.
  auto foreign = broker_->Bind(b.caller, Rx(t));
  auto never = broker_->Bind(b.caller, Rx(std::string(32, 'f')));
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(foreign.status().message(), never.status().message());
  EXPECT_THAT(Msg(foreign), ::testing::HasSubstr("unknown"));
  ExpectNothingHeld();
}

// A pipe's write end stands in for the dmabuf: EOF on the read end proves
// the store closed its fd.
struct PipeEnds {
  UniqueFd read;
  UniqueFd write;
};
PipeEnds Pipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}
bool WriteEndClosed(const UniqueFd& read_end) {
  char c;
  return ::read(read_end.get(), &c, 1) == 0;
}

TEST(TicketStoreTest, TombstonesAreBoundedPerSessionAndDieWithIt) {
  FakeClock clock;
  TicketStore store(&clock, absl::Seconds(1), /*max_per_session=*/3);
  std::vector<std::string> tickets;
  std::vector<UniqueFd> reads;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 3; ++i) {
      PipeEnds p = Pipe();
      auto t = store.Issue(1, std::move(p.write), {});
      ASSERT_TRUE(t.ok()) << t.status();
      tickets.push_back(t->ticket);
      reads.push_back(std::move(p.read));
      clock.Advance(absl::Milliseconds(10));  // a distinct expiry each
    }
    clock.Advance(absl::Seconds(1));
    EXPECT_EQ(store.Expire(), 3u);
  }
  for (const UniqueFd& r : reads) EXPECT_TRUE(WriteEndClosed(r));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.tombstones(), 3u);  // the bound: the first round's are gone
  clock.Advance(absl::Hours(24));
  EXPECT_EQ(store.Expire(), 0u);
  for (size_t i = 0; i < tickets.size(); ++i) {
    auto r = store.Consume(tickets[i], 1);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(Msg(r),
                ::testing::HasSubstr(i < 3 ? "unknown" : "ticket expired"))
        << i;
    auto other = store.Consume(tickets[i], 2);
    EXPECT_THAT(Msg(other), ::testing::HasSubstr("unknown"));
  }
  // Tombstones cost no ticket: the session may issue its full quota again.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(store.Issue(1, Pipe().write, {}).ok());
  }
  EXPECT_EQ(store.DropSession(1), 3u);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.tombstones(), 0u);
  EXPECT_THAT(Msg(store.Consume(tickets[5], 1)),
              ::testing::HasSubstr("unknown"));
}

TEST(TicketStoreTest, ExpiredAtConsumeIsBuriedAndItsFdClosed) {
  FakeClock clock;
  TicketStore store(&clock, absl::Seconds(1), 4);
  PipeEnds p = Pipe();
  auto t = store.Issue(7, std::move(p.write), {});
  ASSERT_TRUE(t.ok()) << t.status();
  clock.Advance(absl::Seconds(1));
  // No Expire() ran: Consume itself finds the ticket expired.
  EXPECT_THAT(Msg(store.Consume(t->ticket, 7)),
              ::testing::HasSubstr("ticket expired"));
  EXPECT_TRUE(WriteEndClosed(p.read));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.tombstones(), 1u);
  EXPECT_THAT(Msg(store.Consume(t->ticket, 7)),
              ::testing::HasSubstr("ticket expired"));
  // A used ticket leaves no tombstone.
  auto used = store.Issue(7, Pipe().write, {});
  ASSERT_TRUE(used.ok());
  ASSERT_TRUE(store.Consume(used->ticket, 7).ok());
  EXPECT_THAT(Msg(store.Consume(used->ticket, 7)),
              ::testing::HasSubstr("unknown"));
  EXPECT_EQ(store.tombstones(), 1u);
  EXPECT_EQ(store.DropSession(7), 0u);
  EXPECT_EQ(store.tombstones(), 0u);
}

TEST_F(BrokerTest, RejectsBadFd) {
  Sess s = Open(1000);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[1]);
  auto t = broker_->RegisterDmabuf(s.grant.id, UniqueFd(p[0]));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BrokerTest, EveryFailingStepUnwinds) {
  Sess s = Open(1000);
  for (auto f : {FakeProvider::Fail::kPrepare, FakeProvider::Fail::kBindRx,
                 FakeProvider::Fail::kAddFlow}) {
    provider_.FailNext(f);
    BindParams p = Rx(Ticket(s), 2);
    p.flows.push_back({.dst_port = 5201});
    p.flows.push_back({.dst_port = 5202});
    auto b = broker_->Bind(s.caller, p);
    EXPECT_FALSE(b.ok()) << static_cast<int>(f);
    ExpectNothingHeld();
  }
  // The quota was given back each time: four bindings still fit.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(broker_->Bind(s.caller, Rx(Ticket(s), 1)).ok());
  }
  EXPECT_EQ(provider_.state().bindings.load(), 3);
}

TEST_F(BrokerTest, DataPathGoesToTheSessionAndTheBrokerKeepsNoCopy) {
  provider_.state().data_paths = true;
  Sess s = Open(1000);
  auto b = broker_->Bind(s.caller, Rx(Ticket(s), 1));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->data_path);
  EXPECT_EQ(b->endpoint, "127.0.0.1:9");
  {
    absl::MutexLock l(&sink_->mu_);
    ASSERT_EQ(sink_->data_paths.count(b->id), 1u);
    EXPECT_TRUE(sink_->data_paths[b->id].ok());
  }
  // Unbind tells the session, which then reads EOF on the data path.
  ASSERT_TRUE(broker_->Unbind(s.caller, b->id).ok());
  absl::MutexLock l(&sink_->mu_);
  ASSERT_EQ(sink_->closed.size(), 1u);
  EXPECT_EQ(sink_->closed[0].first, b->id);
  EXPECT_THAT(std::string(sink_->closed[0].second.message()),
              ::testing::HasSubstr("unbind"));
  char c;
  EXPECT_EQ(::recv(sink_->data_paths[b->id].get(), &c, 1, MSG_DONTWAIT), 0);
}

TEST_F(BrokerTest, AFailedDataPathHandoverUnwindsTheBind) {
  provider_.state().data_paths = true;
  Sess s = Open(1000);
  sink_->refuse_data_path = true;
  BindParams p = Rx(Ticket(s), 2);
  p.flows.push_back({.dst_port = 5201});
  auto b = broker_->Bind(s.caller, p);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(b.status().message()),
              ::testing::HasSubstr("data-path handover"));
  ExpectNothingHeld();
  EXPECT_TRUE(broker_->ListBindings(s.caller, true).bindings.empty());
  sink_->refuse_data_path = false;
  // The quota was given back: the full allowance still fits.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(broker_->Bind(s.caller, Rx(Ticket(s), 2)).ok());
  }
}

TEST_F(BrokerTest, QuotasNameTheLimit) {
  Sess s = Open(1000);
  auto big = broker_->Bind(s.caller, Rx(Ticket(s, 16 << 20), 1));
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("max_bound_bytes"), std::string::npos);
  auto q = broker_->Bind(s.caller, Rx(Ticket(s), 7));
  EXPECT_EQ(q.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(q.status().message().find("max_queues"), std::string::npos);
  BindParams tx;
  tx.rx = false;
  tx.device = "fake0";
  for (int i = 0; i < 4; ++i) {
    tx.ticket = Ticket(s);
    ASSERT_TRUE(broker_->Bind(s.caller, tx).ok());
  }
  tx.ticket = Ticket(s);
  auto n = broker_->Bind(s.caller, tx);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(n.status().message().find("max_bindings"), std::string::npos);
  // Another uid has its own quota.
  Sess o = Open(1001);
  EXPECT_TRUE(broker_->Bind(o.caller, Rx(Ticket(o), 1)).ok());
}

TEST_F(BrokerTest, SessionCloseReleasesEverything) {
  Sess s = Open(1000);
  BindParams p = Rx(Ticket(s), 2);
  p.flows.push_back({.dst_port = 1234});
  auto b = broker_->Bind(s.caller, p);
  ASSERT_TRUE(b.ok());
  (void)Ticket(s);  // an unused ticket: its fd must go too
  EXPECT_EQ(provider_.state().flows.load(), 1);
  broker_->CloseSession(s.grant.id);
  ExpectNothingHeld();
  Caller root{.session_id = 99, .uid = 0};
  auto v = broker_->GetBinding(root, b->id);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->state, BindingState::kReleased);
  EXPECT_EQ(v->release_reason, "session closed");
  EXPECT_EQ(broker_->GetStats(root).tickets_outstanding, 0u);
  EXPECT_FALSE(broker_->Authenticate(s.grant.id, s.grant.secret).ok());
}

TEST_F(BrokerTest, UnbindOnlyByOwningSession) {
  Sess a = Open(1000), same_uid = Open(1000), other = Open(1001);
  auto b = broker_->Bind(a.caller, Rx(Ticket(a), 1));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(broker_->Unbind(same_uid.caller, b->id).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(broker_->Unbind(other.caller, b->id).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(broker_->Unbind(Caller{}, b->id).status().code(),
            absl::StatusCode::kPermissionDenied);
  Caller remote = a.caller;
  remote.local = false;
  EXPECT_EQ(broker_->Unbind(remote, b->id).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto u = broker_->Unbind(a.caller, b->id);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->state, BindingState::kReleased);
  EXPECT_EQ(broker_->Unbind(a.caller, b->id).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(broker_->Unbind(a.caller, 9999).status().code(),
            absl::StatusCode::kNotFound);
  ExpectNothingHeld();
}

TEST_F(BrokerTest, OtherUsersSeeOnlyCounts) {
  Sess a = Open(1000), other = Open(1001);
  BindParams tx;
  tx.rx = false;
  tx.device = "fake0";
  tx.ticket = Ticket(a);
  auto b = broker_->Bind(a.caller, tx);
  ASSERT_TRUE(b.ok());
  BindingList mine = broker_->ListBindings(a.caller, false);
  ASSERT_EQ(mine.bindings.size(), 1u);
  EXPECT_EQ(mine.bindings[0].id, b->id);
  BindingList theirs = broker_->ListBindings(other.caller, false);
  EXPECT_TRUE(theirs.bindings.empty());
  EXPECT_EQ(theirs.other_active, 1u);
  EXPECT_EQ(broker_->GetBinding(other.caller, b->id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(broker_->GetStats(other.caller).bindings.empty());
  BindingView red = broker_->ViewFor(other.caller, *b);
  EXPECT_TRUE(red.redacted);
  EXPECT_EQ(red.id, 0u);
  EXPECT_EQ(red.session_id, 0u);
}

TEST_F(BrokerTest, ExplicitQueues) {
  Sess s = Open(1000);
  BindParams p = Rx(Ticket(s), 0);
  p.queue_ids = {3, 4};
  auto b = broker_->Bind(s.caller, p);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->queues, (std::vector<uint32_t>{3, 4}));
  p.ticket = Ticket(s);
  p.queue_ids = {4};
  EXPECT_EQ(broker_->Bind(s.caller, p).status().code(),
            absl::StatusCode::kAlreadyExists);
  p.ticket = Ticket(s);
  p.queue_ids = {42};
  EXPECT_EQ(broker_->Bind(s.caller, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  p.ticket = Ticket(s);
  p.queue_ids = {5, 5};
  EXPECT_EQ(broker_->Bind(s.caller, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  p.device = "nope";
  p.queue_ids = {5};
  p.ticket = Ticket(s);
  EXPECT_EQ(broker_->Bind(s.caller, p).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BrokerTest, EventsFollowTransitions) {
  auto q = broker_->Subscribe();
  Sess s = Open(1000);
  auto b = broker_->Bind(s.caller, Rx(Ticket(s), 1));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(broker_->Unbind(s.caller, b->id).ok());
  std::vector<Event> ev = q->Wait(absl::ZeroDuration());
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kind, EventKind::kBound);
  EXPECT_EQ(ev[1].kind, EventKind::kDraining);
  EXPECT_EQ(ev[2].kind, EventKind::kReleased);
  EXPECT_LT(ev[0].sequence, ev[1].sequence);
  broker_->Unsubscribe(q);
}

TEST_F(BrokerTest, ReleasedHistoryIsBounded) {
  Sess s = Open(1000);
  std::vector<uint32_t> ids;
  for (int i = 0; i < 6; ++i) {
    auto b = broker_->Bind(s.caller, Rx(Ticket(s), 1));
    ASSERT_TRUE(b.ok());
    ids.push_back(b->id);
    ASSERT_TRUE(broker_->Unbind(s.caller, b->id).ok());
  }
  BindingList l = broker_->ListBindings(s.caller, true);
  EXPECT_EQ(l.bindings.size(), 4u);
  EXPECT_EQ(broker_->GetBinding(s.caller, ids[0]).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BrokerTest, ShutdownReleasesAll) {
  Sess a = Open(1000), b = Open(1001);
  ASSERT_TRUE(broker_->Bind(a.caller, Rx(Ticket(a), 1)).ok());
  ASSERT_TRUE(broker_->Bind(b.caller, Rx(Ticket(b), 1)).ok());
  ASSERT_TRUE(broker_->Bind(b.caller, Rx(Ticket(b), 1)).ok());
  const ShutdownReport report = broker_->Shutdown();
  EXPECT_EQ(report.sessions_closed, 2u);
  EXPECT_EQ(report.bindings_released, 3u);
  EXPECT_TRUE(report.still_draining.empty());
  const ShutdownReport again = broker_->Shutdown();
  EXPECT_EQ(again.sessions_closed, 0u);
  EXPECT_EQ(again.bindings_released, 0u);
  ExpectNothingHeld();
  EXPECT_EQ(broker_->session_count(), 0u);
  EXPECT_EQ(broker_->OpenSession({1, 0, 0}, "", nullptr).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(BrokerTest, AKernelBindingDrainsUntilItsPagePoolsAreEmpty) {
  Sess s = Open(1000);
  auto b = broker_->Bind(s.caller, Rx(Ticket(s), 1));
  ASSERT_TRUE(b.ok());
  {
    absl::MutexLock l(&provider_.state().mu);
    provider_.state().inflight[b->id] = 5;  // pages the NIC still holds
  }
  ASSERT_TRUE(broker_->Unbind(s.caller, b->id).ok());
  auto view = [&] { return broker_->GetBinding(s.caller, b->id); };
  EXPECT_EQ(view()->state, BindingState::kDraining);
  broker_->Housekeeping();
  EXPECT_EQ(view()->state, BindingState::kDraining);
  {
    absl::MutexLock l(&provider_.state().mu);
    provider_.state().inflight[b->id] = 0;
  }
  broker_->Housekeeping();
  EXPECT_EQ(view()->state, BindingState::kReleased);
}

TEST_F(BrokerTest, ShutdownReportsWhatIsStillDraining) {
  Sess s = Open(1000);
  auto b = broker_->Bind(s.caller, Rx(Ticket(s), 1));
  ASSERT_TRUE(b.ok());
  {
    absl::MutexLock l(&provider_.state().mu);
    provider_.state().inflight[b->id] = 3;
  }
  const ShutdownReport report = broker_->Shutdown();
  EXPECT_EQ(report.bindings_released, 1u);
  ASSERT_EQ(report.still_draining.size(), 1u);
  EXPECT_EQ(report.still_draining[0].binding_id, b->id);
  EXPECT_EQ(report.still_draining[0].device, "fake0");
}

TEST_F(BrokerTest, TheLastChunkBackMakesTheBindingReleasedWithoutASweep) {
  provider_.state().regions = true;
  Sess s = Open(1000);
  auto events = broker_->Subscribe();
  auto b = broker_->Bind(s.caller, Rx(Ticket(s), 1));
  ASSERT_TRUE(b.ok());
  std::shared_ptr<Region> region;
  {
    absl::MutexLock l(&provider_.state().mu);
    region = provider_.state().last_region;
  }
  ASSERT_NE(region, nullptr);
  // Someone still holds a chunk of the binding's pool.
  absl::StatusOr<Chunk> held = region->Alloc();
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(broker_->Unbind(s.caller, b->id).ok());
  EXPECT_EQ(broker_->GetBinding(s.caller, b->id)->state,
            BindingState::kDraining);
  // No Housekeeping: the chunk coming back is what releases it.
  (void)region->Unref(*held);
  EXPECT_EQ(broker_->GetBinding(s.caller, b->id)->state,
            BindingState::kReleased);
  std::vector<EventKind> kinds;
  for (const Event& e : events->Wait(absl::ZeroDuration())) {
    kinds.push_back(e.kind);
  }
  EXPECT_EQ(kinds,
            (std::vector<EventKind>{EventKind::kBound, EventKind::kDraining,
                                    EventKind::kReleased}));
}

TEST_F(BrokerTest, SnapshotFollowsTheLiveEventRule) {
  Sess a = Open(1000);
  auto b = broker_->Bind(a.caller, Rx(Ticket(a), 1));
  ASSERT_TRUE(b.ok());
  Sess o = Open(1001);
  // Another uid sees the binding, redacted, as it sees its live events.
  std::vector<BindingView> other = broker_->SnapshotFor(o.caller);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_TRUE(other[0].redacted);
  EXPECT_EQ(other[0].id, 0u);
  EXPECT_EQ(other[0].device, "fake0");
  EXPECT_EQ(other[0].state, BindingState::kActive);
  std::vector<BindingView> own = broker_->SnapshotFor(a.caller);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_FALSE(own[0].redacted);
  EXPECT_EQ(own[0].id, b->id);
  // Released bindings stay in it, as their RELEASED event was sent.
  ASSERT_TRUE(broker_->Unbind(a.caller, b->id).ok());
  other = broker_->SnapshotFor(o.caller);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].state, BindingState::kReleased);
}

TEST_F(BrokerTest, QuotasHoldUnderConcurrentBindsFromManySessionsOfOneUid) {
  // 12 sessions of uid 1000 race to bind one queue each; the quota is 4
  // bindings (and 6 queues): exactly 4 win, the rest are told which limit.
  constexpr int kSessions = 12;
  std::vector<Sess> sessions;
  std::vector<std::string> tickets;
  for (int i = 0; i < kSessions; ++i) {
    sessions.push_back(Open(1000, 100 + i));
    tickets.push_back(Ticket(sessions.back()));
  }
  std::vector<absl::StatusOr<BindingView>> results(kSessions);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      results[i] = broker_->Bind(sessions[i].caller, Rx(tickets[i], 1));
    });
  }
  for (std::thread& t : threads) t.join();
  int ok = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      ++ok;
      continue;
    }
    EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
        << r.status();
    EXPECT_THAT(std::string(r.status().message()),
                ::testing::HasSubstr("quota max_bindings"));
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(provider_.state().bindings.load(), 4);
  // Releasing gives the quota back, exactly.
  for (int i = 0; i < kSessions; ++i)
    broker_->CloseSession(sessions[i].grant.id);
  ExpectNothingHeld();
  Sess again = Open(1000);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(broker_->Bind(again.caller, Rx(Ticket(again), 1)).ok());
  }
}

TEST_F(BrokerTest, ValidatesParams) {
  Sess s = Open(1000);
  BindParams p = Rx(Ticket(s), 1);
  p.queue_ids = {1};  // both
  EXPECT_EQ(broker_->Bind(s.caller, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  p = Rx(Ticket(s), 1);
  p.chunk_size = 5000;
  EXPECT_EQ(broker_->Bind(s.caller, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  p = Rx(Ticket(s), 1);
  p.flows.push_back({});
  EXPECT_EQ(broker_->Bind(s.caller, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(provider_.state().flows.load(), 0);
}

// Issue 10 defect 7: an address is parsed on its exact bytes, so text after
// an embedded NUL is not silently cut off; and nothing is bound.
TEST_F(BrokerTest, FlowAddressesAreParsedStrictly) {
  Sess s = Open(1000);
  const std::string bad[] = {
      std::string("10.0.0.1\0junk", 13), "10.0.0.1 ", "10.0.0.256",
      "::1" /* IPv6 text for an IPv4 flow */, std::string(46, '1')};
  for (const std::string& addr : bad) {
    for (bool dst : {true, false}) {
      BindParams p = Rx(Ticket(s), 1);
      Flow f{.dst_port = 5201};
      (dst ? f.dst_ip : f.src_ip) = addr;
      p.flows.push_back(f);
      absl::StatusOr<BindingView> got = broker_->Bind(s.caller, p);
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
          << absl::CEscape(addr) << " " << got.status();
      EXPECT_THAT(std::string(got.status().message()),
                  ::testing::HasSubstr(dst ? "dst_ip" : "src_ip"));
    }
  }
  EXPECT_EQ(provider_.state().flows.load(), 0);
  EXPECT_EQ(provider_.state().bindings.load(), 0);
  // The same addresses written correctly bind.
  BindParams p = Rx(Ticket(s), 1);
  p.flows.push_back(
      {.src_ip = "10.0.0.2", .dst_ip = "10.0.0.1", .dst_port = 5201});
  EXPECT_TRUE(broker_->Bind(s.caller, p).ok());
  EXPECT_EQ(provider_.state().flows.load(), 1);
}

}  // namespace
}  // namespace devmem::server
