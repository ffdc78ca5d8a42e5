// devmem-demo-sender: a plain TCP sender of the demo's verifiable stream.
//
//   devmem-demo-sender --to HOST:PORT --bytes N [--block BYTES] [--seed S]
//
// Connects (retrying until --connect-timeout, so it may start before the
// receiver listens), writes N bytes of the pattern (client/demo/pattern.h:
// the byte at stream offset o is a function of o), closes, and prints a
// summary. Exit 0 when every byte was written; 1 on an error; 2 on usage.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/byte_size.h"
#include "base/host_port.h"
#include "base/unique_fd.h"
#include "client/demo/pattern.h"

namespace {

constexpr char kUsage[] =
    "usage: devmem-demo-sender --to HOST:PORT --bytes N [--block BYTES]\n"
    "                          [--seed S] [--connect-timeout SECONDS]\n"
    "Sends N bytes of the demo's verifiable pattern over plain TCP.\n";

int Usage(const std::string& why) {
  if (!why.empty())
    std::fprintf(stderr, "devmem-demo-sender: %s\n", why.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  std::string to;
  uint64_t bytes = 0;
  uint64_t block = 256 << 10;
  uint64_t seed = devmem::demo::kDefaultSeed;
  double connect_timeout_s = 10;
  bool have_bytes = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    // The flag's value: the next argument, nullopt when there is none.
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    // A size flag's value, or the usage error to print.
    auto size = [&]() -> absl::StatusOr<uint64_t> {
      std::optional<std::string> v = value();
      if (!v.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat(a, " needs a size like 64M"));
      }
      return devmem::ParseByteSizeFlag(a, *v);
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--to") {
      std::optional<std::string> v = value();
      if (!v.has_value()) return Usage("--to needs HOST:PORT");
      to = *std::move(v);
    } else if (a == "--bytes") {
      absl::StatusOr<uint64_t> n = size();
      if (!n.ok()) return Usage(std::string(n.status().message()));
      bytes = *n;
      have_bytes = true;
    } else if (a == "--block") {
      absl::StatusOr<uint64_t> n = size();
      if (!n.ok()) return Usage(std::string(n.status().message()));
      if (*n == 0) return Usage("--block must be more than 0");
      block = *n;
    } else if (a == "--seed") {
      std::optional<std::string> v = value();
      if (!v.has_value() || !absl::SimpleAtoi(*v, &seed)) {
        return Usage("bad --seed");
      }
    } else if (a == "--connect-timeout") {
      std::optional<std::string> v = value();
      if (!v.has_value() || !absl::SimpleAtod(*v, &connect_timeout_s)) {
        return Usage("bad --connect-timeout");
      }
    } else {
      return Usage(absl::StrCat("unknown argument ", a));
    }
  }
  if (to.empty() || !have_bytes) {
    return Usage("--to HOST:PORT and --bytes are required");
  }
  absl::StatusOr<devmem::HostPort> hp = devmem::SplitHostPort(to);
  if (!hp.ok()) return Usage(std::string(hp.status().message()));
  const std::string& host = hp->host;
  const std::string port = absl::StrCat(hp->port);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    std::fprintf(stderr, "devmem-demo-sender: %s: %s\n", to.c_str(),
                 gai_strerror(rc));
    return 1;
  }
  devmem::UniqueFd sock;
  const absl::Time deadline = absl::Now() + absl::Seconds(connect_timeout_s);
  int last_errno = 0;
  // A receiver that is not listening yet answers ECONNREFUSED: retry with a
  // short backoff until the deadline.
  for (absl::Duration backoff = absl::Milliseconds(5);;
       backoff = std::min(backoff * 2, absl::Milliseconds(200))) {
    devmem::UniqueFd s(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.ok() && ::connect(s.get(), res->ai_addr, res->ai_addrlen) == 0) {
      sock = std::move(s);
      break;
    }
    last_errno = errno;
    if (absl::Now() + backoff > deadline) break;
    absl::SleepFor(backoff);
  }
  ::freeaddrinfo(res);
  if (!sock.ok()) {
    std::fprintf(stderr, "devmem-demo-sender: connect %s: %s\n", to.c_str(),
                 std::strerror(last_errno));
    return 1;
  }

  std::vector<std::byte> buf(block);
  const absl::Time t0 = absl::Now();
  uint64_t sent = 0;
  while (sent < bytes) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(block, bytes - sent));
    devmem::demo::FillPattern(sent, absl::MakeSpan(buf.data(), n), seed);
    size_t off = 0;
    while (off < n) {
      const ssize_t w = ::send(sock.get(), buf.data() + off, n - off, 0);
      if (w < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "devmem-demo-sender: send at offset %llu: %s\n",
                     static_cast<unsigned long long>(sent + off),
                     std::strerror(errno));
        return 1;
      }
      off += static_cast<size_t>(w);
    }
    sent += n;
  }
  ::shutdown(sock.get(), SHUT_WR);
  // Wait for the receiver to close too, so "sent" means "accepted by it".
  char sink[256];
  while (::recv(sock.get(), sink, sizeof(sink), 0) > 0) {
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  std::printf("sender: sent %llu bytes to %s in %.3f s (%.2f GB/s)\n",
              static_cast<unsigned long long>(sent), to.c_str(), secs,
              secs > 0 ? static_cast<double>(sent) / secs / 1e9 : 0.0);
  return 0;
}
