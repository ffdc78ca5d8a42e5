#include "server/broker.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "server/bind_params.h"

namespace devmem::server {

const char* BindingStateName(BindingState s) {
  switch (s) {
    case BindingState::kActive:
      return "active";
    case BindingState::kDraining:
      return "draining";
    case BindingState::kReleased:
      return "released";
  }
  return "unknown";
}

// ---- EventQueue -------------------------------------------------------------

std::vector<Event> EventQueue::Wait(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]()
                   ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  std::vector<Event> out(events_.begin(), events_.end());
  events_.clear();
  return out;
}

void EventQueue::Push(const Event& e) {
  absl::MutexLock l(&mu_);
  if (events_.size() >= kMaxQueued) events_.pop_front();
  events_.push_back(e);
}

// ---- Private pieces --------------------------------------------------------

struct Broker::Session {
  uint64_t id = 0;
  PeerCred cred;
  std::string name;
  std::string secret;
  std::shared_ptr<SessionSink> sink;
  bool closed = false;
  std::set<uint32_t> bindings;  // ACTIVE bindings made with this session
};

// One uid's share of the quota, held by a live binding.
class Broker::QuotaCharge {
 public:
  QuotaCharge(Broker* broker, uid_t uid, uint64_t bytes, uint32_t queues)
      : broker_(broker), uid_(uid), bytes_(bytes), queues_(queues) {}
  ~QuotaCharge() {
    absl::MutexLock l(&broker_->mu_);
    UidUsage& u = broker_->usage_[uid_];
    u.bindings -= 1;
    u.bytes -= bytes_;
    u.queues -= queues_;
  }

 private:
  Broker* const broker_;
  const uid_t uid_;
  const uint64_t bytes_;
  const uint32_t queues_;
};

// Everything a bound binding holds, in order of acquisition: destruction
// unwinds in reverse (flows, binding, preparation, quota, fd).
class Broker::LiveBinding {
 public:
  UniqueFd dmabuf;
  std::unique_ptr<QuotaCharge> quota;
  std::unique_ptr<DevicePreparation> prep;
  std::unique_ptr<ProviderBinding> binding;
  std::vector<std::unique_ptr<FlowRule>> flows;
};

struct Broker::Record {
  BindingView view;  // unredacted; state and release fields kept current
  std::unique_ptr<LiveBinding> live;  // set while ACTIVE
  std::shared_ptr<Region> region;     // set until RELEASED (drain tracking)
  BindingStats last_stats;            // taken at release
  uint64_t generation = 0;            // tells a reused id's records apart
};

// Lets a region's release callback, which may run on any thread at any
// later time, reach the Broker only while it exists.
struct Broker::Lifeline {
  absl::Mutex mu;
  Broker* broker ABSL_GUARDED_BY(mu);
};

namespace {

// A failed Bind step says which step it was; the provider's code and errno
// are kept (WithContext).
template <typename T>
absl::StatusOr<T> StepResult(absl::StatusOr<T> r, absl::string_view step) {
  if (r.ok()) return r;
  return WithContext(r.status(), absl::StrCat("Bind step ", step));
}

}  // namespace

// ---- Broker ----------------------------------------------------------------

Broker::Broker(Provider* provider, Options options)
    : provider_(provider),
      clock_(options.clock),
      default_chunk_size_(options.default_chunk_size),
      released_history_(options.released_history),
      tickets_(options.clock, options.ticket_ttl,
               options.max_tickets_per_session),
      allow_(std::move(options.allow)),
      quota_(options.quota),
      lifeline_(std::make_shared<Lifeline>()) {
  absl::MutexLock l(&lifeline_->mu);
  lifeline_->broker = this;
}

Broker::~Broker() {
  (void)Shutdown();
  absl::MutexLock l(&lifeline_->mu);
  lifeline_->broker = nullptr;
}

