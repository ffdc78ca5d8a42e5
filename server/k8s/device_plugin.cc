#include "server/k8s/device_plugin.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/grpc_status.h"

namespace devmem::server::k8s {

namespace {

constexpr char kHealthy[] = "Healthy";
constexpr char kUnhealthy[] = "Unhealthy";
constexpr char kApiVersion[] = "v1beta1";

const PluginDevice* Find(const std::vector<PluginDevice>& all,
                         const std::string& id) {
  for (const PluginDevice& d : all) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

v1beta1::ListAndWatchResponse ToResponse(
    const std::vector<PluginDevice>& devices) {
  v1beta1::ListAndWatchResponse r;
  for (const PluginDevice& d : devices) {
    v1beta1::Device* out = r.add_devices();
    out->set_id(d.id);
    out->set_health(d.healthy ? kHealthy : kUnhealthy);
    if (d.numa_node >= 0) {
      out->mutable_topology()->add_nodes()->set_id(d.numa_node);
    }
  }
  return r;
}

}  // namespace

absl::StatusOr<std::string> DeviceId(const std::string& ifname, uint32_t q) {
  std::string id = absl::StrCat(ifname, "-rxq", q);
  if (id.size() > kMaxDeviceIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("device id \"", id, "\" is longer than ",
                     kMaxDeviceIdLength, " characters"));
  }
  return id;
}

std::vector<PluginDevice> AdvertisedDevices(
    const std::vector<DeviceInfo>& devices,
    const std::vector<std::string>& excluded) {
  std::vector<PluginDevice> out;
  for (const DeviceInfo& d : devices) {
    if (std::find(excluded.begin(), excluded.end(), d.name) != excluded.end())
      continue;
    if (d.rx_capability.state == Capability::State::kUnsupported) continue;
    for (uint32_t q = 1; q < d.rx_queues; ++q) {
      absl::StatusOr<std::string> id = DeviceId(d.name, q);
      if (!id.ok()) continue;  // an interface name this long cannot be shown
      out.push_back(PluginDevice{*id, d.name, q, d.numa_node, d.up});
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> PreferredAllocation(
    const std::vector<PluginDevice>& all,
    const std::vector<std::string>& available,
    const std::vector<std::string>& must_include, int32_t size) {
  if (size <= 0 || static_cast<size_t>(size) > available.size()) {
    return absl::InvalidArgumentError(absl::StrCat("allocation_size ", size,
                                                   " with ", available.size(),
                                                   " available devices"));
  }
  if (must_include.size() > static_cast<size_t>(size)) {
    return absl::InvalidArgumentError(
        absl::StrCat(must_include.size(),
                     " must_include devices exceed allocation_size ", size));
  }
  std::vector<std::string> out = must_include;
  std::set<std::string> taken(out.begin(), out.end());
  // Candidates by NIC, in queue order.
  std::map<std::string, std::vector<const PluginDevice*>> by_nic;
  for (const std::string& id : available) {
    const PluginDevice* d = Find(all, id);
    if (d == nullptr || taken.count(id) != 0) continue;
    by_nic[d->ifname].push_back(d);
  }
  for (auto& [nic, v] : by_nic) {
    std::sort(v.begin(), v.end(),
              [](auto* a, auto* b) { return a->queue < b->queue; });
  }
  const size_t need = static_cast<size_t>(size) - out.size();
  // The NIC to pack onto: must_include's when it has enough; else the
  // smallest NIC that has enough (best fit keeps big NICs whole); else the
  // one with the most. Ties go by name, so the answer is stable.
  std::string nic;
  if (!must_include.empty()) {
    if (const PluginDevice* d = Find(all, must_include.front())) {
      nic = d->ifname;
    }
  }
  auto count = [&](const std::string& n) {
    auto it = by_nic.find(n);
    return it == by_nic.end() ? size_t{0} : it->second.size();
  };
  if (need > 0 && count(nic) < need) {
    nic.clear();
    for (const auto& [name, v] : by_nic) {
      const bool fits = v.size() >= need;
      const bool best_fits = !nic.empty() && count(nic) >= need;
      if (nic.empty() || (fits && (!best_fits || v.size() < count(nic))) ||
          (!fits && !best_fits && v.size() > count(nic))) {
        nic = name;
      }
    }
  }
  std::vector<const PluginDevice*> order;
  if (!nic.empty()) order = by_nic[nic];
  for (const auto& [name, v] : by_nic) {
    if (name != nic) order.insert(order.end(), v.begin(), v.end());
  }
  for (const PluginDevice* d : order) {
    if (out.size() == static_cast<size_t>(size)) break;
    out.push_back(d->id);
  }
  if (out.size() < static_cast<size_t>(size)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("only ", out.size(), " of ", size,
                     " requested devices are known and available"));
  }
  return out;
}

absl::StatusOr<v1beta1::ContainerAllocateResponse> AllocateContainer(
    const std::vector<PluginDevice>& all, const std::vector<std::string>& ids,
    const std::string& run_dir) {
  if (ids.empty()) {
    return absl::InvalidArgumentError("Allocate names no devices");
  }
  std::string nic;
  std::vector<uint32_t> queues;
  for (const std::string& id : ids) {
    const PluginDevice* d = Find(all, id);
    if (d == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown device \"", id,
                                              "\": devmemd advertises no ",
                                              "such RX queue"));
    }
    if (!d->healthy) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device \"", id, "\" is Unhealthy (link of ", d->ifname, " down)"));
    }
    if (!nic.empty() && d->ifname != nic) {
      return absl::InvalidArgumentError(
          absl::StrCat("devices span two NICs (", nic, " and ", d->ifname,
                       "): one binding needs all its queues on one NIC"));
    }
    nic = d->ifname;
    queues.push_back(d->queue);
  }
  std::sort(queues.begin(), queues.end());
  v1beta1::ContainerAllocateResponse r;
  (*r.mutable_envs())["DEVMEM_SOCKET"] = run_dir + "/api.sock";
  (*r.mutable_envs())["DEVMEM_IFNAME"] = nic;
  (*r.mutable_envs())["DEVMEM_RX_QUEUES"] = absl::StrJoin(queues, ",");
  v1beta1::Mount* m = r.add_mounts();
  m->set_container_path(run_dir);
  m->set_host_path(run_dir);
  m->set_read_only(false);  // connecting to a Unix socket needs no write,
                            // but some runtimes refuse ro socket mounts
  return r;
}

