// The kubelet device plugin (API v1beta1) inside devmemd: one device per
// devmem RX queue, id "<ifname>-rxq<N>", resource devmem.dev/rx-queue by
// default. Turned on by --kubelet-dir. Serves its socket in the kubelet dir
// first, then registers with <kubelet-dir>/kubelet.sock, retrying with
// backoff when that fails (the daemon keeps serving jobs regardless). An
// inotify watch on the directory notices a kubelet restart (kubelet.sock
// created again: re-register at once) and the deletion of our own socket
// (serve again, then re-register).
//
// The plugin sees devices only through a DeviceLister (the provider's
// ListDevices), so it depends on nothing in the broker.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "k8s/deviceplugin/v1beta1/api.grpc.pb.h"
#include "providers/provider.h"

namespace devmem::server::k8s {

inline constexpr char kDefaultResourceName[] = "devmem.dev/rx-queue";
inline constexpr char kPluginSocketName[] = "devmemd.sock";
inline constexpr size_t kMaxDeviceIdLength = 63;

// One advertised device: an RX queue of a NIC.
struct PluginDevice {
  std::string id;  // "<ifname>-rxq<N>"
  std::string ifname;
  uint32_t queue = 0;
  int32_t numa_node = -1;
  bool healthy = false;
  bool operator==(const PluginDevice&) const = default;
};

// "<ifname>-rxq<N>", or InvalidArgument when longer than 63 characters.
absl::StatusOr<std::string> DeviceId(const std::string& ifname, uint32_t q);

// The devices to advertise: every RX queue but queue 0 (RSS keeps it) of
// every device not in `excluded` whose RX capability is not known to be
// unsupported. Healthy while the link is up.
std::vector<PluginDevice> AdvertisedDevices(
    const std::vector<DeviceInfo>& devices,
    const std::vector<std::string>& excluded);

// GetPreferredAllocation for one container: `size` ids out of `available`,
// all of `must_include` first, then packed onto the NIC (and NUMA node) of
// must_include, else onto the NIC with the most available queues. Falls back
// to spanning NICs only when no single NIC has enough.
absl::StatusOr<std::vector<std::string>> PreferredAllocation(
    const std::vector<PluginDevice>& all,
    const std::vector<std::string>& available,
    const std::vector<std::string>& must_include, int32_t size);

// Allocate for one container: mounts `run_dir` at the same path and sets
// DEVMEM_SOCKET, DEVMEM_IFNAME and DEVMEM_RX_QUEUES ("14,15"). Fails when
// the ids span two NICs or name an unknown or unhealthy device.
absl::StatusOr<v1beta1::ContainerAllocateResponse> AllocateContainer(
    const std::vector<PluginDevice>& all, const std::vector<std::string>& ids,
    const std::string& run_dir);

struct DevicePluginOptions {
  std::string kubelet_dir;  // holds kubelet.sock and our socket
  std::string resource_name = kDefaultResourceName;
  std::string run_dir;  // devmemd's run dir, mounted into containers
  std::vector<std::string> excluded_devices;
  absl::Duration refresh_interval = absl::Seconds(1);
  // Called (on the plugin's thread) when registration is won or fails.
  std::function<void(bool registered)> on_registration;
};

using DeviceLister = std::function<absl::StatusOr<std::vector<DeviceInfo>>()>;

class DevicePlugin final : public v1beta1::DevicePlugin::Service {
 public:
  DevicePlugin(DevicePluginOptions options, DeviceLister lister);
  ~DevicePlugin() override;
  DevicePlugin(const DevicePlugin&) = delete;
  DevicePlugin& operator=(const DevicePlugin&) = delete;

  // Serves the plugin socket, then registers (in the background, retried).
  absl::Status Start();
  void Stop();

  // Re-reads the devices; a change goes to every ListAndWatch stream.
  void Refresh();

  bool registered() const;
  std::vector<PluginDevice> devices() const;
  std::string socket_path() const;

  grpc::Status GetDevicePluginOptions(
      grpc::ServerContext* ctx, const v1beta1::Empty* req,
      v1beta1::DevicePluginOptions* resp) override;
  grpc::Status ListAndWatch(
      grpc::ServerContext* ctx, const v1beta1::Empty* req,
      grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override;
  grpc::Status GetPreferredAllocation(
      grpc::ServerContext* ctx, const v1beta1::PreferredAllocationRequest* req,
      v1beta1::PreferredAllocationResponse* resp) override;
  grpc::Status Allocate(grpc::ServerContext* ctx,
                        const v1beta1::AllocateRequest* req,
                        v1beta1::AllocateResponse* resp) override;
  grpc::Status PreStartContainer(
      grpc::ServerContext* ctx, const v1beta1::PreStartContainerRequest* req,
      v1beta1::PreStartContainerResponse* resp) override;

 private:
  absl::Status RegisterOnce();
  absl::Status Serve();
  void BackgroundLoop();
  // Waits up to `timeout` for inotify events or Stop; handles the events.
  void WaitForEvents(absl::Duration timeout);

  const DevicePluginOptions options_;
  const DeviceLister lister_;
  std::unique_ptr<grpc::Server> server_;
  std::thread background_;
  UniqueFd inotify_;
  UniqueFd wake_read_, wake_write_;  // Stop() wakes the background thread

  mutable absl::Mutex mu_;
  std::vector<PluginDevice> devices_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped when the server is replaced: ends the old server's streams now.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace devmem::server::k8s