bool Broker::AllowedLocked(const PeerCred& c) const {
  if (allow_.allow_all || c.uid == 0) return true;
  if (std::find(allow_.uids.begin(), allow_.uids.end(), c.uid) !=
      allow_.uids.end()) {
    return true;
  }
  return std::find(allow_.gids.begin(), allow_.gids.end(), c.gid) !=
         allow_.gids.end();
}

absl::StatusOr<Broker::SessionGrant> Broker::OpenSession(
    const PeerCred& cred, std::string client_name,
    std::shared_ptr<SessionSink> sink) {
  ASSIGN_OR_RETURN(std::string secret, RandomHex128());
  absl::MutexLock l(&mu_);
  if (shut_down_) return absl::UnavailableError("daemon is stopping");
  if (!AllowedLocked(cred)) {
    return absl::PermissionDeniedError(
        absl::StrCat("uid ", cred.uid, " gid ", cred.gid,
                     " is not on the devmemd allowlist"));
  }
  UidUsage& u = usage_[cred.uid];
  if (u.sessions >= quota_.max_sessions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("quota max_sessions: uid ", cred.uid, " has ", u.sessions,
                     " sessions (limit ", quota_.max_sessions, ")"));
  }
  ++u.sessions;
  auto s = std::make_unique<Session>();
  s->id = next_session_id_++;
  s->cred = cred;
  s->name = client_name.substr(0, 128);
  s->secret = secret;
  s->sink = std::move(sink);
  const uint64_t id = s->id;
  sessions_.emplace(id, std::move(s));
  DEVMEM_LOG(kInfo, "session_open")
      .Kv("session", id)
      .Kv("uid", cred.uid)
      .Kv("gid", cred.gid)
      .Kv("pid", cred.pid)
      .Kv("client", client_name.substr(0, 128));
  return SessionGrant{id, std::move(secret)};
}

