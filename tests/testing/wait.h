// WaitFor: polls a condition against a deadline, for state a test cannot
// block on (a counter in Stats(), a binding's state over RPC, /proc, another
// process).
//
// This is not a sleep used as synchronisation: the condition decides when the
// test goes on, the pause between polls only bounds the CPU the wait burns
// (200 us at first, doubling up to 10 ms), and the timeout only turns a hang
// into a failure. Where there is something to block on (a notification, a
// condition variable, an fd), block on it instead.
//
//   ASSERT_TRUE(WaitFor([&] { return CountFds() == baseline; }));
//   EXPECT_TRUE(WaitFor([&] { return !Running(); }, absl::Seconds(120)));
//
// Thread safety: WaitFor calls `cond` on the calling thread only; `cond`
// must be safe to call while whatever it observes changes.
#ifndef DEVMEM_TESTS_TESTING_WAIT_H_
#define DEVMEM_TESTS_TESTING_WAIT_H_

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/time/time.h"

namespace devmem::testing {

// Generous: the trees with sanitizers run on loaded 2-core machines, and a
// condition that holds returns at its first true poll anyway.
inline constexpr absl::Duration kWaitTimeout = absl::Seconds(30);

// True as soon as `cond()` is true (checked first before any pause); false
// once `timeout` has passed with `cond()` still false. The deadline is on the
// monotonic clock.
[[nodiscard]] inline bool WaitFor(const std::function<bool()>& cond,
                                  absl::Duration timeout = kWaitTimeout) {
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  std::chrono::microseconds pause(200);
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2,
                                                std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_TESTING_WAIT_H_
