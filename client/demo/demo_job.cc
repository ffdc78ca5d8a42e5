// devmem-demo-job: the main job. Makes a buffer, binds RX queues through
// devmemd, receives a sender's stream into the buffer through RxSocket,
// verifies every byte at the offsets the NIC reported against its place in
// the stream, returns the tokens, unbinds, and prints a summary.
//
//   devmem-demo-job [--run-dir DIR] [--device sim0] [--queues N]
//                   [--queue-ids 14,15]
//                   [--buffer-size BYTES] [--chunk-size B] [--bytes N]
//                   [--endpoint-file FILE] [--listen PORT] [--no-return]
//
// Sim provider: the sender connects to the binding's endpoint (printed as
// "send to HOST:PORT" and written to --endpoint-file). Kernel provider: the
// job listens on --listen PORT itself and steers that flow to the binding.
// Exit 0 only if every byte verified (and, with --bytes, exactly that many
// arrived); 1 on an error; 2 on usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/byte_size.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "client/client.h"
#include "client/demo/pattern.h"
#include "client/dmabuf/dmabuf.h"
#include "client/rx_socket.h"
#include "pool/region.h"

namespace {

constexpr char kUsage[] =
    "usage: devmem-demo-job [options]\n"
    "  --run-dir DIR         devmemd's socket directory (default: "
    "$DEVMEM_SOCKET's, else /run/devmemd)\n"
    "  --device NAME         device to bind (default: $DEVMEM_IFNAME, else "
    "sim0)\n"
    "  --queues N            RX queues to bind (default 1)\n"
    "  --queue-ids LIST      exactly these RX queues, e.g. 14,15 (default: "
    "$DEVMEM_RX_QUEUES, set by the Kubernetes device plugin)\n"
    "  --buffer-size BYTES   dmabuf size (default 64M)\n"
    "  --chunk-size BYTES    chunk size (default: the daemon's, 4096)\n"
    "  --bytes N             expect exactly N bytes (default: until the "
    "sender closes)\n"
    "  --endpoint-file FILE  write where to send (HOST:PORT) to FILE\n"
    "  --listen PORT         kernel provider: listen on PORT (default 5201)\n"
    "  --no-return           never return tokens (shows backpressure)\n"
    "  --idle-timeout SECS   fail if nothing arrives for SECS (default 60)\n"
    "  --progress            live progress line even when short\n";

struct Args {
  std::string run_dir;
  std::string device = "sim0";
  uint32_t queues = 1;
  std::vector<uint32_t> queue_ids;  // non-empty: bind exactly these
  uint64_t buffer_size = 64ull << 20;
  uint32_t chunk_size = 0;
  uint64_t bytes = 0;
  std::string endpoint_file;
  uint16_t listen_port = 5201;
  bool no_return = false;
  double idle_timeout_s = 60;
  bool progress = false;
};

int Usage(const std::string& why) {
  std::fprintf(stderr, "devmem-demo-job: %s\n%s", why.c_str(), kUsage);
  return 2;
}

std::string Human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return absl::StrFormat("%.1f %s", bytes, units[u]);
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << text << "\n";
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return devmem::ErrnoStatus(absl::StrCat("rename to ", path));
  }
  return absl::OkStatus();
}

// Kernel provider: our own listening socket; the binding steers its flow.
absl::StatusOr<devmem::UniqueFd> Listen(uint16_t port) {
  devmem::UniqueFd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.ok()) return devmem::ErrnoStatus("socket");
  const int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  a.sin6_port = htons(port);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return devmem::ErrnoStatus(absl::StrCat("bind port ", port));
  }
  if (::listen(s.get(), 1) != 0) return devmem::ErrnoStatus("listen");
  return s;
}