void Broker::CloseSession(uint64_t session_id, std::string_view reason) {
  {
    absl::MutexLock l(&mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || it->second->closed) return;
    it->second->closed = true;  // no Bind may add to it from now on
  }
  const size_t dropped = tickets_.DropSession(session_id);
  absl::MutexLock bl(&bind_mu_);
  std::vector<uint32_t> ids;
  uid_t uid = 0;
  {
    absl::MutexLock l(&mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return;
    ids.assign(it->second->bindings.begin(), it->second->bindings.end());
    uid = it->second->cred.uid;
  }
  for (uint32_t id : ids) {
    (void)Release(id, std::string(reason));
  }
  absl::MutexLock l(&mu_);
  sessions_.erase(session_id);
  usage_[uid].sessions -= 1;
  DEVMEM_LOG(kInfo, "session_close")
      .Kv("session", session_id)
      .Kv("uid", uid)
      .Kv("released_bindings", ids.size())
      .Kv("dropped_tickets", dropped);
}

absl::StatusOr<Caller> Broker::Authenticate(uint64_t session_id,
                                            std::string_view secret) {
  absl::ReaderMutexLock l(&mu_);
  auto it = sessions_.find(session_id);
  // Compare even when the session is unknown, against itself, so timing
  // says nothing about which part was wrong.
  const bool ok = it != sessions_.end() && !it->second->closed &&
                  ConstantTimeEquals(it->second->secret, secret);
  if (!ok) {
    return absl::PermissionDeniedError(
        "unknown session or wrong secret (devmem-session, devmem-secret)");
  }
  const Session& s = *it->second;
  return Caller{s.id, s.cred.uid, s.cred.gid, s.cred.pid, true};
}

absl::StatusOr<Broker::Registered> Broker::RegisterDmabuf(uint64_t session_id,
                                                          UniqueFd dmabuf) {
  {
    absl::ReaderMutexLock l(&mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || it->second->closed) {
      return absl::FailedPreconditionError("session is closed");
    }
  }
  ASSIGN_OR_RETURN(DmabufInfo checked, provider_->CheckDmabuf(dmabuf.borrow()));
  Registered out;
  out.info = checked;
  ASSIGN_OR_RETURN(out.ticket, tickets_.Issue(session_id, std::move(dmabuf),
                                              std::move(checked)));
  return out;
}

absl::StatusOr<DeviceInfo> Broker::CapableDevice(const BindParams& p) {
  ASSIGN_OR_RETURN(std::vector<DeviceInfo> devices, provider_->ListDevices());
  for (DeviceInfo& d : devices) {
    if (d.name != p.device) continue;
    // What the kernel checks first, before any policy of ours.
    const Capability& cap = p.rx ? d.rx_capability : d.tx_capability;
    if (cap.state == Capability::State::kUnsupported) {
      return ErrnoToStatus(
          EOPNOTSUPP,
          absl::StrCat(p.device, ": ", p.rx ? "bind-rx" : "bind-tx",
                       ": the device cannot do devmem (", cap.reason, ")"));
    }
    return std::move(d);
  }
  return absl::NotFoundError(absl::StrCat("unknown device ", p.device));
}

absl::StatusOr<std::vector<uint32_t>> Broker::ChooseQueues(
    const BindParams& p, const DeviceInfo& device) {
  const DeviceInfo* dev = &device;
  std::set<uint32_t> ours;  // queues our own ACTIVE bindings hold
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [id, r] : records_) {
      if (r->view.state == BindingState::kActive &&
          r->view.device == p.device) {
        ours.insert(r->view.queues.begin(), r->view.queues.end());
      }
    }
  }
  std::vector<uint32_t> free;  // highest first, never queue 0 (RSS)
  std::set<uint32_t> rx_ids;
  for (const QueueInfo& q : dev->queues) {
    if (!q.rx) continue;
    rx_ids.insert(q.id);
    if (q.id != 0 && !q.binding_id.has_value() && !ours.count(q.id)) {
      free.push_back(q.id);
    }
  }
  std::sort(free.rbegin(), free.rend());
  if (p.num_queues > 0) {
    if (free.size() < p.num_queues) {
      return absl::ResourceExhaustedError(
          absl::StrCat(p.device, ": ", free.size(),
                       " free RX queues (queue 0 is kept for RSS), ",
                       p.num_queues, " requested"));
    }
    free.resize(p.num_queues);
    std::sort(free.begin(), free.end());
    return free;
  }
  std::vector<uint32_t> q = p.queue_ids;
  std::sort(q.begin(), q.end());
  for (uint32_t id : q) {
    if (!rx_ids.count(id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          p.device, ": no RX queue ", id, " (", dev->rx_queues, " RX queues)"));
    }
    if (std::find(free.begin(), free.end(), id) == free.end() && id != 0) {
      return absl::AlreadyExistsError(
          absl::StrCat(p.device, ": RX queue ", id, " is already bound"));
    }
  }
  if (q.size() >= rx_ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(p.device, ": binding every RX queue leaves none for RSS"));
  }
  return q;
}

