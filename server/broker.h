// Broker: the core of devmemd. Sessions, tickets, bindings, quotas and the
// allowlist, without gRPC.
//
// A session is one connection on the fd socket (server/fd_server.h). It owns
// every binding made with it: CloseSession() releases them all. A Bind
// consumes a ticket of the caller's session and runs, in order: ticket ->
// quota -> PrepareDevice -> BindRx/BindTx -> AddFlow... -> data-path
// handover (the provider's DataPath fd, if any, goes to the session); each step
// is a member of one record (LiveBinding) declared in that order, so a
// failure or a release unwinds in reverse. A released binding is DRAINING
// until its region has every chunk back, then RELEASED, and stays visible in
// a bounded history.
//
// Callers are identified by a Caller: an authenticated session (uid, gid,
// pid) or an anonymous reader. Details of a binding are shown only to its
// owner's uid (and root); others see redacted views or counts.
//
// Thread safety: every method is thread-safe. Provider operations that change
// devices (prepare, bind, release) are serialized by one lock; reads are not
// blocked by them for longer than a map lookup.
//
// Ownership: the Broker borrows the Provider (it must outlive the Broker) and
// owns every fd it is given.
#ifndef DEVMEM_SERVER_BROKER_H_
#define DEVMEM_SERVER_BROKER_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/fd_socket.h"
#include "base/unique_fd.h"
#include "providers/provider.h"
#include "server/bind_params.h"
#include "server/clock.h"
#include "server/tickets.h"

namespace devmem::server {

enum class BindingState { kActive = 1, kDraining = 2, kReleased = 3 };
const char* BindingStateName(BindingState s);  // "active", ...

struct AllowPolicy {
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
  bool allow_all = false;
};

struct QuotaPolicy {
  uint32_t max_bindings = 16;
  uint64_t max_bound_bytes = uint64_t{1} << 40;
  uint32_t max_queues = 64;
  uint32_t max_sessions = 4096;
};

// Where daemon-initiated messages for a session go (the fd socket).
// Implemented by server/fd_server.cc and by tests. No data goes this way: a
// binding's data path is its own fd.
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  // Passes `fd` (the job's end of a binding's data path) to the session, as
  // a DataPath message with SCM_RIGHTS; the sink does not keep it. Waits at
  // most the fd server's reply timeout for a job that does not read.
  // Errors: Unavailable when the session is gone or did not take it.
  virtual absl::Status SendDataPath(uint32_t binding_id, BorrowedFd fd) = 0;
  // The binding was released (`why` says by what); best effort.
  virtual void SendBindingClosed(uint32_t binding_id,
                                 const absl::Status& why) = 0;
};

// Who is calling. session_id == 0: an anonymous reader.
struct Caller {
  uint64_t session_id = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  bool local = true;  // on the local Unix socket (may mutate)
  bool authenticated() const { return session_id != 0; }
};

// A binding as a caller may see it.
struct BindingView {
  uint32_t id = 0;
  std::string device;
  bool rx = true;
  std::vector<uint32_t> queues;
  uint32_t num_queues = 0;
  uint32_t chunk_size = 0;
  uint64_t size_bytes = 0;
  BindingState state = BindingState::kActive;
  std::string endpoint;
  bool data_path = false;  // its fd went to the owning session (sim)
  uint64_t session_id = 0;
  uid_t uid = 0;
  pid_t pid = 0;
  std::vector<Flow> flows;
  absl::Time bound_at;
  absl::Time released_at = absl::InfinitePast();
  std::string release_reason;
  bool redacted = false;
  // Filled by GetStats only.
  std::optional<BindingStats> stats;
};

struct BindingList {
  std::vector<BindingView> bindings;  // the caller's uid's
  uint32_t other_active = 0;
  uint32_t other_draining = 0;
};

struct DeviceUsage {
  std::string device;
  uint32_t queues_in_use = 0;
  uint32_t bindings = 0;
  uint64_t bound_bytes = 0;
};

struct StatsSnapshot {
  uint32_t sessions = 0;
  uint32_t bindings_active = 0;
  uint32_t bindings_draining = 0;
  uint32_t bindings_released = 0;  // in the history
  uint64_t bound_bytes = 0;
  uint32_t tickets_outstanding = 0;
  std::vector<DeviceUsage> devices;
  std::vector<BindingView> bindings;  // with stats; caller's uid's only
};

struct DeviceView {
  DeviceInfo info;
  uint32_t free_rx_queues = 0;
  // binding ids visible to the caller, by queue id (others: 0).
  std::vector<uint32_t> visible_binding_ids;  // parallel to info.queues
};

enum class EventKind { kSnapshot = 1, kBound, kDraining, kReleased };

