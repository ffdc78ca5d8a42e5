#include "server/metrics.h"

#include <exception>
#include <map>

#include "absl/strings/str_cat.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace devmem::server {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}
MetricFamily Gauge(std::string name, std::string help) {
  return Family(std::move(name), std::move(help), MetricType::Gauge);
}
MetricFamily Counter(std::string name, std::string help) {
  return Family(std::move(name), std::move(help), MetricType::Counter);
}

void Add(MetricFamily& f, double v,
         std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}

void AddCounter(MetricFamily& f, double v,
                std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = v;
  f.metric.push_back(std::move(m));
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
  return *b;
}

// The fd-socket error reasons; anything else is counted as "other".
constexpr std::string_view kReasons[] = {
    "too_large",    "too_many_fds",    "ctrunc",           "bad_message",
    "unknown_type", "unexpected_type", "unexpected_fd",    "no_session",
    "bad_version",  "not_allowed",     "session_refused",  "already_hello",
    "no_fd",        "not_dmabuf",      "too_many_tickets", "not_reading"};

}  // namespace

class Metrics::BrokerCollector : public prometheus::Collectable {
 public:
  explicit BrokerCollector(Broker* broker) : broker_(broker) {}
  std::vector<MetricFamily> Collect() const override {
    StatsSnapshot s = broker_->AdminSnapshot();
    std::vector<MetricFamily> out;
    MetricFamily sessions =
        Gauge("devmem_sessions", "Open sessions on the fd socket.");
    Add(sessions, s.sessions);
    out.push_back(std::move(sessions));

    MetricFamily bindings = Gauge("devmem_bindings", "Bindings by state.");
    Add(bindings, s.bindings_active, {{"state", "active"}});
    Add(bindings, s.bindings_draining, {{"state", "draining"}});
    Add(bindings, s.bindings_released, {{"state", "released"}});
    out.push_back(std::move(bindings));

    MetricFamily bound =
        Gauge("devmem_bound_bytes", "Bytes of dmabuf in ACTIVE bindings.");
    Add(bound, static_cast<double>(s.bound_bytes));
    out.push_back(std::move(bound));

    MetricFamily tickets =
        Gauge("devmem_tickets", "Tickets issued, not yet used or expired.");
    Add(tickets, s.tickets_outstanding);
    out.push_back(std::move(tickets));

    MetricFamily queues =
        Gauge("devmem_queues_in_use", "RX queues held by ACTIVE bindings.");
    for (const DeviceUsage& d : s.devices) {
      Add(queues, d.queues_in_use, {{"device", d.device}});
    }
    out.push_back(std::move(queues));

    // Per device, from the provider: link state and free RX queues (queue 0
    // is never handed out, so it is not counted as free).
    Caller admin;
    admin.session_id = ~uint64_t{0};
    if (auto views = broker_->ListDevices(admin); views.ok()) {
      MetricFamily up = Gauge("devmem_device_up",
                              "1 when the device's link is up, 0 when down.");
      MetricFamily free_q =
          Gauge("devmem_queues_free", "RX queues free for a new binding.");
      MetricFamily total_q = Gauge("devmem_rx_queues", "RX queues, by device.");
      // Per queue, from qstats-get (the NIC's own counters, bound or not).
      MetricFamily q_rx_bytes = Counter("devmem_queue_rx_bytes_total",
                                        "RX bytes by device and queue.");
      MetricFamily q_rx_packets = Counter("devmem_queue_rx_packets_total",
                                          "RX packets by device and queue.");
      MetricFamily q_rx_fail = Counter(
          "devmem_queue_rx_alloc_fail_total",
          "RX buffer allocation failures (rx-alloc-fail) by device and queue.");
      MetricFamily q_tx_bytes = Counter("devmem_queue_tx_bytes_total",
                                        "TX bytes by device and queue.");
      for (const DeviceView& v : *views) {
        Add(up, v.info.up ? 1 : 0, {{"device", v.info.name}});
        Add(free_q, v.free_rx_queues, {{"device", v.info.name}});
        Add(total_q, v.info.rx_queues, {{"device", v.info.name}});
        absl::StatusOr<std::vector<QueueStats>> qs =
            broker_->GetQueueStats(v.info.name);
        if (!qs.ok()) continue;  // no qstats: no series, as node_exporter
        for (const QueueStats& q : *qs) {
          std::vector<ClientMetric::Label> l = {
              {"device", v.info.name}, {"queue", absl::StrCat(q.queue_id)}};
          if (q.rx) {
            AddCounter(q_rx_bytes, static_cast<double>(q.bytes), l);
            AddCounter(q_rx_packets, static_cast<double>(q.packets), l);
            AddCounter(q_rx_fail, static_cast<double>(q.alloc_fail), l);
          } else {
            AddCounter(q_tx_bytes, static_cast<double>(q.bytes), l);
          }
        }
      }
      out.push_back(std::move(up));
      out.push_back(std::move(free_q));
      out.push_back(std::move(total_q));
      out.push_back(std::move(q_rx_bytes));
      out.push_back(std::move(q_rx_packets));
      out.push_back(std::move(q_rx_fail));
      out.push_back(std::move(q_tx_bytes));
    }

    // Per-binding pool stats; series vanish with the binding.
    MetricFamily inflight = Gauge("devmem_pool_inflight_chunks",
                                  "Chunks with a reference held, by binding.");
    MetricFamily inflight_b = Gauge("devmem_pool_inflight_bytes",
                                    "Bytes of chunks in flight, by binding.");
    MetricFamily lent =
        Gauge("devmem_pool_lent_tokens", "Tokens lent to the job, by binding.");
    MetricFamily fails;
    fails.name = "devmem_pool_alloc_failed_total";
    fails.help = "Allocations that found the pool dry (rx-alloc-fail).";
    fails.type = MetricType::Counter;
    MetricFamily recycles;
    recycles.name = "devmem_pool_recycles_total";
    recycles.help = "Chunks recycled into the pool (cached + ring).";
    recycles.type = MetricType::Counter;
    MetricFamily rx_bytes;
    rx_bytes.name = "devmem_binding_rx_bytes_total";
    rx_bytes.help = "RX payload bytes written into the dmabuf.";
    rx_bytes.type = MetricType::Counter;
    for (const BindingView& b : s.bindings) {
      if (!b.stats.has_value()) continue;
      std::vector<ClientMetric::Label> l = {
          {"binding", absl::StrCat(b.id)},
          {"device", b.device},
          {"state", std::string(BindingStateName(b.state))}};
      const RegionStats& p = b.stats->pool;
      Add(inflight, p.inflight_chunks, l);
      Add(inflight_b, static_cast<double>(p.inflight_bytes), l);
      Add(lent, p.lent_tokens, l);
      ClientMetric c;
      c.label = l;
      c.counter.value = static_cast<double>(p.alloc_failed);
      fails.metric.push_back(c);
      c.counter.value = static_cast<double>(p.recycle_cached + p.recycle_ring);
      recycles.metric.push_back(c);
      c.counter.value = static_cast<double>(b.stats->bytes_received);
      rx_bytes.metric.push_back(c);
    }
    out.push_back(std::move(inflight));
    out.push_back(std::move(inflight_b));
    out.push_back(std::move(lent));
    out.push_back(std::move(fails));
    out.push_back(std::move(recycles));
    out.push_back(std::move(rx_bytes));
    return out;
  }