absl::StatusOr<BindingView> Broker::Bind(const Caller& caller, BindParams p) {
  if (!caller.authenticated()) {
    return absl::PermissionDeniedError(
        "Bind needs a session: send devmem-session and devmem-secret "
        "metadata from the fd socket's Welcome");
  }
  if (!caller.local) {
    return absl::PermissionDeniedError(
        "Bind is accepted only on the local Unix socket");
  }
  RETURN_IF_ERROR(ValidateBindParams(p));
  const uint32_t chunk_size = p.chunk_size ? p.chunk_size : default_chunk_size_;

  absl::MutexLock bl(&bind_mu_);
  std::shared_ptr<SessionSink> sink;
  {
    absl::ReaderMutexLock l(&mu_);
    auto it = sessions_.find(caller.session_id);
    if (it == sessions_.end() || it->second->closed) {
      return absl::FailedPreconditionError("session is closed");
    }
    sink = it->second->sink;
  }
  // Step 1: the ticket (consumed whatever happens next).
  auto live = std::make_unique<LiveBinding>();
  ASSIGN_OR_RETURN(TicketStore::Redeemed redeemed,
                   tickets_.Consume(p.ticket, caller.session_id));
  live->dmabuf = std::move(redeemed.dmabuf);
  const uint64_t size = redeemed.info.size_bytes;

  ASSIGN_OR_RETURN(const DeviceInfo device, CapableDevice(p));
  std::vector<uint32_t> queues;
  if (p.rx) {
    ASSIGN_OR_RETURN(queues, ChooseQueues(p, device));
  }
  // Step 2: the quota.
  {
    absl::MutexLock l(&mu_);
    UidUsage& u = usage_[caller.uid];
    if (u.bindings + 1 > quota_.max_bindings) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "quota max_bindings: uid ", caller.uid, " holds ", u.bindings,
          " bindings (limit ", quota_.max_bindings, ")"));
    }
    if (u.bytes + size > quota_.max_bound_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("quota max_bound_bytes: uid ", caller.uid, " has ",
                       u.bytes, " bytes bound, ", size,
                       " more would pass the limit ", quota_.max_bound_bytes));
    }
    if (u.queues + queues.size() > quota_.max_queues) {
      return absl::ResourceExhaustedError(
          absl::StrCat("quota max_queues: uid ", caller.uid, " holds ",
                       u.queues, " queues, ", queues.size(),
                       " more would pass the limit ", quota_.max_queues));
    }
    u.bindings += 1;
    u.bytes += size;
    u.queues += static_cast<uint32_t>(queues.size());
  }
  live->quota = std::make_unique<QuotaCharge>(
      this, caller.uid, size, static_cast<uint32_t>(queues.size()));

  // Steps 3-5: prepare, bind, steer.
  if (p.rx) {
    ASSIGN_OR_RETURN(live->prep,
                     StepResult(provider_->PrepareDevice(p.device, queues),
                                "prepare device"));
    RxBindSpec spec;
    spec.device = p.device;
    spec.queue_ids = queues;
    spec.dmabuf = live->dmabuf.borrow();
    spec.chunk_size = chunk_size;
    ASSIGN_OR_RETURN(live->binding,
                     StepResult(provider_->BindRx(spec), "bind-rx"));
  } else {
    TxBindSpec spec;
    spec.device = p.device;
    spec.dmabuf = live->dmabuf.borrow();
    ASSIGN_OR_RETURN(live->binding,
                     StepResult(provider_->BindTx(spec), "bind-tx"));
  }
  const uint32_t id = live->binding->id();
  for (size_t i = 0; i < p.flows.size(); ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<FlowRule> rule,
                     StepResult(live->binding->AddFlow(p.flows[i]),
                                absl::StrCat("steering rule ", i + 1, " of ",
                                             p.flows.size())));
    live->flows.push_back(std::move(rule));
  }
  // Step 6: the data path the provider made, if any, goes to the job now;
  // the daemon keeps no copy and never reads it.
  std::string endpoint;
  bool data_path = false;
  if (std::optional<DataPath> dp = live->binding->TakeDataPath()) {
    endpoint = std::move(dp->rx_endpoint);
    RETURN_IF_ERROR(WithContext(
        sink->SendDataPath(id, dp->job_end.borrow()),
        absl::StrCat("Bind step data-path handover (binding ", id, ")")));
    data_path = true;
  }

  auto rec = std::make_unique<Record>();
  BindingView& v = rec->view;
  v.id = id;
  v.device = p.device;
  v.rx = p.rx;
  v.queues = queues;
  v.num_queues = static_cast<uint32_t>(queues.size());
  v.chunk_size = p.rx ? chunk_size : 0;
  v.size_bytes = size;
  v.state = BindingState::kActive;
  v.endpoint = endpoint;
  v.data_path = data_path;
  v.session_id = caller.session_id;
  v.uid = caller.uid;
  v.pid = caller.pid;
  v.flows = p.flows;
  v.bound_at = clock_->Now();
  rec->region = live->binding->region();
  rec->generation = next_generation_.fetch_add(1);
  std::string prep_desc = live->prep ? live->prep->Describe() : "";
  rec->live = std::move(live);

  absl::MutexLock l(&mu_);
  auto sit = sessions_.find(caller.session_id);
  if (sit == sessions_.end() || sit->second->closed) {
    // The session closed while we bound: unwind (outside mu_, the quota
    // charge takes it).
    std::unique_ptr<Record> undo = std::move(rec);
    mu_.Unlock();
    undo.reset();
    mu_.Lock();
    return absl::FailedPreconditionError("session closed during Bind");
  }
  auto old = records_.find(id);
  if (old != records_.end()) {
    if (old->second->view.state != BindingState::kReleased) {
      DEVMEM_LOG(kWarning, "binding_id_reused")
          .Kv("binding", id)
          .Kv("old_state",
              std::string(BindingStateName(old->second->view.state)));
    }
    released_order_.erase(
        std::remove(released_order_.begin(), released_order_.end(), id),
        released_order_.end());
    // A draining record's leftovers go when this map entry is replaced;
    // that must not destroy a LiveBinding under mu_ (it has none).
    records_.erase(old);
  }
  sit->second->bindings.insert(id);
  BindingView out = rec->view;
  Record& r = *rec;
  records_.emplace(id, std::move(rec));
  PublishLocked(EventKind::kBound, r);
  DEVMEM_LOG(kInfo, "bind")
      .Kv("binding", id)
      .Kv("session", caller.session_id)
      .Kv("uid", caller.uid)
      .Kv("device", p.device)
      .Kv("dir", std::string(p.rx ? "rx" : "tx"))
      .Kv("queues", absl::StrJoin(queues, ","))
      .Kv("bytes", size)
      .Kv("flows", p.flows.size())
      .Kv("prepared", prep_desc);
  return out;
}

