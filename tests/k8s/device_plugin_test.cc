// The device plugin: the pure parts (ids, what is advertised, preferred
// allocation, Allocate) and the plugin as the kubelet sees it: a stand-in
// kubelet serves Registration on <dir>/kubelet.sock (refusing the first
// attempt, as a kubelet that is not ready does), the plugin registers, and
// the test talks to the plugin's socket as the kubelet would: options,
// ListAndWatch, GetPreferredAllocation, Allocate, and a link flip on the sim
// NIC seen as Unhealthy, then Healthy, on the stream.
#include "server/k8s/device_plugin.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "providers/sim/sim_provider.h"

namespace devmem::server::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr absl::Duration kWait = absl::Seconds(30);

DeviceInfo Nic(std::string name, uint32_t rx, int32_t numa, bool up = true) {
  DeviceInfo d;
  d.name = std::move(name);
  d.rx_queues = rx;
  d.numa_node = numa;
  d.up = up;
  return d;
}

std::vector<std::string> Ids(const std::vector<PluginDevice>& v) {
  std::vector<std::string> out;
  for (const auto& d : v) out.push_back(d.id);
  return out;
}

TEST(DeviceIdTest, FormAndLimit) {
  EXPECT_EQ(*DeviceId("eth0", 14), "eth0-rxq14");
  const std::string long_name(60, 'x');
  absl::StatusOr<std::string> id = DeviceId(long_name, 100);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("63"));
}

TEST(AdvertisedDevicesTest, NoQueueZeroNoExcludedNoIncapable) {
  DeviceInfo bad = Nic("lo", 4, -1);
  bad.rx_capability.state = Capability::State::kUnsupported;
  std::vector<PluginDevice> v = AdvertisedDevices(
      {Nic("eth0", 3, 1), Nic("eth1", 2, 0, false), Nic("mgmt0", 4, 0), bad},
      {"mgmt0"});
  EXPECT_THAT(Ids(v), ElementsAre("eth0-rxq1", "eth0-rxq2", "eth1-rxq1"));
  EXPECT_EQ(v[0].numa_node, 1);
  EXPECT_TRUE(v[0].healthy);
  EXPECT_FALSE(v[2].healthy);  // link down
}

TEST(PreferredAllocationTest, PacksOntoOneNicAndHonoursMustInclude) {
  std::vector<PluginDevice> all =
      AdvertisedDevices({Nic("a", 4, 0), Nic("b", 8, 1)}, {});
  std::vector<std::string> avail = Ids(all);
  // Best fit: "a" has 3 free queues, enough for 2.
  EXPECT_THAT(*PreferredAllocation(all, avail, {}, 2),
              ElementsAre("a-rxq1", "a-rxq2"));
  // Only "b" has 5.
  EXPECT_THAT(*PreferredAllocation(all, avail, {}, 5),
              ElementsAre("b-rxq1", "b-rxq2", "b-rxq3", "b-rxq4", "b-rxq5"));
  // must_include pins the NIC.
  EXPECT_THAT(*PreferredAllocation(all, avail, {"b-rxq7"}, 2),
              ElementsAre("b-rxq7", "b-rxq1"));
  // More than any one NIC has: spans, largest first.
  EXPECT_EQ(PreferredAllocation(all, avail, {}, 9)->size(), 9u);
  EXPECT_FALSE(PreferredAllocation(all, avail, {}, 11).ok());
  EXPECT_FALSE(PreferredAllocation(all, avail, {"a-rxq1", "a-rxq2"}, 1).ok());
}

TEST(AllocateContainerTest, EnvsMountAndRefusals) {
  std::vector<PluginDevice> all = AdvertisedDevices(
      {Nic("eth0", 16, 0), Nic("eth1", 4, 0), Nic("eth2", 4, 0, false)}, {});
  auto r = AllocateContainer(all, {"eth0-rxq15", "eth0-rxq14"}, "/run/devmemd");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->envs().at("DEVMEM_IFNAME"), "eth0");
  EXPECT_EQ(r->envs().at("DEVMEM_RX_QUEUES"), "14,15");
  EXPECT_EQ(r->envs().at("DEVMEM_SOCKET"), "/run/devmemd/api.sock");
  ASSERT_EQ(r->mounts_size(), 1);
  EXPECT_EQ(r->mounts(0).host_path(), "/run/devmemd");
  EXPECT_EQ(r->mounts(0).container_path(), "/run/devmemd");

  auto span = AllocateContainer(all, {"eth0-rxq1", "eth1-rxq1"}, "/r");
  EXPECT_EQ(span.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(span.status().message(), HasSubstr("span two NICs"));
  auto unknown = AllocateContainer(all, {"eth9-rxq1"}, "/r");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("eth9-rxq1"));
  auto sick = AllocateContainer(all, {"eth2-rxq1"}, "/r");
  EXPECT_EQ(sick.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(sick.status().message(), HasSubstr("Unhealthy"));
  auto queue0 = AllocateContainer(all, {"eth0-rxq0"}, "/r");
  EXPECT_EQ(queue0.status().code(), absl::StatusCode::kNotFound);
}

