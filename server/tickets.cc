#include "server/tickets.h"

#include <sys/random.h>

#include <cerrno>
#include <vector>

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

absl::StatusOr<TicketStore::Issued> TicketStore::Issue(uint64_t session,
                                                       UniqueFd dmabuf,
                                                       DmabufInfo info) {
  auto ticket = RandomHex128();
  if (!ticket.ok()) return ticket.status();
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  ExpireLocked(now);
  size_t& count = per_session_[session];
  if (count >= max_per_session_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session ", session, " holds ", count, " unused tickets (limit ",
        max_per_session_, "): bind or let them expire"));
  }
  ++count;
  const absl::Time expires = now + ttl_;
  tickets_.emplace(*ticket,
                   Entry{session, expires, std::move(dmabuf), std::move(info)});
  return Issued{*std::move(ticket), expires};
}

absl::StatusOr<TicketStore::Redeemed> TicketStore::Consume(
    std::string_view ticket, uint64_t session) {
  absl::MutexLock l(&mu_);
  auto it = tickets_.find(absl::string_view(ticket.data(), ticket.size()));
  if (it == tickets_.end() || it->second.session != session) {
    return absl::NotFoundError(
        "unknown ticket (never issued to this session, or already used)");
  }
  Entry e = std::move(it->second);
  tickets_.erase(it);
  if (--per_session_[session] == 0) per_session_.erase(session);
  if (clock_->Now() >= e.expires) {
    return absl::NotFoundError(
        absl::StrCat("ticket expired ", absl::FormatDuration(ttl_),
                     " after RegisterDmabuf; register the dmabuf again"));
  }
  return Redeemed{std::move(e.dmabuf), std::move(e.info)};
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
  per_session_.erase(session);
  return n;
}

size_t TicketStore::Expire() {
  absl::MutexLock l(&mu_);
  return ExpireLocked(clock_->Now());
}

size_t TicketStore::ExpireLocked(absl::Time now) {
  size_t n = 0;
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    if (now >= it->second.expires) {
      auto s = per_session_.find(it->second.session);
      if (s != per_session_.end() && --s->second == 0) per_session_.erase(s);
      tickets_.erase(it++);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

size_t TicketStore::size() const {
  absl::MutexLock l(&mu_);
  return tickets_.size();
}

}  // namespace devmem::server