absl::Status Broker::Release(uint32_t id, std::string reason) {
  std::unique_ptr<LiveBinding> live;
  BindingView v;
  std::shared_ptr<SessionSink> notify;  // the owner, unless it is closing
  std::shared_ptr<Region> region;
  uint64_t generation = 0;
  {
    absl::MutexLock l(&mu_);
    auto it = records_.find(id);
    if (it == records_.end()) return absl::NotFoundError("no such binding");
    Record& r = *it->second;
    if (r.view.state != BindingState::kActive) {
      return absl::FailedPreconditionError(absl::StrCat(
          "binding ", id, " is already ", BindingStateName(r.view.state)));
    }
    live = std::move(r.live);
    r.last_stats = live->binding->Stats();
    r.view.state = BindingState::kDraining;
    r.view.released_at = clock_->Now();
    r.view.release_reason = reason;
    auto s = sessions_.find(r.view.session_id);
    if (s != sessions_.end()) {
      s->second->bindings.erase(id);
      if (!s->second->closed) notify = s->second->sink;
    }
    PublishLocked(EventKind::kDraining, r);
    v = r.view;
    region = r.region;
    generation = r.generation;
  }
  const absl::Time t0 = absl::Now();
  live.reset();  // flows, binding, preparation, quota, fd: in that order
  const absl::Duration took = absl::Now() - t0;
  if (notify != nullptr) {
    notify->SendBindingClosed(id, absl::CancelledError(absl::StrCat(
                                      "binding ", id, " released: ", reason)));
  }

  RetireReport out;
  if (region != nullptr) {
    if (!region->retired()) {
      // The provider left retiring to us: no new allocations from now on.
      (void)region->Retire([] {});
    }
    out = region->Outstanding();
    // RELEASED when the last chunk comes back: at once if it already has,
    // else on the thread that returns it.
    region->OnReleased([lifeline = lifeline_, id, generation] {
      absl::MutexLock ll(&lifeline->mu);
      if (lifeline->broker != nullptr) {
        lifeline->broker->RegionReleased(id, generation);
      }
    });
  }
  bool kernel_drained = false;
  if (region == nullptr) {
    // No region: the provider knows whether the device still holds pages.
    absl::StatusOr<uint64_t> inflight = provider_->ReleasedInflight(id);
    kernel_drained = inflight.ok() && *inflight == 0;
  }
  absl::MutexLock l(&mu_);
  auto it = records_.find(id);
  if (it == records_.end() || it->second->generation != generation) {
    return absl::OkStatus();
  }
  Record& r = *it->second;
  if (kernel_drained && r.view.state == BindingState::kDraining) {
    MarkReleasedLocked(r);
  }
  DEVMEM_LOG(kInfo, "unbind")
      .Kv("binding", id)
      .Kv("session", v.session_id)
      .Kv("uid", v.uid)
      .Kv("device", v.device)
      .Kv("reason", reason)
      .Kv("state", std::string(BindingStateName(r.view.state)))
      .Kv("outstanding_chunks", out.outstanding_chunks)
      .Kv("teardown_us", absl::ToInt64Microseconds(took));
  return absl::OkStatus();
}

