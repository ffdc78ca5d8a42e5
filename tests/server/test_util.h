// Helpers for server tests: temp run dirs, fd counting, loopback TCP
// senders. Polling with a deadline is tests/testing/wait.h's WaitFor.
#ifndef DEVMEM_TESTS_SERVER_TEST_UTIL_H_
#define DEVMEM_TESTS_SERVER_TEST_UTIL_H_

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/host_port.h"
#include "base/unique_fd.h"

namespace devmem::testing {

// Open fds of process `pid` ("self" by default).
inline int CountFds(const std::string& pid = "self") {
  int n = 0;
  DIR* d = ::opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return pid == "self" ? n - 1 : n;
}

// A short temp dir (socket paths must stay under 108 bytes).
inline std::string TempRunDir() {
  char tmpl[] = "/tmp/devmemd-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  return tmpl;
}

// Connects to "127.0.0.1:PORT" and writes `bytes`; returns the socket.
inline UniqueFd SendTcp(const std::string& endpoint, std::string_view bytes) {
  absl::StatusOr<UniqueFd> c = ConnectTcp(endpoint);
  if (!c.ok()) return UniqueFd();
  UniqueFd s = *std::move(c);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(s.get(), bytes.data() + off, bytes.size() - off);
    if (n <= 0) return UniqueFd();
    off += static_cast<size_t>(n);
  }
  return s;
}

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_SERVER_TEST_UTIL_H_
