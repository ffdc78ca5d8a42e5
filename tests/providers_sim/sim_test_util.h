// Helpers for the simulated NIC's data-path tests: the job's side of a
// binding's data path (DataPathPeer), a loopback TCP sender, token returns in
// SO_DEVMEM_DONTNEED-sized batches, and a bounded wait on a condition.
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
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "base/host_port.h"
#include "base/mutex.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "pool/token_range.h"
#include "providers/provider.h"
#include "tests/testing/data_path_peer.h"
#include "tests/testing/wait.h"

namespace devmem::testing {

inline constexpr std::chrono::seconds kWait{60};

// The one polling helper (tests/testing/wait.h), with the data-path tests'
// longer bound.
inline bool Eventually(const std::function<bool()>& pred) {
  return WaitFor(pred, absl::Seconds(60));
}

// A blocking TCP connection to "127.0.0.1:PORT".
inline UniqueFd ConnectTo(const std::string& endpoint, int sndbuf = 0) {
  absl::StatusOr<SocketAddress> addr = ParseHostPort(endpoint);
  if (!addr.ok()) {
    ADD_FAILURE() << addr.status();
    return UniqueFd();
  }
  UniqueFd fd(::socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sndbuf > 0) {  // before connect, so the window starts small
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr->storage),
                addr->length) != 0) {
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
inline uint64_t ReturnAll(DataPathPeer& peer,
                          const std::vector<uapi::DmabufCmsg>& frags) {
  std::vector<Token> tokens;
  tokens.reserve(frags.size());
  for (const uapi::DmabufCmsg& f : frags) tokens.push_back(f.frag_token);
  uint64_t freed = 0;
  for (const std::vector<TokenRange>& r : CoalesceTokens(std::move(tokens))) {
    TokenRelease rel = peer.Dontneed(r);
    EXPECT_TRUE(rel.status.ok()) << rel.status;
    freed += rel.freed;
  }
  return freed;
}

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_PROVIDERS_SIM_SIM_TEST_UTIL_H_