void Broker::MarkReleasedLocked(Record& r) {
  if (r.region) {
    r.last_stats.pool = r.region->Stats();
    r.region.reset();
  }
  r.view.state = BindingState::kReleased;
  released_order_.push_back(r.view.id);
  PublishLocked(EventKind::kReleased, r);
  TrimHistoryLocked();
}

void Broker::TrimHistoryLocked() {
  while (released_order_.size() > released_history_) {
    const uint32_t id = released_order_.front();
    released_order_.pop_front();
    auto it = records_.find(id);
    if (it != records_.end() &&
        it->second->view.state == BindingState::kReleased) {
      records_.erase(it);
    }
  }
}

absl::StatusOr<BindingView> Broker::Unbind(const Caller& caller, uint32_t id) {
  if (!caller.authenticated() || !caller.local) {
    return absl::PermissionDeniedError(
        "Unbind needs the owning session on the local socket");
  }
  absl::MutexLock bl(&bind_mu_);
  {
    absl::ReaderMutexLock l(&mu_);
    auto it = records_.find(id);
    if (it == records_.end()) {
      return absl::NotFoundError(absl::StrCat("no binding ", id));
    }
    if (it->second->view.session_id != caller.session_id) {
      return absl::PermissionDeniedError(
          absl::StrCat("binding ", id, " belongs to another session"));
    }
  }
  RETURN_IF_ERROR(Release(id, "unbind"));
  absl::ReaderMutexLock l(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return absl::NotFoundError("binding trimmed");
  return it->second->view;
}

bool Broker::MaySeeLocked(const Caller& c, const Record& r) const {
  return c.authenticated() && (c.uid == 0 || c.uid == r.view.uid);
}

BindingView Broker::ViewFor(const Caller& c, const BindingView& v) const {
  if (c.authenticated() && (c.uid == 0 || c.uid == v.uid)) return v;
  BindingView red;
  red.device = v.device;
  red.rx = v.rx;
  red.num_queues = v.num_queues;
  red.state = v.state;
  red.redacted = true;
  return red;
}

std::vector<BindingView> Broker::SnapshotFor(const Caller& caller) const {
  std::vector<BindingView> out;
  absl::ReaderMutexLock l(&mu_);
  for (const auto& [id, r] : records_) out.push_back(ViewFor(caller, r->view));
  return out;
}

absl::StatusOr<BindingView> Broker::GetBinding(const Caller& caller,
                                               uint32_t id) {
  absl::ReaderMutexLock l(&mu_);
  auto it = records_.find(id);
  if (it == records_.end() || !MaySeeLocked(caller, *it->second)) {
    return absl::NotFoundError(
        absl::StrCat("no binding ", id, " visible to this caller"));
  }
  return it->second->view;
}

BindingList Broker::ListBindings(const Caller& caller, bool include_released) {
  BindingList out;
  absl::ReaderMutexLock l(&mu_);
  for (const auto& [id, r] : records_) {
    const BindingState s = r->view.state;
    if (MaySeeLocked(caller, *r)) {
      if (s == BindingState::kActive || include_released) {
        out.bindings.push_back(r->view);
      }
    } else if (s == BindingState::kActive) {
      ++out.other_active;
    } else if (s == BindingState::kDraining) {
      ++out.other_draining;
    }
  }
  return out;
}

namespace {
BindingStats RecordStats(const BindingStats& base,
                         const std::shared_ptr<Region>& region) {
  BindingStats s = base;
  if (region) s.pool = region->Stats();
  return s;
}
}  // namespace

StatsSnapshot Broker::GetStats(const Caller& caller) {
  StatsSnapshot snap;
  snap.tickets_outstanding = static_cast<uint32_t>(tickets_.size());
  absl::ReaderMutexLock l(&mu_);
  snap.sessions = static_cast<uint32_t>(sessions_.size());
  std::map<std::string, DeviceUsage> devices;
  for (const auto& [id, r] : records_) {
    const BindingState s = r->view.state;
    if (s == BindingState::kActive) {
      ++snap.bindings_active;
      snap.bound_bytes += r->view.size_bytes;
      DeviceUsage& d = devices[r->view.device];
      d.device = r->view.device;
      d.queues_in_use += r->view.num_queues;
      d.bindings += 1;
      d.bound_bytes += r->view.size_bytes;
    } else if (s == BindingState::kDraining) {
      ++snap.bindings_draining;
    } else {
      ++snap.bindings_released;
    }
    if (!MaySeeLocked(caller, *r) || s == BindingState::kReleased) continue;
    BindingView v = r->view;
    if (r->live) {
      v.stats = r->live->binding->Stats();
    } else {
      v.stats = RecordStats(r->last_stats, r->region);
    }
    snap.bindings.push_back(std::move(v));
  }
  for (auto& [name, d] : devices) snap.devices.push_back(std::move(d));
  return snap;
}

StatsSnapshot Broker::AdminSnapshot() {
  Caller root;
  root.session_id = ~uint64_t{0};
  root.uid = 0;
  return GetStats(root);
}

absl::StatusOr<std::vector<DeviceView>> Broker::ListDevices(
    const Caller& caller) {
  ASSIGN_OR_RETURN(std::vector<DeviceInfo> devices, provider_->ListDevices());
  std::vector<DeviceView> out;
  absl::ReaderMutexLock l(&mu_);
  for (DeviceInfo& d : devices) {
    DeviceView v;
    for (const QueueInfo& q : d.queues) {
      uint32_t visible = 0;
      if (q.binding_id.has_value()) {
        auto it = records_.find(*q.binding_id);
        if (it != records_.end() && MaySeeLocked(caller, *it->second)) {
          visible = *q.binding_id;
        }
      } else if (q.rx && q.id != 0) {
        ++v.free_rx_queues;
      }
      v.visible_binding_ids.push_back(visible);
    }
    v.info = std::move(d);
    out.push_back(std::move(v));
  }
  return out;
}

std::shared_ptr<EventQueue> Broker::Subscribe() {
  auto q = std::make_shared<EventQueue>();
  absl::MutexLock l(&mu_);
  subscribers_.push_back(q);
  return q;
}

void Broker::Unsubscribe(const std::shared_ptr<EventQueue>& q) {
  absl::MutexLock l(&mu_);
  subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), q),
                     subscribers_.end());
}

