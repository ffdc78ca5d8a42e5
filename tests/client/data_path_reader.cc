// A second process for e2e_test: opens a sim binding's data path it was
// handed (as an inherited fd) and receives one flow into the dmabuf it was
// also handed, checking every byte against the demo pattern.
//
//   data_path_reader DATA_PATH_FD DMABUF_FD BINDING_ID
//
// Prints "received N bytes" and exits 0 when the flow ended cleanly and
// every byte matched; exits 1 with the reason otherwise.
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "client/demo/pattern.h"
#include "client/rx_socket.h"

namespace {

int Fail(const std::string& why) {
  std::fprintf(stderr, "data_path_reader: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int dp_fd = -1;
  int buf_fd = -1;
  uint32_t binding = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[1], &dp_fd) ||
      !absl::SimpleAtoi(argv[2], &buf_fd) ||
      !absl::SimpleAtoi(argv[3], &binding)) {
    return Fail("usage: data_path_reader DATA_PATH_FD DMABUF_FD BINDING_ID");
  }
  struct stat st;
  if (::fstat(buf_fd, &st) != 0) return Fail("fstat of the dmabuf fd");
  const auto size = static_cast<size_t>(st.st_size);
  // Mapped for the life of the process.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, buf_fd, 0);
  if (p == MAP_FAILED) return Fail("mmap of the dmabuf fd");
  const auto* base = static_cast<const std::byte*>(p);
  absl::StatusOr<devmem::RxSocket> rx =
      devmem::RxSocket::ForSimDataPath(devmem::UniqueFd(dp_fd), binding);
  if (!rx.ok()) return Fail(rx.status().ToString());
  uint64_t offset = 0;
  for (;;) {
    absl::StatusOr<devmem::RxBatch> b = rx->Receive(absl::Seconds(60));
    if (!b.ok()) return Fail(b.status().ToString());
    if (b->end_of_stream) break;
    if (b->empty()) return Fail("no data in 60 s");
    for (const devmem::Frag& f : b->frags) {
      if (f.binding_id != binding) return Fail("a frag of another binding");
      if (f.offset + f.size > size) return Fail("a frag beyond the buffer");
      if (auto bad = devmem::demo::VerifyPattern(
              offset, absl::MakeConstSpan(base + f.offset, f.size))) {
        return Fail("wrong byte at stream offset " + std::to_string(*bad));
      }
      offset += f.size;
    }
    if (absl::Status s = rx->Return(b->frags); !s.ok()) {
      return Fail(s.ToString());
    }
  }
  std::printf("received %llu bytes\n", static_cast<unsigned long long>(offset));
  return 0;
}