 private:
  Broker* const broker_;
};

Metrics::Metrics(Broker* broker)
    : broker_(broker),
      registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<BrokerCollector>(broker)) {
  fd_errors_ = &prometheus::BuildCounter()
                    .Name("devmem_fd_socket_errors_total")
                    .Help("Requests on the fd socket rejected, by reason.")
                    .Register(*registry_);
  for (std::string_view r : kReasons)
    fd_errors_->Add({{"reason", std::string(r)}});
  fd_errors_->Add({{"reason", "other"}});
  rpc_results_ = &prometheus::BuildCounter()
                      .Name("devmem_rpc_results_total")
                      .Help("Bind/Unbind RPCs by method and gRPC code.")
                      .Register(*registry_);
  auto& lat = prometheus::BuildHistogram()
                  .Name("devmem_rpc_latency_seconds")
                  .Help("Bind and Unbind latency, server side.")
                  .Register(*registry_);
  bind_latency_ = &lat.Add({{"method", "Bind"}}, LatencyBuckets());
  plugin_registered_ =
      &prometheus::BuildGauge()
           .Name("devmem_device_plugin_registered")
           .Help("1 while the device plugin is registered with the kubelet.")
           .Register(*registry_);
  unbind_latency_ = &lat.Add({{"method", "Unbind"}}, LatencyBuckets());
}

Metrics::~Metrics() { exposer_.reset(); }

absl::StatusOr<int> Metrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(collector_);
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string Metrics::Render() const {
  std::vector<MetricFamily> all = registry_->Collect();
  for (auto& f : collector_->Collect()) all.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(all);
}

void Metrics::FdSocketError(std::string_view reason) {
  for (std::string_view r : kReasons) {
    if (r == reason) {
      fd_errors_->Add({{"reason", std::string(r)}}).Increment();
      return;
    }
  }
  fd_errors_->Add({{"reason", "other"}}).Increment();
}

void Metrics::DevicePluginRegistered(bool registered) {
  plugin_registered_->Add({}).Set(registered ? 1 : 0);
}

void Metrics::BindDone(absl::Duration latency, const absl::Status& s) {
  bind_latency_->Observe(absl::ToDoubleSeconds(latency));
  rpc_results_
      ->Add({{"method", "Bind"}, {"code", absl::StatusCodeToString(s.code())}})
      .Increment();
}

void Metrics::UnbindDone(absl::Duration latency, const absl::Status& s) {
  unbind_latency_->Observe(absl::ToDoubleSeconds(latency));
  rpc_results_
      ->Add(
          {{"method", "Unbind"}, {"code", absl::StatusCodeToString(s.code())}})
      .Increment();
}

}  // namespace devmem::server