struct Event {
  EventKind kind;
  uint64_t sequence = 0;
  absl::Time at;
  BindingView binding;  // full; redact per subscriber
};

// A subscriber's queue of events (bounded: overflow drops the oldest and the
// gap shows in the sequence numbers).
class EventQueue {
 public:
  // Waits up to `timeout` for events; returns what is queued (maybe none).
  std::vector<Event> Wait(absl::Duration timeout);
  void Push(const Event& e);

 private:
  static constexpr size_t kMaxQueued = 4096;
  absl::Mutex mu_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
};

// What Shutdown released and what it could not wait for.
struct ShutdownReport {
  uint32_t sessions_closed = 0;
  uint32_t bindings_released = 0;  // that were ACTIVE
  struct Outstanding {
    uint32_t binding_id = 0;
    std::string device;
    uint64_t chunks = 0;  // still out of its region (0: the device's pages)
  };
  // Bindings still DRAINING: memory a job or the device has not given back.
  std::vector<Outstanding> still_draining;
};

class Broker {
 public:
  struct Options {
    Clock* clock = Clock::Real();
    absl::Duration ticket_ttl = absl::Seconds(30);
    size_t max_tickets_per_session = 64;
    uint32_t default_chunk_size = 4096;
    size_t released_history = 256;
    AllowPolicy allow;
    QuotaPolicy quota;
  };

  // `provider` must outlive the Broker.
  Broker(Provider* provider, Options options);
  // Releases everything (as Shutdown).
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  std::string_view provider_name() const { return provider_->name(); }
  absl::Duration ticket_ttl() const { return tickets_.ttl(); }

  // ---- Sessions ----------------------------------------------------------
  struct SessionGrant {
    uint64_t id;
    std::string secret;  // 128 bits, hex
  };
  // PermissionDenied if the peer is not on the allowlist, ResourceExhausted
  // past the uid's session quota. `sink` receives the session's data-path
  // fds and BindingClosed messages.
  absl::StatusOr<SessionGrant> OpenSession(const PeerCred& cred,
                                           std::string client_name,
                                           std::shared_ptr<SessionSink> sink);
  // Releases every binding of the session (with `reason` in the record and
  // logs) and drops its tickets. Idempotent.
  void CloseSession(uint64_t session_id,
                    std::string_view reason = "session closed");
  // A Caller for (id, secret), compared in constant time. PermissionDenied
  // for an unknown session or a wrong secret (one message for both).
  absl::StatusOr<Caller> Authenticate(uint64_t session_id,
                                      std::string_view secret);

  // ---- Tickets -----------------------------------------------------------
  struct Registered {
    TicketStore::Issued ticket;
    DmabufInfo info;  // what Provider::CheckDmabuf learned
  };
  // Checks `dmabuf` with Provider::CheckDmabuf and issues a ticket. The fd is
  // owned by the store until Bind consumes it (or it expires / the session
  // closes); on error it is closed. Errors: FailedPrecondition (the session
  // is closed), the check's errno-carrying error (InvalidArgument, EBADF,
  // PermissionDenied, ResourceExhausted ENOMEM), ResourceExhausted (the
  // session's unused-ticket limit, no errno).
  absl::StatusOr<Registered> RegisterDmabuf(uint64_t session_id,
                                            UniqueFd dmabuf);