void Broker::PublishLocked(EventKind kind, const Record& r) {
  Event e{kind, next_event_++, clock_->Now(), r.view};
  for (const auto& q : subscribers_) q->Push(e);
}

void Broker::UpdatePolicy(AllowPolicy allow, QuotaPolicy quota) {
  absl::MutexLock l(&mu_);
  allow_ = std::move(allow);
  quota_ = quota;
  DEVMEM_LOG(kInfo, "policy_reload")
      .Kv("allow_uids", absl::StrJoin(allow_.uids, ","))
      .Kv("allow_gids", absl::StrJoin(allow_.gids, ","))
      .Kv("allow_all", std::string(allow_.allow_all ? "true" : "false"))
      .Kv("max_bindings", quota_.max_bindings)
      .Kv("max_bound_bytes", quota_.max_bound_bytes)
      .Kv("max_queues", quota_.max_queues)
      .Kv("max_sessions", quota_.max_sessions);
}

void Broker::ReleaseDrainedLocked(uint32_t id, uint64_t generation,
                                  std::string_view by) {
  auto it = records_.find(id);
  if (it == records_.end() || it->second->generation != generation ||
      it->second->view.state != BindingState::kDraining) {
    return;  // gone, replaced by a new binding with the id, or not draining
  }
  DEVMEM_LOG(kInfo, "binding_released")
      .Kv("binding", id)
      .Kv("uid", it->second->view.uid)
      .Kv("device", it->second->view.device)
      .Kv("by", std::string(by));
  MarkReleasedLocked(*it->second);
}

