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
  const size_t colon = endpoint.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(endpoint.substr(colon + 1), &port)) {
    return UniqueFd();
  }
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &a.sin_addr);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return UniqueFd();
  }
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