absl::Status Run(const Args& args) {
  devmem::ClientOptions copts;
  copts.run_dir = args.run_dir;
  copts.client_name = "devmem-demo-job";
  ASSIGN_OR_RETURN(std::unique_ptr<devmem::Client> client,
                   devmem::Client::Connect(copts));
  const bool kernel = client->provider() == "kernel";
  std::printf("job: session %llu with devmemd (%s provider) in %s\n",
              static_cast<unsigned long long>(client->session_id()),
              client->provider().c_str(), client->run_dir().c_str());

  ASSIGN_OR_RETURN(
      devmem::Dmabuf buf,
      kernel ? devmem::Dmabuf::CreateUdmabuf("demo-rx", args.buffer_size)
             : devmem::Dmabuf::CreateMemfd("demo-rx", args.buffer_size));
  ASSIGN_OR_RETURN(devmem::DmabufMapping map, buf.Map());

  devmem::UniqueFd listener;
  devmem::RxBindOptions rx;
  rx.device = args.device;
  if (args.queue_ids.empty()) {
    rx.num_queues = args.queues;
  } else {
    rx.queue_ids = args.queue_ids;
  }
  rx.chunk_size = args.chunk_size;
  rx.name = "demo-rx";
  if (kernel) {
    ASSIGN_OR_RETURN(listener, Listen(args.listen_port));
    devmem::v1::Flow flow;
    flow.set_dst_port(args.listen_port);
    rx.flows.push_back(flow);
  }
  ASSIGN_OR_RETURN(devmem::Binding binding, client->BindRx(buf.fd(), rx));
  std::printf("job: binding %u on %s: rx queues [%s], chunk %u B, %s\n",
              binding.id(), binding.device().c_str(),
              absl::StrJoin(binding.queues(), ",").c_str(),
              binding.chunk_size(), Human(binding.size_bytes()).c_str());
  const std::string target =
      kernel ? absl::StrCat("<this host>:", args.listen_port)
             : binding.endpoint();
  std::printf("job: send to %s\n", target.c_str());
  std::fflush(stdout);
  if (!args.endpoint_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomically(args.endpoint_file, target));
  }

  devmem::UniqueFd tcp;
  if (kernel) {
    tcp = devmem::UniqueFd(
        ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!tcp.ok()) return devmem::ErrnoStatus("accept");
  }
  ASSIGN_OR_RETURN(devmem::RxSocket sock,
                   client->OpenRx(binding, std::move(tcp)));

  const std::byte* base = map.data();
  uint64_t pos = 0;  // stream offset of the next byte
  const absl::Time t0 = absl::Now();
  absl::Time last_data = t0;
  absl::Time last_progress = t0;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  bool progress_shown = false;
  for (;;) {
    ASSIGN_OR_RETURN(devmem::RxBatch batch,
                     sock.Receive(absl::Milliseconds(250)));
    const absl::Time now = absl::Now();
    if (batch.end_of_stream) break;
    if (batch.empty()) {
      if (now - last_data > absl::Seconds(args.idle_timeout_s)) {
        return absl::DeadlineExceededError(absl::StrFormat(
            "nothing arrived for %.0f s (at stream offset %d, %d tokens "
            "outstanding)",
            args.idle_timeout_s, pos, sock.stats().tokens_outstanding));
      }
    } else {
      last_data = now;
    }
    for (const devmem::Frag& f : batch.frags) {
      absl::Span<const std::byte> data;
      if (f.is_dmabuf()) {
        if (f.offset + f.size > map.size()) {
          return absl::DataLossError(
              absl::StrCat("frag at dmabuf offset ", f.offset, " + ", f.size,
                           " is outside the ", map.size(), "-byte buffer"));
        }
        data = absl::MakeConstSpan(base + f.offset, f.size);
      } else {
        data = batch.linear.subspan(f.offset, f.size);
      }
      if (auto bad = devmem::demo::VerifyPattern(pos, data); bad) {
        return absl::DataLossError(absl::StrCat(
            "payload mismatch at stream offset ", *bad, " (dmabuf offset ",
            f.offset + (*bad - pos), ", token ", f.token, ")"));
      }
      pos += f.size;
    }
    if (!args.no_return && !batch.frags.empty()) {
      RETURN_IF_ERROR(sock.Return(batch.frags));
    }
    if (now - last_progress >= absl::Seconds(1) || args.progress) {
      const double secs = absl::ToDoubleSeconds(now - t0);
      if (secs >= 1 || args.progress) {
        std::fprintf(
            stderr, "%sjob: %s received, %.2f GB/s, %llu tokens outstanding%s",
            tty ? "\r" : "", Human(pos).c_str(),
            secs > 0 ? pos / secs / 1e9 : 0.0,
            static_cast<unsigned long long>(sock.stats().tokens_outstanding),
            tty ? "   " : "\n");
        progress_shown = true;
        last_progress = now;
      }
    }
    if (args.bytes != 0 && pos > args.bytes) {
      return absl::DataLossError(absl::StrCat(
          "received ", pos, " bytes, more than the ", args.bytes, " expected"));
    }
  }
  if (progress_shown && tty) std::fputs("\n", stderr);
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  const devmem::RxStats st = sock.stats();
  if (args.bytes != 0 && pos != args.bytes) {
    return absl::DataLossError(absl::StrCat("stream ended after ", pos,
                                            " bytes, expected ", args.bytes));
  }
  std::printf(
      "job: verified %llu bytes in %.3f s (%.2f GB/s): %llu frags in %llu "
      "batches, %llu tokens returned in %llu calls, %llu outstanding\n",
      static_cast<unsigned long long>(pos), secs,
      secs > 0 ? pos / secs / 1e9 : 0.0,
      static_cast<unsigned long long>(st.frags),
      static_cast<unsigned long long>(st.batches),
      static_cast<unsigned long long>(st.tokens_returned),
      static_cast<unsigned long long>(st.return_calls),
      static_cast<unsigned long long>(st.tokens_outstanding));
  const uint32_t id = binding.id();
  RETURN_IF_ERROR(binding.Unbind());
  auto after = client->GetBinding(id);
  std::printf("job: binding %u unbound (%s)\n", id,
              after.ok() ? devmem::v1::BindingState_Name(after->state()).c_str()
                         : devmem::StatusText(after.status()).c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Args args;
  // In a pod that requested devmem.dev/rx-queue, the device plugin's
  // Allocate said which device and queues are this pod's.
  auto parse_ids =
      [](const std::string& list) -> std::optional<std::vector<uint32_t>> {
    std::vector<uint32_t> ids;
    for (absl::string_view part : absl::StrSplit(list, ',')) {
      uint32_t q = 0;
      if (!absl::SimpleAtoi(part, &q)) return std::nullopt;
      ids.push_back(q);
    }
    return ids;  // StrSplit yields at least one part: never empty here
  };
  if (const char* e = std::getenv("DEVMEM_IFNAME"); e != nullptr && *e) {
    args.device = e;
  }
  if (const char* e = std::getenv("DEVMEM_RX_QUEUES"); e != nullptr && *e) {
    std::optional<std::vector<uint32_t>> ids = parse_ids(e);
    if (!ids.has_value()) {
      return Usage("bad DEVMEM_RX_QUEUES (want e.g. 14,15)");
    }
    args.queue_ids = *std::move(ids);
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string v;
    auto value = [&]() {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    // A size flag's value, or the usage error to print.
    auto size = [&]() -> absl::StatusOr<uint64_t> {
      if (!value()) {
        return absl::InvalidArgumentError(
            absl::StrCat(a, " needs a size like 64M"));
      }
      return devmem::ParseByteSizeFlag(a, v);
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--run-dir") {
      if (!value()) return Usage("--run-dir needs a directory");
      args.run_dir = v;
    } else if (a == "--device") {
      if (!value()) return Usage("--device needs a name");
      args.device = v;
    } else if (a == "--queues") {
      if (!value() || !absl::SimpleAtoi(v, &args.queues) || args.queues == 0) {
        return Usage("bad --queues");
      }
    } else if (a == "--queue-ids") {
      std::optional<std::vector<uint32_t>> ids;
      if (value()) ids = parse_ids(v);
      if (!ids.has_value()) return Usage("bad --queue-ids (want e.g. 14,15)");
      args.queue_ids = *std::move(ids);
    } else if (a == "--buffer-size") {
      absl::StatusOr<uint64_t> n = size();
      if (!n.ok()) return Usage(std::string(n.status().message()));
      args.buffer_size = *n;
    } else if (a == "--chunk-size") {
      absl::StatusOr<uint64_t> n = size();
      if (!n.ok()) return Usage(std::string(n.status().message()));
      if (!devmem::Region::ValidChunkSize(*n)) {
        return Usage(absl::StrCat("--chunk-size ", v,
                                  " is out of range: a power of two from 4K "
                                  "to 2M"));
      }
      args.chunk_size = static_cast<uint32_t>(*n);
    } else if (a == "--bytes") {
      absl::StatusOr<uint64_t> n = size();
      if (!n.ok()) return Usage(std::string(n.status().message()));
      args.bytes = *n;
    } else if (a == "--endpoint-file") {
      if (!value()) return Usage("--endpoint-file needs a path");
      args.endpoint_file = v;
    } else if (a == "--listen") {
      uint32_t p;
      if (!value() || !absl::SimpleAtoi(v, &p) || p == 0 || p > 65535) {
        return Usage("bad --listen");
      }
      args.listen_port = static_cast<uint16_t>(p);
    } else if (a == "--no-return") {
      args.no_return = true;
    } else if (a == "--idle-timeout") {
      if (!value() || !absl::SimpleAtod(v, &args.idle_timeout_s)) {
        return Usage("bad --idle-timeout");
      }
    } else if (a == "--progress") {
      args.progress = true;
    } else {
      return Usage(absl::StrCat("unknown argument ", a));
    }
  }
  absl::Status s = Run(args);
  if (!s.ok()) {
    std::fprintf(stderr, "devmem-demo-job: %s\n",
                 devmem::StatusText(s).c_str());
    std::printf("job: RESULT FAILED\n");
    return 1;
  }
  std::printf("job: RESULT OK: every byte verified\n");
  return 0;
}
