// Clock: where the server core reads the time, so tests can move it.
//
// Thread safety: implementations are thread-safe.
#ifndef DEVMEM_SERVER_CLOCK_H_
#define DEVMEM_SERVER_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace devmem::server {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // The process-wide real clock (never destroyed).
  static Clock* Real();
};

// A clock that only moves when told to; for tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock l(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_CLOCK_H_