  // ---- Bindings ----------------------------------------------------------
  // See the file comment for the steps. REQUIRES: `caller` came from
  // Authenticate. Errors: PermissionDenied (no session, not local),
  // InvalidArgument (bad params or queue: ValidateBindParams, ChooseQueues),
  // NotFound (unknown device; unknown, expired, used or another session's
  // ticket), Unimplemented with EOPNOTSUPP (a device that cannot do devmem:
  // before any policy check), AlreadyExists (queue bound),
  // ResourceExhausted (quota or free queues), FailedPrecondition (the session
  // closed during the call), Unavailable (the session did not take its
  // data-path fd), plus the provider's errno-carrying errors. Any error leaves
  // nothing bound.
  absl::StatusOr<BindingView> Bind(const Caller& caller, BindParams params);
  // Releases binding `id` of the caller's session. Returns the binding as
  // it is after: DRAINING, or RELEASED when nothing was outstanding.
  // Errors: PermissionDenied (no session, not local, another session's
  // binding), NotFound (unknown id), FailedPrecondition (already released).
  absl::StatusOr<BindingView> Unbind(const Caller& caller, uint32_t id);
  // NotFound unless the binding is the caller's uid's (root sees all).
  absl::StatusOr<BindingView> GetBinding(const Caller& caller, uint32_t id);
  // The caller's uid's bindings in full; others only as counts.
  BindingList ListBindings(const Caller& caller, bool include_released);
  // Totals, and per-binding stats for the caller's uid's bindings only.
  StatsSnapshot GetStats(const Caller& caller);
  // Every binding with its stats, unredacted (for metrics).
  StatsSnapshot AdminSnapshot();
  // The provider's devices, with the bound queues the caller may see.
  // Errors: the provider's (ListDevices).
  absl::StatusOr<std::vector<DeviceView>> ListDevices(const Caller& caller);
  // Per-queue counters of `device` (qstats-get), for metrics. Errors: the
  // provider's (ENODEV, EOPNOTSUPP for a driver without qstats).
  absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      std::string_view device) {
    return provider_->GetQueueStats(device);
  }

  // ---- Events, policy, upkeep ---------------------------------------------
  // A queue that gets every binding transition from now on, unredacted
  // (redact with ViewFor); Unsubscribe stops it.
  std::shared_ptr<EventQueue> Subscribe();
  void Unsubscribe(const std::shared_ptr<EventQueue>& q);
  // Redacts `v` for `caller` (used for events).
  BindingView ViewFor(const Caller& caller, const BindingView& v) const;
  // Every binding the daemon still remembers (ACTIVE, DRAINING, the RELEASED
  // history), each as `caller` may see it: the same rule as live events, so
  // a WatchBindings snapshot and its stream agree. Ordered by id.
  std::vector<BindingView> SnapshotFor(const Caller& caller) const;
  // Replaces the allowlist and quotas; bindings are untouched (a uid over a
  // lowered quota keeps what it has and cannot bind more).
  void UpdatePolicy(AllowPolicy allow, QuotaPolicy quota);
  // Expires tickets and moves DRAINING bindings without a region (kernel)
  // to RELEASED once the provider says their page pools hold nothing.
  // Called periodically by the daemon (and by tests). A binding with a
  // region becomes RELEASED by itself, when its last chunk comes back.
  void Housekeeping();
  // Releases every binding ("daemon stopping"), closes every session and
  // refuses new ones; returns what was released and what is still
  // draining. Idempotent (a second call reports nothing new).
  ShutdownReport Shutdown();

  // For tests and the stop log.
  size_t session_count() const;
  size_t open_binding_count() const;  // ACTIVE + DRAINING

 private:
  struct Session;
  struct Record;
  struct Lifeline;
  class LiveBinding;
  class QuotaCharge;
  struct UidUsage {
    uint32_t sessions = 0;
    uint32_t bindings = 0;
    uint64_t bytes = 0;
    uint32_t queues = 0;
  };

  bool AllowedLocked(const PeerCred& c) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status Release(uint32_t id, std::string reason);
  // The device of `p`: NotFound when unknown, the kernel's EOPNOTSUPP
  // (Unimplemented) when it cannot do devmem in `p`'s direction -- checked
  // before any policy, as the kernel checks the device first.
  absl::StatusOr<DeviceInfo> CapableDevice(const BindParams& p);
  absl::StatusOr<std::vector<uint32_t>> ChooseQueues(const BindParams& p,
                                                     const DeviceInfo& device);
  BindingView ViewLocked(const Record& r) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool MaySeeLocked(const Caller& c, const Record& r) const;
  void PublishLocked(EventKind kind, const Record& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimHistoryLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkReleasedLocked(Record& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Record (`id`, `generation`), if still DRAINING, becomes RELEASED; `by`
  // says what drained it, for the log.
  void ReleaseDrainedLocked(uint32_t id, uint64_t generation,
                            std::string_view by)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The region of record (`id`, `generation`) has every chunk back.
  void RegionReleased(uint32_t id, uint64_t generation)
      ABSL_LOCKS_EXCLUDED(mu_);

  Provider* const provider_;
  Clock* const clock_;
  const uint32_t default_chunk_size_;
  const size_t released_history_;
  TicketStore tickets_;

  // Serializes device-changing provider calls (prepare/bind/release), so
  // queue choice and binding are atomic with respect to each other.
  absl::Mutex bind_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  AllowPolicy allow_ ABSL_GUARDED_BY(mu_);
  QuotaPolicy quota_ ABSL_GUARDED_BY(mu_);
  uint64_t next_session_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  // Every binding not yet trimmed from the history, by id.
  std::map<uint32_t, std::unique_ptr<Record>> records_ ABSL_GUARDED_BY(mu_);
  std::deque<uint32_t> released_order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uid_t, UidUsage> usage_ ABSL_GUARDED_BY(mu_);
  uint64_t next_event_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::shared_ptr<EventQueue>> subscribers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> next_generation_{1};
  const std::shared_ptr<Lifeline> lifeline_;
};

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_BROKER_H_