// The kubelet's side of registration: records requests; refuses the first
// `refuse` of them as a kubelet does for a bad version or a taken name.
class FakeKubelet final : public v1beta1::Registration::Service {
 public:
  explicit FakeKubelet(int refuse) : refuse_(refuse) {}
  grpc::Status Register(grpc::ServerContext*,
                        const v1beta1::RegisterRequest* req,
                        v1beta1::Empty*) override {
    absl::MutexLock l(&mu_);
    ++attempts_;
    if (refuse_ > 0) {
      --refuse_;
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "resource name already registered");
    }
    requests_.push_back(*req);
    return grpc::Status::OK;
  }
  // Waits (bounded) for an accepted registration.
  std::optional<v1beta1::RegisterRequest> AwaitRegistered() {
    absl::MutexLock l(&mu_);
    auto has = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !requests_.empty();
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&has), kWait)) {
      return std::nullopt;
    }
    return requests_.front();
  }
  int attempts() {
    absl::MutexLock l(&mu_);
    return attempts_;
  }
  // Waits (bounded) until `n` registrations were accepted.
  bool AwaitAccepted(size_t n) {
    absl::MutexLock l(&mu_);
    auto has = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return requests_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&has), kWait);
  }

 private:
  absl::Mutex mu_;
  int refuse_ ABSL_GUARDED_BY(mu_);
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1beta1::RegisterRequest> requests_ ABSL_GUARDED_BY(mu_);
};

std::string MakeTempDir() {
  char tmpl[] = "/tmp/devmem-k8s.XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d == nullptr ? "" : d;
}

std::string Health(const v1beta1::ListAndWatchResponse& r,
                   const std::string& id) {
  for (const auto& d : r.devices()) {
    if (d.id() == id) return d.health();
  }
  return "absent";
}

