// TicketStore: single-use, expiring, unguessable handles for dmabuf fds that
// arrived on a session.
//
// A ticket is 128 random bits from getrandom(2), printed as 32 lowercase hex
// digits. It is valid for one Consume() by the session that registered the
// fd, until it expires (`ttl` after Issue, by the injected clock). The store
// owns each fd until Consume() hands it over, the ticket expires (the fd is
// closed on the next Expire()/Issue()/Consume()), or the session drops.
//
// An expired ticket leaves a tombstone, so its session is told "expired" for
// as long as the session lives, not only until the next Expire(). A tombstone
// is a 64-bit hash of the ticket, never the ticket or its fd; a session keeps
// at most max_per_session of them (the oldest are forgotten first), and
// DropSession forgets all of them. Tombstones are looked up only for the
// caller's own session: another session's expired ticket is "unknown".
//
// Thread safety: thread-safe.
#ifndef DEVMEM_SERVER_TICKETS_H_
#define DEVMEM_SERVER_TICKETS_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "providers/provider.h"
#include "server/clock.h"

namespace devmem::server {

// 128 random bits as 32 hex digits, from getrandom(2). Internal on failure.
absl::StatusOr<std::string> RandomHex128();

// Compares two secrets in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class TicketStore {
 public:
  struct Issued {
    std::string ticket;
    absl::Time expires;
  };
  struct Redeemed {
    UniqueFd dmabuf;
    DmabufInfo info;
  };

  // `clock` must outlive the store.
  TicketStore(Clock* clock, absl::Duration ttl, size_t max_per_session)
      : clock_(clock), ttl_(ttl), max_per_session_(max_per_session) {}

  // Takes ownership of `dmabuf`. ResourceExhausted if the session already
  // holds max_per_session unused tickets (the fd is closed); tombstones do
  // not count.
  absl::StatusOr<Issued> Issue(uint64_t session, UniqueFd dmabuf,
                               DmabufInfo info);

  // Hands over the fd of `ticket`, removing the ticket. NotFound for an
  // unknown, used or foreign ticket (one message for all three, so another
  // session learns nothing; a foreign ticket stays valid for its owner), and
  // NotFound "ticket expired ..." for an expired ticket of this session, on
  // every try until the session drops (or its tombstone is among the oldest
  // past max_per_session).
  absl::StatusOr<Redeemed> Consume(std::string_view ticket, uint64_t session);

  // Closes every fd of `session`'s tickets and forgets its tombstones.
  // Returns how many unused tickets were dropped.
  size_t DropSession(uint64_t session);
  // Closes the fds of expired tickets, leaving tombstones. Returns how many.
  size_t Expire();
  // Unused tickets, each holding its fd (expired ones Expire() has not
  // collected yet included).
  size_t size() const;
  // Tombstones held, over all sessions (no fds).
  size_t tombstones() const;
  absl::Duration ttl() const { return ttl_; }

 private:
  struct Entry {
    uint64_t session;
    absl::Time expires;
    UniqueFd dmabuf;
    DmabufInfo info;
  };
  // What the store keeps per session: its unused tickets' count and the
  // tombstones of its expired ones, oldest first.
  struct SessionState {
    size_t live = 0;
    std::deque<uint64_t> expired;
  };
  size_t ExpireLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds `tombstone` (a ticket's hash) to `state`, forgetting the oldest
  // past max_per_session_.
  void BuryLocked(SessionState& state, uint64_t tombstone)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Erases `session`'s state once it has neither tickets nor tombstones.
  void TrimLocked(uint64_t session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const absl::Duration ttl_;
  const size_t max_per_session_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> tickets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, SessionState> sessions_ ABSL_GUARDED_BY(mu_);
  size_t tombstones_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_TICKETS_H_
