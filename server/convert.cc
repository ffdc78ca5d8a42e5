#include "server/convert.h"

#include "absl/strings/str_cat.h"

namespace devmem::server {

namespace {

v1::Capability CapToProto(const Capability& c) {
  switch (c.state) {
    case Capability::State::kUnknown:
      return v1::CAPABILITY_UNKNOWN;
    case Capability::State::kSupported:
      return v1::CAPABILITY_SUPPORTED;
    case Capability::State::kUnsupported:
      return v1::CAPABILITY_UNSUPPORTED;
  }
  return v1::CAPABILITY_UNSPECIFIED;
}

v1::HeaderSplit HdsToProto(HeaderSplit h) {
  switch (h) {
    case HeaderSplit::kUnknown:
      return v1::HEADER_SPLIT_UNKNOWN;
    case HeaderSplit::kDisabled:
      return v1::HEADER_SPLIT_DISABLED;
    case HeaderSplit::kEnabled:
      return v1::HEADER_SPLIT_ENABLED;
  }
  return v1::HEADER_SPLIT_UNSPECIFIED;
}

absl::StatusOr<Flow> FlowFromProto(const v1::Flow& f) {
  if (f.src_port() > 65535 || f.dst_port() > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("flow: port out of range (src ", f.src_port(), ", dst ",
                     f.dst_port(), ")"));
  }
  if (f.src_ip().size() > 64 || f.dst_ip().size() > 64) {
    return absl::InvalidArgumentError("flow: address too long");
  }
  Flow out;
  out.ipv6 = f.ipv6();
  out.src_ip = f.src_ip();
  out.dst_ip = f.dst_ip();
  out.src_port = static_cast<uint16_t>(f.src_port());
  out.dst_port = static_cast<uint16_t>(f.dst_port());
  return out;
}

void FlowToProto(const Flow& f, v1::Flow* out) {
  out->set_ipv6(f.ipv6);
  out->set_src_ip(f.src_ip);
  out->set_dst_ip(f.dst_ip);
  out->set_src_port(f.src_port);
  out->set_dst_port(f.dst_port);
}

int64_t UnixNs(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return 0;
  return absl::ToUnixNanos(t);
}

}  // namespace

absl::StatusOr<BindParams> FromProto(const v1::BindRequest& req) {
  BindParams p;
  p.ticket = req.ticket();
  p.device = req.device();
  switch (req.kind_case()) {
    case v1::BindRequest::kRx: {
      p.rx = true;
      p.num_queues = req.rx().num_queues();
      p.queue_ids.assign(req.rx().queue_ids().begin(),
                         req.rx().queue_ids().end());
      p.chunk_size = req.rx().chunk_size();
      for (const v1::Flow& f : req.rx().flows()) {
        auto flow = FlowFromProto(f);
        if (!flow.ok()) return flow.status();
        p.flows.push_back(*std::move(flow));
      }
      break;
    }
    case v1::BindRequest::kTx:
      p.rx = false;
      break;
    default:
      return absl::InvalidArgumentError("BindRequest: set rx or tx");
  }
  return p;
}

v1::BindingState ToProto(BindingState s) {
  switch (s) {
    case BindingState::kActive:
      return v1::BINDING_STATE_ACTIVE;
    case BindingState::kDraining:
      return v1::BINDING_STATE_DRAINING;
    case BindingState::kReleased:
      return v1::BINDING_STATE_RELEASED;
  }
  return v1::BINDING_STATE_UNSPECIFIED;
}

void ToProto(const BindingView& v, v1::Binding* out) {
  out->set_id(v.id);
  out->set_dmabuf_id(v.id);
  out->set_device(v.device);
  out->set_direction(v.rx ? v1::DIRECTION_RX : v1::DIRECTION_TX);
  for (uint32_t q : v.queues) out->add_queues(q);
  out->set_chunk_size(v.chunk_size);
  out->set_state(ToProto(v.state));
  out->set_size_bytes(v.size_bytes);
  out->set_endpoint(v.endpoint);
  out->set_session_id(v.session_id);
  out->set_uid(v.uid);
  out->set_pid(static_cast<uint32_t>(v.pid));
  for (const Flow& f : v.flows) FlowToProto(f, out->add_flows());
  out->set_bound_at_unix_ns(UnixNs(v.bound_at));
  out->set_released_at_unix_ns(UnixNs(v.released_at));
  out->set_release_reason(v.release_reason);
  out->set_redacted(v.redacted);
  out->set_data_path(v.data_path);
}