TEST(DevicePluginTest, RegistersServesAndFollowsLinkState) {
  const std::string dir = MakeTempDir();
  ASSERT_FALSE(dir.empty());
  FakeKubelet kubelet(/*refuse=*/1);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + dir + "/kubelet.sock",
                     grpc::InsecureServerCredentials());
  b.RegisterService(&kubelet);
  std::unique_ptr<grpc::Server> kubelet_server = b.BuildAndStart();
  ASSERT_NE(kubelet_server, nullptr);

  SimOptions so;
  so.spec = "sim0:rx=4,tx=4;sim1:rx=8,tx=8";
  absl::StatusOr<std::unique_ptr<Provider>> provider = CreateSimProvider(so);
  ASSERT_TRUE(provider.ok()) << provider.status();
  Provider* p = provider->get();
  SimNic* nic = GetSimNic(p);
  ASSERT_NE(nic, nullptr);

  DevicePluginOptions o;
  o.kubelet_dir = dir;
  o.run_dir = dir + "/run";
  absl::Mutex reports_mu;
  std::vector<bool> reports;  // what the metrics hook was told
  o.on_registration = [&](bool ok) {
    absl::MutexLock l(&reports_mu);
    reports.push_back(ok);
  };
  DevicePlugin plugin(o, [p] { return p->ListDevices(); });
  ASSERT_TRUE(plugin.Start().ok());

  // Registration: refused once, retried, then accepted with our socket.
  std::optional<v1beta1::RegisterRequest> reg = kubelet.AwaitRegistered();
  ASSERT_TRUE(reg.has_value()) << "plugin never registered";
  EXPECT_EQ(reg->version(), "v1beta1");
  EXPECT_EQ(reg->endpoint(), "devmemd.sock");
  EXPECT_EQ(reg->resource_name(), "devmem.dev/rx-queue");
  EXPECT_TRUE(reg->options().get_preferred_allocation_available());
  EXPECT_GE(kubelet.attempts(), 2);
  {
    absl::MutexLock l(&reports_mu);
    auto reported = [&] { return reports.size() >= 2; };
    ASSERT_TRUE(reports_mu.AwaitWithTimeout(absl::Condition(&reported), kWait));
    EXPECT_FALSE(reports.front());  // refused first
    EXPECT_TRUE(reports.back());
  }
  EXPECT_EQ(::access((dir + "/devmemd.sock").c_str(), F_OK), 0);

  // The kubelet's calls on the plugin socket.
  auto stub = v1beta1::DevicePlugin::NewStub(grpc::CreateChannel(
      "unix:" + dir + "/devmemd.sock", grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1beta1::DevicePluginOptions opts;
    ASSERT_TRUE(stub->GetDevicePluginOptions(&ctx, {}, &opts).ok());
    EXPECT_TRUE(opts.get_preferred_allocation_available());
  }
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
  auto stream = stub->ListAndWatch(&watch_ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse list;
  ASSERT_TRUE(stream->Read(&list));
  std::vector<std::string> ids;
  for (const auto& d : list.devices()) {
    ids.push_back(d.id());
    EXPECT_EQ(d.health(), "Healthy");
  }
  EXPECT_THAT(ids, UnorderedElementsAre("sim0-rxq1", "sim0-rxq2", "sim0-rxq3",
                                        "sim1-rxq1", "sim1-rxq2", "sim1-rxq3",
                                        "sim1-rxq4", "sim1-rxq5", "sim1-rxq6",
                                        "sim1-rxq7"));
  {
    grpc::ClientContext ctx;
    v1beta1::PreferredAllocationRequest req;
    auto* c = req.add_container_requests();
    for (const auto& id : ids) c->add_available_deviceids(id);
    c->set_allocation_size(2);
    v1beta1::PreferredAllocationResponse resp;
    ASSERT_TRUE(stub->GetPreferredAllocation(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.container_responses_size(), 1);
    EXPECT_THAT(resp.container_responses(0).deviceids(),
                ElementsAre("sim0-rxq1", "sim0-rxq2"));
  }
  {
    grpc::ClientContext ctx;
    v1beta1::AllocateRequest req;
    auto* c = req.add_container_requests();
    c->add_devices_ids("sim1-rxq6");
    c->add_devices_ids("sim1-rxq5");
    v1beta1::AllocateResponse resp;
    ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.container_responses_size(), 1);
    EXPECT_EQ(resp.container_responses(0).envs().at("DEVMEM_RX_QUEUES"), "5,6");
    EXPECT_EQ(resp.container_responses(0).envs().at("DEVMEM_IFNAME"), "sim1");
  }
  {
    grpc::ClientContext ctx;
    v1beta1::AllocateRequest req;
    auto* c = req.add_container_requests();
    c->add_devices_ids("sim0-rxq1");
    c->add_devices_ids("sim1-rxq1");
    v1beta1::AllocateResponse resp;
    grpc::Status s = stub->Allocate(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("span two NICs"));
  }

  // Link down on sim1: the next list says Unhealthy; Allocate refuses it.
  ASSERT_TRUE(nic->SetLinkUp("sim1", false).ok());
  plugin.Refresh();
  ASSERT_TRUE(stream->Read(&list));
  EXPECT_EQ(Health(list, "sim1-rxq1"), "Unhealthy");
  EXPECT_EQ(Health(list, "sim0-rxq1"), "Healthy");
  EXPECT_EQ(list.devices_size(), 10);  // the full list, every time
  {
    grpc::ClientContext ctx;
    v1beta1::AllocateRequest req;
    req.add_container_requests()->add_devices_ids("sim1-rxq1");
    v1beta1::AllocateResponse resp;
    grpc::Status s = stub->Allocate(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), HasSubstr("Unhealthy"));
  }
  ASSERT_TRUE(nic->SetLinkUp("sim1", true).ok());
  plugin.Refresh();
  ASSERT_TRUE(stream->Read(&list));
  EXPECT_EQ(Health(list, "sim1-rxq1"), "Healthy");

  // The kubelet restarts: it deletes our socket; devmemd serves again and
  // re-registers (inotify, no poll).
  ASSERT_EQ(::unlink((dir + "/devmemd.sock").c_str()), 0);
  ASSERT_TRUE(kubelet.AwaitAccepted(2)) << "no re-registration";
  EXPECT_EQ(::access((dir + "/devmemd.sock").c_str(), F_OK), 0);
  // The old stream ended with the old server; a new one lists again.
  while (stream->Read(&list)) {
  }
  grpc::ClientContext watch2;
  watch2.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
  stub = v1beta1::DevicePlugin::NewStub(grpc::CreateChannel(
      "unix:" + dir + "/devmemd.sock", grpc::InsecureChannelCredentials()));
  stream = stub->ListAndWatch(&watch2, v1beta1::Empty());
  ASSERT_TRUE(stream->Read(&list));
  EXPECT_EQ(list.devices_size(), 10);

  // A new kubelet: kubelet.sock is created again; devmemd registers with it.
  kubelet_server->Shutdown();
  kubelet_server.reset();
  ::unlink((dir + "/kubelet.sock").c_str());
  FakeKubelet kubelet2(/*refuse=*/0);
  grpc::ServerBuilder b2;
  b2.AddListeningPort("unix:" + dir + "/kubelet.sock",
                      grpc::InsecureServerCredentials());
  b2.RegisterService(&kubelet2);
  kubelet_server = b2.BuildAndStart();
  ASSERT_NE(kubelet_server, nullptr);
  ASSERT_TRUE(kubelet2.AwaitAccepted(1)) << "no registration with new kubelet";

  plugin.Stop();
  // The stream ends when the plugin stops; its socket is gone.
  while (stream->Read(&list)) {
  }
  EXPECT_NE(::access((dir + "/devmemd.sock").c_str(), F_OK), 0);
  kubelet_server->Shutdown();
}

}  // namespace
}  // namespace devmem::server::k8s
