// Uses the installed client: parses a synthetic devmem cmsg and tries to
// reach a daemon that is not there (a clean Unavailable, not a crash).
#include <cstdio>
#include <vector>

#include "client/client.h"
#include "client/devmem_socket.h"
#include "client/rx_socket.h"

int main() {
  std::vector<std::byte> control;
  devmem::AppendDevmemCmsg(devmem::uapi::kScmDevmemDmabuf,
                           devmem::uapi::DmabufCmsg{0, 4096, 1, 7, 0},
                           &control);
  devmem::ParsedControl parsed;
  if (!devmem::ParseDevmemControl(control, &parsed).ok() ||
      parsed.frags.size() != 1) {
    return 1;
  }
  devmem::ClientOptions o;
  o.run_dir = "/nonexistent-devmemd";
  auto c = devmem::Client::Connect(o);
  if (c.ok() || c.status().code() != absl::StatusCode::kUnavailable) return 1;
  std::printf("consumer ok: %s\n", std::string(c.status().message()).c_str());
  return 0;
}