void Broker::RegionReleased(uint32_t id, uint64_t generation) {
  absl::MutexLock l(&mu_);
  ReleaseDrainedLocked(id, generation, "last chunk back");
}

void Broker::Housekeeping() {
  tickets_.Expire();
  // DRAINING bindings without a region (kernel): ask the device, outside
  // the lock, whether its pools still hold pages.
  std::vector<std::pair<uint32_t, uint64_t>> waiting;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [id, r] : records_) {
      if (r->view.state == BindingState::kDraining && r->region == nullptr) {
        waiting.emplace_back(id, r->generation);
      }
    }
  }
  std::vector<std::pair<uint32_t, uint64_t>> drained;
  for (const auto& [id, gen] : waiting) {
    absl::StatusOr<uint64_t> inflight = provider_->ReleasedInflight(id);
    if (inflight.ok() && *inflight == 0) drained.emplace_back(id, gen);
  }
  absl::MutexLock l(&mu_);
  for (const auto& [id, gen] : drained) {
    ReleaseDrainedLocked(id, gen, "page pools drained");
  }
}

ShutdownReport Broker::Shutdown() {
  std::vector<uint64_t> ids;
  {
    absl::MutexLock l(&mu_);
    shut_down_ = true;
    for (const auto& [id, s] : sessions_) ids.push_back(id);
  }
  ShutdownReport report;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [id, r] : records_) {
      if (r->view.state == BindingState::kActive) ++report.bindings_released;
    }
  }
  for (uint64_t id : ids) CloseSession(id, "daemon stopping");
  report.sessions_closed = static_cast<uint32_t>(ids.size());
  Housekeeping();
  absl::ReaderMutexLock l(&mu_);
  for (const auto& [id, r] : records_) {
    if (r->view.state != BindingState::kDraining) continue;
    ShutdownReport::Outstanding o;
    o.binding_id = id;
    o.device = r->view.device;
    if (r->region) o.chunks = r->region->Outstanding().outstanding_chunks;
    report.still_draining.push_back(std::move(o));
  }
  if (!ids.empty() || !report.still_draining.empty()) {
    uint64_t chunks = 0;
    for (const auto& o : report.still_draining) chunks += o.chunks;
    DEVMEM_LOG(kInfo, "broker_shutdown")
        .Kv("sessions_closed", report.sessions_closed)
        .Kv("bindings_released", report.bindings_released)
        .Kv("still_draining", report.still_draining.size())
        .Kv("outstanding_chunks", chunks);
  }
  return report;
}

size_t Broker::session_count() const {
  absl::ReaderMutexLock l(&mu_);
  return sessions_.size();
}

size_t Broker::open_binding_count() const {
  absl::ReaderMutexLock l(&mu_);
  size_t n = 0;
  for (const auto& [id, r] : records_) {
    if (r->view.state != BindingState::kReleased) ++n;
  }
  return n;
}

}  // namespace devmem::server
