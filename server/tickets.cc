#include "server/tickets.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem::server {

Clock* Clock::Real() {
  class RealClock : public Clock {
   public:
    absl::Time Now() override { return absl::Now(); }
  };
  static RealClock* clock = new RealClock;
  return clock;
}

absl::StatusOr<std::string> RandomHex128() {
  unsigned char buf[16];
  size_t got = 0;
  while (got < sizeof(buf)) {
    const ssize_t n = ::getrandom(buf + got, sizeof(buf) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("getrandom");
    }
    got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(buf), sizeof(buf)));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = diff | (static_cast<unsigned char>(a[i]) ^
                   static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

namespace {

absl::Status ExpiredError(absl::Duration ttl) {
  return absl::NotFoundError(
      absl::StrCat("ticket expired ", absl::FormatDuration(ttl),
                   " after RegisterDmabuf; register the dmabuf again"));
}

uint64_t TombstoneOf(std::string_view ticket) {
  return absl::Hash<absl::string_view>{}(
      absl::string_view(ticket.data(), ticket.size()));
}

}  // namespace

absl::StatusOr<TicketStore::Issued> TicketStore::Issue(uint64_t session,
                                                       UniqueFd dmabuf,
                                                       DmabufInfo info) {
  auto ticket = RandomHex128();
  if (!ticket.ok()) return ticket.status();
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  ExpireLocked(now);
  SessionState& state = sessions_[session];
  if (state.live >= max_per_session_) {
    const size_t live = state.live;
    TrimLocked(session);
    return absl::ResourceExhaustedError(absl::StrCat(
        "session ", session, " holds ", live, " unused tickets (limit ",
        max_per_session_, "): bind or let them expire"));
  }
  ++state.live;
  const absl::Time expires = now + ttl_;
  tickets_.emplace(*ticket,
                   Entry{session, expires, std::move(dmabuf), std::move(info)});
  return Issued{*std::move(ticket), expires};
}

absl::StatusOr<TicketStore::Redeemed> TicketStore::Consume(
    std::string_view ticket, uint64_t session) {
  absl::MutexLock l(&mu_);
  auto it = tickets_.find(absl::string_view(ticket.data(), ticket.size()));
  if (it != tickets_.end() && it->second.session == session) {
    Entry e = std::move(it->second);
    tickets_.erase(it);
    SessionState& state = sessions_[session];
    --state.live;
    if (clock_->Now() >= e.expires) {
      BuryLocked(state, TombstoneOf(ticket));
      return ExpiredError(ttl_);  // e's fd closes here
    }
    TrimLocked(session);
    return Redeemed{std::move(e.dmabuf), std::move(e.info)};
  }
  // Only this session's tombstones: another session's expired ticket must
  // read exactly like one never issued.
  if (auto s = sessions_.find(session); s != sessions_.end()) {
    const uint64_t key = TombstoneOf(ticket);
    for (uint64_t t : s->second.expired) {
      if (t == key) return ExpiredError(ttl_);
    }
  }
  return absl::NotFoundError(
      "unknown ticket (never issued to this session, or already used)");
}

size_t TicketStore::DropSession(uint64_t session) {
  absl::MutexLock l(&mu_);
  size_t n = 0;
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    if (it->second.session == session) {
      tickets_.erase(it++);
      ++n;
    } else {
      ++it;
    }
  }
  if (auto s = sessions_.find(session); s != sessions_.end()) {
    tombstones_ -= s->second.expired.size();
    sessions_.erase(s);
  }
  return n;
}

size_t TicketStore::Expire() {
  absl::MutexLock l(&mu_);
  return ExpireLocked(clock_->Now());
}

size_t TicketStore::ExpireLocked(absl::Time now) {
  struct Dead {
    absl::Time expires;
    uint64_t session;
    uint64_t tombstone;
  };
  std::vector<Dead> dead;
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    if (now >= it->second.expires) {
      dead.push_back(
          {it->second.expires, it->second.session, TombstoneOf(it->first)});
      tickets_.erase(it++);
    } else {
      ++it;
    }
  }
  // Oldest first, so that past the bound the oldest tombstones go.
  std::sort(dead.begin(), dead.end(),
            [](const Dead& a, const Dead& b) { return a.expires < b.expires; });
  for (const Dead& d : dead) {
    SessionState& state = sessions_[d.session];
    --state.live;
    BuryLocked(state, d.tombstone);
  }
  return dead.size();
}

void TicketStore::BuryLocked(SessionState& state, uint64_t tombstone) {
  if (max_per_session_ == 0) return;
  if (state.expired.size() >= max_per_session_) {
    state.expired.pop_front();
    --tombstones_;
  }
  state.expired.push_back(tombstone);
  ++tombstones_;
}

void TicketStore::TrimLocked(uint64_t session) {
  auto s = sessions_.find(session);
  if (s != sessions_.end() && s->second.live == 0 &&
      s->second.expired.empty()) {
    sessions_.erase(s);
  }
}

size_t TicketStore::size() const {
  absl::MutexLock l(&mu_);
  return tickets_.size();
}

size_t TicketStore::tombstones() const {
  absl::MutexLock l(&mu_);
  return tombstones_;
}

}  // namespace devmem::server
