// Metrics: devmemd's Prometheus metrics, served by prometheus-cpp's Exposer.
//
// Two sources:
//   * counters and histograms this object owns (bind/unbind latency, fd
//     socket errors by reason, RPC outcomes), updated as events happen;
//   * gauges computed from a Broker snapshot at scrape time (sessions,
//     bindings by state, bound bytes, queues in use per device, per-binding
//     pool stats). A binding that is gone simply stops appearing, so no
//     stale series remain.
// Label sets are bounded: state (3 values), device (the node's devices),
// reason (a fixed list), binding (at most the live bindings).
//
// Thread safety: thread-safe. The Broker must outlive this object.
#ifndef DEVMEM_SERVER_METRICS_H_
#define DEVMEM_SERVER_METRICS_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/broker.h"
#include "server/service.h"

namespace devmem::server {

class Metrics : public RpcObserver {
 public:
  explicit Metrics(Broker* broker);
  ~Metrics() override;

  // Serves /metrics on `address` ("127.0.0.1:9464"; port 0 picks one).
  // Returns the port. Errors: Unavailable if civetweb cannot listen.
  absl::StatusOr<int> Serve(const std::string& address);

  // The text exposition of everything (what /metrics returns).
  std::string Render() const;

  void FdSocketError(std::string_view reason);
  // devmem_device_plugin_registered: 1 while the device plugin is registered
  // with the kubelet. The series exists only once the plugin reported.
  void DevicePluginRegistered(bool registered);
  void BindDone(absl::Duration latency, const absl::Status& s) override;
  void UnbindDone(absl::Duration latency, const absl::Status& s) override;

 private:
  class BrokerCollector;

  Broker* const broker_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<BrokerCollector> collector_;
  prometheus::Family<prometheus::Counter>* fd_errors_;
  prometheus::Family<prometheus::Counter>* rpc_results_;
  prometheus::Histogram* bind_latency_;
  prometheus::Histogram* unbind_latency_;
  prometheus::Family<prometheus::Gauge>* plugin_registered_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_METRICS_H_