void ToProto(const DeviceView& d, v1::Device* out) {
  const DeviceInfo& i = d.info;
  out->set_name(i.name);
  out->set_ifindex(i.ifindex);
  out->set_rx_queues(i.rx_queues);
  out->set_tx_queues(i.tx_queues);
  out->set_numa_node(i.numa_node);
  out->set_up(i.up);
  out->set_header_split(HdsToProto(i.header_split));
  out->set_hds_thresh(i.hds_thresh);
  out->set_rx_capability(CapToProto(i.rx_capability));
  out->set_rx_capability_reason(i.rx_capability.reason);
  out->set_tx_capability(CapToProto(i.tx_capability));
  out->set_tx_capability_reason(i.tx_capability.reason);
  for (size_t k = 0; k < i.queues.size(); ++k) {
    const QueueInfo& q = i.queues[k];
    v1::Queue* pq = out->add_queues();
    pq->set_id(q.id);
    pq->set_rx(q.rx);
    pq->set_bound(q.binding_id.has_value());
    pq->set_binding_id(
        k < d.visible_binding_ids.size() ? d.visible_binding_ids[k] : 0);
    pq->set_napi_id(q.napi_id.value_or(0));
  }
  out->set_free_rx_queues(d.free_rx_queues);
}

void ToProto(const RegionStats& s, v1::PoolStats* out) {
  out->set_alloc_fast(s.alloc_fast);
  out->set_alloc_slow(s.alloc_slow);
  out->set_alloc_empty(s.alloc_empty);
  out->set_alloc_refill(s.alloc_refill);
  out->set_alloc_failed(s.alloc_failed);
  out->set_recycle_cached(s.recycle_cached);
  out->set_recycle_cache_full(s.recycle_cache_full);
  out->set_recycle_ring(s.recycle_ring);
  out->set_recycle_ring_full(s.recycle_ring_full);
  out->set_recycle_released(s.recycle_released);
  out->set_token_errors(s.token_errors);
  out->set_ref_errors(s.ref_errors);
  out->set_inflight_chunks(s.inflight_chunks);
  out->set_inflight_bytes(s.inflight_bytes);
  out->set_lent_tokens(s.lent_tokens);
  out->set_capacity_chunks(s.capacity_chunks);
  out->set_chunk_size(s.chunk_size);
}

void ToProto(const StatsSnapshot& s, v1::GetStatsResponse* out) {
  out->set_sessions(s.sessions);
  out->set_bindings_active(s.bindings_active);
  out->set_bindings_draining(s.bindings_draining);
  out->set_bound_bytes(s.bound_bytes);
  out->set_tickets_outstanding(s.tickets_outstanding);
  for (const DeviceUsage& d : s.devices) {
    v1::DeviceStats* pd = out->add_devices();
    pd->set_name(d.device);
    pd->set_queues_in_use(d.queues_in_use);
    pd->set_bindings(d.bindings);
    pd->set_bound_bytes(d.bound_bytes);
  }
  for (const BindingView& b : s.bindings) {
    v1::BindingStats* pb = out->add_bindings();
    pb->set_binding_id(b.id);
    pb->set_device(b.device);
    pb->set_state(ToProto(b.state));
    pb->set_bound_bytes(b.size_bytes);
    if (b.stats.has_value()) {
      pb->set_bytes_received(b.stats->bytes_received);
      pb->set_bytes_sent(b.stats->bytes_sent);
      pb->set_frags(b.stats->frags);
      pb->set_alloc_fail(b.stats->alloc_fail);
      if (b.stats->pool.capacity_chunks > 0) {
        ToProto(b.stats->pool, pb->mutable_pool());
      }
      if (b.stats->kernel_inflight.has_value()) {
        pb->set_kernel_inflight(*b.stats->kernel_inflight);
      }
      if (b.stats->kernel_detach_time.has_value()) {
        pb->set_kernel_detach_time(*b.stats->kernel_detach_time);
      }
    }
  }
}

}  // namespace devmem::server