DevicePlugin::DevicePlugin(DevicePluginOptions options, DeviceLister lister)
    : options_(std::move(options)), lister_(std::move(lister)) {}

DevicePlugin::~DevicePlugin() { Stop(); }

std::string DevicePlugin::socket_path() const {
  return options_.kubelet_dir + "/" + kPluginSocketName;
}

bool DevicePlugin::registered() const {
  absl::MutexLock l(&mu_);
  return registered_;
}

std::vector<PluginDevice> DevicePlugin::devices() const {
  absl::MutexLock l(&mu_);
  return devices_;
}

absl::Status DevicePlugin::Start() {
  Refresh();
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus("pipe2");
  wake_read_ = UniqueFd(p[0]);
  wake_write_ = UniqueFd(p[1]);
  RETURN_IF_ERROR(Serve());
  // Watch after serving, so our own unlink of a stale socket is not seen.
  inotify_ = UniqueFd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify_.ok()) return ErrnoStatus("inotify_init1");
  if (::inotify_add_watch(inotify_.get(), options_.kubelet_dir.c_str(),
                          IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM) <
      0) {
    return ErrnoStatus(
        absl::StrCat("inotify_add_watch ", options_.kubelet_dir));
  }
  background_ = std::thread([this] { BackgroundLoop(); });
  return absl::OkStatus();
}

