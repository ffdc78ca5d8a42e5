// Mutex, MutexLock and CondVar: std::mutex / std::condition_variable with
// clang thread-safety annotations.
//
// Use these, not absl::Mutex, in code that runs on our own threads: Debian's
// Abseil is not built with ThreadSanitizer, so TSan cannot see absl::Mutex
// synchronisation and reports false races, while it does intercept the
// pthread mutexes behind std::mutex. (absl::Mutex remains fine in code that
// only ever runs on gRPC's threads, which TSan does not check anyway.)
//
//   Mutex mu_;
//   int n_ ABSL_GUARDED_BY(mu_);
//   { MutexLock l(mu_); ++n_; cv_.SignalAll(); }
//   { MutexLock l(mu_); cv_.Await(mu_, [&] { return n_ > 3; }); }
#ifndef DEVMEM_BASE_MUTEX_H_
#define DEVMEM_BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace devmem {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return mu_.try_lock();
  }
  // Tells the analysis the lock is held (for callbacks run under it).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_.Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

class CondVar {
 public:
  // REQUIRES: mu held. Waits for a Signal (spurious wake-ups possible).
  void Wait(Mutex& mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> l(mu.mu_, std::adopt_lock);
    cv_.wait(l);
    l.release();
  }
  // REQUIRES: mu held. Waits until pred() is true.
  template <typename Pred>
  void Await(Mutex& mu, Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> l(mu.mu_, std::adopt_lock);
    cv_.wait(l, pred);
    l.release();
  }
  // REQUIRES: mu held. Waits until pred() is true or `timeout` passed;
  // returns pred().
  template <typename Pred, typename Rep, typename Period>
  bool AwaitFor(Mutex& mu, std::chrono::duration<Rep, Period> timeout,
                Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> l(mu.mu_, std::adopt_lock);
    const bool ok = cv_.wait_for(l, timeout, pred);
    l.release();
    return ok;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace devmem

#endif  // DEVMEM_BASE_MUTEX_H_
