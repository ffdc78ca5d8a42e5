// Helpers for the simulated NIC's data-path tests: a recording RxSink, a
// loopback TCP sender, token returns in SO_DEVMEM_DONTNEED-sized batches, and
// a bounded wait on a condition.
#ifndef DEVMEM_TESTS_PROVIDERS_SIM_SIM_TEST_UTIL_H_
#define DEVMEM_TESTS_PROVIDERS_SIM_SIM_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "base/mutex.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "pool/token_range.h"
#include "providers/provider.h"

namespace devmem::testing {

inline constexpr std::chrono::seconds kWait{60};

// Polls `pred` until it holds or kWait passes; for counters that have no
// notification (Stats()). Not a sleep used as synchronisation: the condition
// is what the test waits for.
inline bool Eventually(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// Records what a binding delivers. Thread-safe.
class RecordingSink : public RxSink {
 public:
  void Deliver(absl::Span<const uapi::DmabufCmsg> frags) override {
    MutexLock lock(mu_);
    for (const uapi::DmabufCmsg& f : frags) {
      pending_.push_back(f);
      bytes_ += f.frag_size;
    }
    ++batches_;
    max_batch_ = std::max<size_t>(max_batch_, frags.size());
    cv_.SignalAll();
  }
  void Closed(const absl::Status& why) override {
    MutexLock lock(mu_);
    closed_.push_back(why);
    cv_.SignalAll();
  }

  // Waits for at least `n` Closed() calls; false on timeout.
  bool WaitClosed(size_t n) {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, kWait, [&] {
      mu_.AssertHeld();
      return closed_.size() >= n;
    });
  }
  // Waits until `bytes` in total were delivered.
  bool WaitBytes(uint64_t bytes) {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, kWait, [&] {
      mu_.AssertHeld();
      return bytes_ >= bytes;
    });
  }
  // Waits for frags or a close; returns the frags (maybe none).
  std::vector<uapi::DmabufCmsg> TakeOrClosed(size_t closes) {
    MutexLock lock(mu_);
    cv_.AwaitFor(mu_, kWait, [&] {
      mu_.AssertHeld();
      return !pending_.empty() || closed_.size() >= closes;
    });
    std::vector<uapi::DmabufCmsg> out;
    out.swap(pending_);
    return out;
  }
  std::vector<uapi::DmabufCmsg> Take() {
    MutexLock lock(mu_);
    std::vector<uapi::DmabufCmsg> out;
    out.swap(pending_);
    return out;
  }
  uint64_t bytes() const {
    MutexLock lock(mu_);
    return bytes_;
  }
  std::vector<absl::Status> closed() const {
    MutexLock lock(mu_);
    return closed_;
  }
  size_t max_batch() const {
    MutexLock lock(mu_);
    return max_batch_;
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<uapi::DmabufCmsg> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_batch_ ABSL_GUARDED_BY(mu_) = 0;
};

// A blocking TCP connection to "127.0.0.1:PORT".
inline UniqueFd ConnectTo(const std::string& endpoint, int sndbuf = 0) {
  const size_t colon = endpoint.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(endpoint.substr(colon + 1), &port)) {
    ADD_FAILURE() << "bad endpoint " << endpoint;
    return UniqueFd();
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sndbuf > 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    ADD_FAILURE() << "connect " << endpoint << ": " << std::strerror(errno);
    return UniqueFd();
  }
  return fd;
}

// Writes all of `data`; returns false on an error (errno kept).
inline bool WriteAll(int fd, const uint8_t* data, size_t len) {
  while (len > 0) {
    const ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Gives back one token per frag, coalescing runs, in calls of at most 128
// ranges (as SO_DEVMEM_DONTNEED). Returns the number freed.
inline uint64_t ReturnAll(ProviderBinding& binding,
                          const std::vector<uapi::DmabufCmsg>& frags) {
  std::vector<TokenRange> ranges;
  uint64_t freed = 0;
  auto flush = [&] {
    if (ranges.empty()) return;
    TokenRelease r = binding.ReturnTokens(ranges);
    EXPECT_TRUE(r.status.ok()) << r.status;
    freed += r.freed;
    ranges.clear();
  };
  for (const uapi::DmabufCmsg& f : frags) {
    if (!ranges.empty() &&
        ranges.back().start + ranges.back().count == f.frag_token) {
      ++ranges.back().count;
      continue;
    }
    if (ranges.size() == kMaxTokenRanges) flush();
    ranges.push_back(TokenRange{f.frag_token, 1});
  }
  flush();
  return freed;
}

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_PROVIDERS_SIM_SIM_TEST_UTIL_H_