absl::Status DevicePlugin::Serve() {
  if (server_ != nullptr) {
    {
      absl::MutexLock l(&mu_);
      ++generation_;
    }
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
    server_.reset();
  }
  ::unlink(socket_path().c_str());  // a stale socket from a previous run
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + socket_path(),
                     grpc::InsecureServerCredentials());
  b.RegisterService(this);
  server_ = b.BuildAndStart();
  if (server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("device plugin: cannot serve ", socket_path()));
  }
  DEVMEM_LOG(kInfo, "device_plugin_serving")
      .Kv("socket", socket_path())
      .Kv("resource", options_.resource_name);
  return absl::OkStatus();
}

void DevicePlugin::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (wake_write_.ok()) {
    const char c = 0;
    (void)!::write(wake_write_.get(), &c, 1);
  }
  // The background thread may replace server_: join it first.
  if (background_.joinable()) background_.join();
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
    ::unlink(socket_path().c_str());
  }
}

void DevicePlugin::Refresh() {
  absl::StatusOr<std::vector<DeviceInfo>> devs = lister_();
  if (!devs.ok()) {
    DEVMEM_LOG(kWarning, "device_plugin_list_failed")
        .Kv("error", devs.status().ToString());
    return;
  }
  std::vector<PluginDevice> now =
      AdvertisedDevices(*devs, options_.excluded_devices);
  absl::MutexLock l(&mu_);
  if (now == devices_ && version_ != 0) return;
  devices_ = std::move(now);
  ++version_;
}

absl::Status DevicePlugin::RegisterOnce() {
  auto channel =
      grpc::CreateChannel("unix:" + options_.kubelet_dir + "/kubelet.sock",
                          grpc::InsecureChannelCredentials());
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest req;
  req.set_version(kApiVersion);
  req.set_endpoint(kPluginSocketName);
  req.set_resource_name(options_.resource_name);
  req.mutable_options()->set_get_preferred_allocation_available(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  v1beta1::Empty resp;
  grpc::Status s = stub->Register(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("Register with ", options_.kubelet_dir, "/kubelet.sock: ",
                     s.error_message(), " (gRPC code ", s.error_code(), ")"));
  }
  return absl::OkStatus();
}

void DevicePlugin::BackgroundLoop() {
  absl::Duration backoff = absl::Milliseconds(100);
  absl::Time next_refresh = absl::Now() + options_.refresh_interval;
  for (;;) {
    bool need_register;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      need_register = !registered_;
    }
    absl::Duration wait =
        std::max(next_refresh - absl::Now(), absl::ZeroDuration());
    if (need_register) {
      absl::Status s = RegisterOnce();
      if (options_.on_registration) options_.on_registration(s.ok());
      if (s.ok()) {
        absl::MutexLock l(&mu_);
        registered_ = true;
        backoff = absl::Milliseconds(100);
        DEVMEM_LOG(kInfo, "device_plugin_registered")
            .Kv("resource", options_.resource_name);
      } else {
        DEVMEM_LOG(kWarning, "device_plugin_register_failed")
            .Kv("error", s.ToString())
            .Kv("retry_in_ms", absl::ToInt64Milliseconds(backoff));
        wait = std::min(wait, backoff);
        backoff = std::min(backoff * 2, absl::Seconds(30));
      }
    }
    WaitForEvents(wait);
    if (absl::Now() >= next_refresh) {
      next_refresh = absl::Now() + options_.refresh_interval;
      Refresh();
    }
  }
}

void DevicePlugin::WaitForEvents(absl::Duration timeout) {
  pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
  const int ms = static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(timeout) + 1, 60'000));
  if (::poll(fds, 2, ms) <= 0 || (fds[0].revents & POLLIN) == 0) return;
  alignas(inotify_event) char buf[4096];
  bool reserve = false, reregister = false;
  for (;;) {
    const ssize_t n = ::read(inotify_.get(), buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      inotify_event ev;
      std::memcpy(&ev, buf + off, sizeof(ev));
      const char* name_at = buf + off + sizeof(inotify_event);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev.len);
      const std::string name = ev.len > 0 ? std::string(name_at) : "";
      if (name == "kubelet.sock" && (ev.mask & (IN_CREATE | IN_MOVED_TO))) {
        reregister = true;  // a (new) kubelet: register with it
      } else if (name == kPluginSocketName &&
                 (ev.mask & (IN_DELETE | IN_MOVED_FROM))) {
        reserve = true;  // a restarted kubelet removed our socket
      }
    }
  }
  if (reserve) {
    DEVMEM_LOG(kWarning, "device_plugin_socket_removed")
        .Kv("socket", socket_path());
    if (absl::Status s = Serve(); !s.ok()) {
      DEVMEM_LOG(kError, "device_plugin_serve_failed")
          .Kv("error", s.ToString());
    }
  }
  if (reserve || reregister) {
    DEVMEM_LOG(kInfo, "device_plugin_reregistering")
        .Kv("reason", std::string(reserve ? "own socket removed"
                                          : "kubelet.sock created"));
    absl::MutexLock l(&mu_);
    registered_ = false;
  }
}

