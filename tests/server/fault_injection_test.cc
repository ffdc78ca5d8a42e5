// Every fault undone (issue 10 §2): a provider wrapper fails one step of a
// Bind -- the dmabuf check, the device preparation, the bind itself, each
// steering rule, the data-path handover -- and for each the request fails
// with an error naming the step, everything done before it is undone (the
// simulated NIC's settings, RSS, rules and queues as before; fds closed;
// quota uncharged; no binding visible), and the broker keeps serving.
#include <fcntl.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "client/dmabuf/dmabuf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/sim/sim_provider.h"
#include "server/broker.h"
#include "tests/server/test_util.h"

namespace devmem::server {
namespace {

using ::testing::HasSubstr;

enum class Fault { kNone, kCheckDmabuf, kPrepare, kBind, kFlow1, kFlow2 };

// Forwards to a real provider; fails the chosen step once, with the errno
// the kernel would give (EIO: the device said no).
class FaultyProvider : public Provider {
 public:
  explicit FaultyProvider(Provider* inner) : inner_(inner) {}
  void FailNext(Fault f) { fault_ = f; }

  std::string_view name() const override { return inner_->name(); }
  absl::StatusOr<std::vector<DeviceInfo>> ListDevices() override {
    return inner_->ListDevices();
  }
  absl::StatusOr<DmabufInfo> CheckDmabuf(BorrowedFd fd) override {
    if (Take(Fault::kCheckDmabuf)) return Injected("dmabuf check");
    return inner_->CheckDmabuf(fd);
  }
  absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
      std::string_view device, absl::Span<const uint32_t> queues) override {
    if (Take(Fault::kPrepare)) return Injected("prepare");
    return inner_->PrepareDevice(device, queues);
  }
  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
      const RxBindSpec& spec) override {
    if (Take(Fault::kBind)) return Injected("bind-rx");
    absl::StatusOr<std::unique_ptr<ProviderBinding>> b = inner_->BindRx(spec);
    if (!b.ok()) return b;
    int fail_flow = 0;
    if (Take(Fault::kFlow1)) fail_flow = 1;
    if (Take(Fault::kFlow2)) fail_flow = 2;
    return std::unique_ptr<ProviderBinding>(
        new Binding(*std::move(b), fail_flow));
  }
  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
      const TxBindSpec& spec) override {
    if (Take(Fault::kBind)) return Injected("bind-tx");
    return inner_->BindTx(spec);
  }
  absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      std::string_view device) override {
    return inner_->GetQueueStats(device);
  }

 private:
  // A binding whose n-th AddFlow fails.
  class Binding : public ProviderBinding {
   public:
    Binding(std::unique_ptr<ProviderBinding> inner, int fail_flow)
        : inner_(std::move(inner)), fail_flow_(fail_flow) {}
    uint32_t id() const override { return inner_->id(); }
    bool rx() const override { return inner_->rx(); }
    const std::string& device() const override { return inner_->device(); }
    const std::vector<uint32_t>& queue_ids() const override {
      return inner_->queue_ids();
    }
    absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(
        const Flow& flow) override {
      if (++flows_ == fail_flow_) return Injected("add-flow");
      return inner_->AddFlow(flow);
    }
    BindingStats Stats() const override { return inner_->Stats(); }
    std::optional<DataPath> TakeDataPath() override {
      return inner_->TakeDataPath();
    }
    std::shared_ptr<Region> region() const override { return inner_->region(); }

   private:
    std::unique_ptr<ProviderBinding> inner_;
    const int fail_flow_;
    int flows_ = 0;
  };

  static absl::Status Injected(absl::string_view what) {
    return ErrnoToStatus(EIO, absl::StrCat("sim0: ", what, " (injected)"));
  }
  bool Take(Fault f) {
    if (fault_ != f) return false;
    fault_ = Fault::kNone;
    return true;
  }

  Provider* const inner_;
  Fault fault_ = Fault::kNone;
};

// Takes the data-path fds; refuses them when told to.
class Sink : public SessionSink {
 public:
  absl::Status SendDataPath(uint32_t id, BorrowedFd fd) override {
    if (refuse) return absl::UnavailableError("session not reading");
    kept[id] = UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    return absl::OkStatus();
  }
  void SendBindingClosed(uint32_t id, const absl::Status&) override {
    kept.erase(id);
  }
  bool refuse = false;
  std::map<uint32_t, UniqueFd> kept;
};

struct NicState {
  std::vector<uint32_t> rss;
  size_t rules = 0;
  uint32_t preparations = 0;
  HeaderSplit header_split = HeaderSplit::kUnknown;
  std::vector<bool> bound;
  bool operator==(const NicState&) const = default;
};

class FaultInjectionTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    auto p = CreateSimProvider(SimOptions{.spec = "sim0:rx=8,tx=8"});
    ASSERT_TRUE(p.ok());
    sim_ = *std::move(p);
    nic_ = GetSimNic(sim_.get());
    faulty_ = std::make_unique<FaultyProvider>(sim_.get());
    Broker::Options o;
    o.allow.allow_all = true;
    o.quota.max_queues = 4;
    o.quota.max_bindings = 1;
    broker_ = std::make_unique<Broker>(faulty_.get(), o);
    sink_ = std::make_shared<Sink>();
    auto g = broker_->OpenSession({42, 1000, 1000}, "fault", sink_);
    ASSERT_TRUE(g.ok());
    caller_ = *broker_->Authenticate(g->id, g->secret);
  }
  NicState Nic() {
    NicState s;
    s.rss = *nic_->RssQueues("sim0");
    s.rules = nic_->FlowRules("sim0")->size();
    s.preparations = *nic_->Preparations("sim0");
    auto devs = sim_->ListDevices();
    s.header_split = (*devs)[0].header_split;
    for (const QueueInfo& q : (*devs)[0].queues) {
      if (q.rx) s.bound.push_back(q.binding_id.has_value());
    }
    return s;
  }
  absl::StatusOr<BindingView> Bind() {
    auto buf = Dmabuf::CreateMemfd("fault", 1 << 20);
    if (!buf.ok()) return buf.status();
    ASSIGN_OR_RETURN(
        Broker::Registered r,
        broker_->RegisterDmabuf(caller_.session_id, buf->ReleaseFd()));
    BindParams p;
    p.ticket = r.ticket.ticket;
    p.device = "sim0";
    p.num_queues = 4;  // the whole quota
    p.flows = {Flow{.dst_port = 5201}, Flow{.dst_port = 5202}};
    return broker_->Bind(caller_, p);
  }

  std::unique_ptr<Provider> sim_;
  SimNic* nic_ = nullptr;
  std::unique_ptr<FaultyProvider> faulty_;
  std::unique_ptr<Broker> broker_;
  std::shared_ptr<Sink> sink_;
  Caller caller_;
};

TEST_P(FaultInjectionTest, TheFailedStepIsNamedAndEverythingBeforeIsUndone) {
  const NicState before = Nic();
  const int fds_before = testing::CountFds();
  const Fault fault = GetParam();
  std::string step;
  switch (fault) {
    case Fault::kCheckDmabuf:
      step = "dmabuf check";
      break;
    case Fault::kPrepare:
      step = "Bind step prepare device";
      break;
    case Fault::kBind:
      step = "Bind step bind-rx";
      break;
    case Fault::kFlow1:
      step = "Bind step steering rule 1 of 2";
      break;
    case Fault::kFlow2:
      step = "Bind step steering rule 2 of 2";
      break;
    case Fault::kNone:
      step = "Bind step data-path handover";
      sink_->refuse = true;
      break;
  }
  faulty_->FailNext(fault);
  absl::StatusOr<BindingView> b = Bind();
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr(step));
  if (fault != Fault::kNone) {
    EXPECT_EQ(StatusErrno(b.status()), EIO) << b.status();  // errno kept
  }

  // Nothing is left: the NIC as before, no binding, no fd, no quota held.
  EXPECT_EQ(Nic(), before);
  EXPECT_EQ(broker_->open_binding_count(), 0u);
  EXPECT_TRUE(broker_->ListBindings(caller_, true).bindings.empty());
  EXPECT_EQ(testing::CountFds(), fds_before);
  // And the broker serves: the whole quota binds now.
  sink_->refuse = false;
  absl::StatusOr<BindingView> ok = Bind();
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->queues.size(), 4u);
  EXPECT_EQ(nic_->FlowRules("sim0")->size(), 2u);
  ASSERT_TRUE(broker_->Unbind(caller_, ok->id).ok());
  EXPECT_EQ(Nic(), before);
}

// The kernel checks the device before anything else; so does the broker:
// on a device without devmem (one RX queue only, so a queue policy would
// have said "0 free RX queues") the answer is the kernel's EOPNOTSUPP.
TEST(CapabilityFirst, AnIncapableDeviceAnswersEopnotsuppBeforeAnyPolicy) {
  auto sim = CreateSimProvider(
      SimOptions{.spec = "sim0:rx=8,tx=8;lo1:rx=1,tx=1,devmem=no"});
  ASSERT_TRUE(sim.ok()) << sim.status();
  Broker::Options o;
  o.allow.allow_all = true;
  Broker broker(sim->get(), o);
  auto sink = std::make_shared<Sink>();
  auto g = broker.OpenSession({42, 1000, 1000}, "cap", sink);
  ASSERT_TRUE(g.ok());
  const Caller caller = *broker.Authenticate(g->id, g->secret);
  for (bool rx : {true, false}) {
    auto buf = Dmabuf::CreateMemfd("cap", 1 << 20);
    ASSERT_TRUE(buf.ok());
    auto r = broker.RegisterDmabuf(g->id, buf->ReleaseFd());
    ASSERT_TRUE(r.ok());
    BindParams p;
    p.ticket = r->ticket.ticket;
    p.device = "lo1";
    p.rx = rx;
    if (rx) p.num_queues = 4;  // more than it has, too
    absl::StatusOr<BindingView> b = broker.Bind(caller, p);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(StatusErrno(b.status()), EOPNOTSUPP) << b.status();
    EXPECT_THAT(std::string(b.status().message()),
                HasSubstr("cannot do devmem"));
    EXPECT_THAT(std::string(b.status().message()),
                ::testing::Not(HasSubstr("free RX queues")));
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryBindStep, FaultInjectionTest,
    ::testing::Values(Fault::kCheckDmabuf, Fault::kPrepare, Fault::kBind,
                      Fault::kFlow1, Fault::kFlow2, Fault::kNone),
    [](const ::testing::TestParamInfo<Fault>& info) -> std::string {
      switch (info.param) {
        case Fault::kCheckDmabuf:
          return "DmabufCheck";
        case Fault::kPrepare:
          return "Prepare";
        case Fault::kBind:
          return "Bind";
        case Fault::kFlow1:
          return "FirstSteeringRule";
        case Fault::kFlow2:
          return "SecondSteeringRule";
        case Fault::kNone:
          return "DataPathHandover";
      }
      return "?";
    });

}  // namespace
}  // namespace devmem::server