grpc::Status DevicePlugin::GetDevicePluginOptions(
    grpc::ServerContext*, const v1beta1::Empty*,
    v1beta1::DevicePluginOptions* resp) {
  resp->set_pre_start_required(false);
  resp->set_get_preferred_allocation_available(true);
  return grpc::Status::OK;
}

grpc::Status DevicePlugin::ListAndWatch(
    grpc::ServerContext* ctx, const v1beta1::Empty*,
    grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) {
  uint64_t sent = 0;
  uint64_t generation;
  {
    absl::MutexLock l(&mu_);
    generation = generation_;
  }
  for (;;) {
    v1beta1::ListAndWatchResponse r;
    {
      absl::MutexLock l(&mu_);
      auto changed = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || version_ != sent || generation_ != generation;
      };
      // Wake up now and then to notice a cancelled stream.
      while (!changed() && !ctx->IsCancelled()) {
        mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Seconds(1));
      }
      if (stopping_ || generation_ != generation || ctx->IsCancelled()) {
        return grpc::Status::OK;
      }
      sent = version_;
      r = ToResponse(devices_);
    }
    if (!writer->Write(r)) return grpc::Status::OK;
  }
}

grpc::Status DevicePlugin::GetPreferredAllocation(
    grpc::ServerContext*, const v1beta1::PreferredAllocationRequest* req,
    v1beta1::PreferredAllocationResponse* resp) {
  std::vector<PluginDevice> all = devices();
  for (const auto& c : req->container_requests()) {
    absl::StatusOr<std::vector<std::string>> ids = PreferredAllocation(
        all, {c.available_deviceids().begin(), c.available_deviceids().end()},
        {c.must_include_deviceids().begin(), c.must_include_deviceids().end()},
        c.allocation_size());
    if (!ids.ok()) {
      return ToGrpcStatus(ids.status());
    }
    auto* out = resp->add_container_responses();
    for (const std::string& id : *ids) out->add_deviceids(id);
  }
  return grpc::Status::OK;
}

grpc::Status DevicePlugin::Allocate(grpc::ServerContext*,
                                    const v1beta1::AllocateRequest* req,
                                    v1beta1::AllocateResponse* resp) {
  std::vector<PluginDevice> all = devices();
  for (const auto& c : req->container_requests()) {
    absl::StatusOr<v1beta1::ContainerAllocateResponse> r =
        AllocateContainer(all, {c.devices_ids().begin(), c.devices_ids().end()},
                          options_.run_dir);
    if (!r.ok()) {
      DEVMEM_LOG(kWarning, "device_plugin_allocate_refused")
          .Kv("devices", absl::StrJoin(c.devices_ids(), ","))
          .Kv("error", r.status().ToString());
      return ToGrpcStatus(r.status());
    }
    *resp->add_container_responses() = *std::move(r);
    DEVMEM_LOG(kInfo, "device_plugin_allocated")
        .Kv("devices", absl::StrJoin(c.devices_ids(), ","));
  }
  return grpc::Status::OK;
}

grpc::Status DevicePlugin::PreStartContainer(
    grpc::ServerContext*, const v1beta1::PreStartContainerRequest*,
    v1beta1::PreStartContainerResponse*) {
  return grpc::Status::OK;
}

}  // namespace devmem::server::k8s
