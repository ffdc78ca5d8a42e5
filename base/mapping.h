// Mapping: the one RAII CPU mapping of a buffer fd (a dmabuf, a memfd):
// mmap(MAP_SHARED) of its first `size` bytes, unmapped exactly once on
// destruction. Used by the job's buffers (client/dmabuf) and meant for the
// simulated NIC's view of a bound buffer too.
//
// Ownership: a Mapping owns its address range, not the fd; mmap keeps its
// own reference to the file, so a Mapping may outlive the fd it was made
// from (and the object that owned that fd). Move-only; a moved-from or
// default-constructed Mapping maps nothing (mapped() is false).
//
// Thread safety: immutable after Map(), so it may be shared across threads
// (e.g. in a shared_ptr); the bytes behind data() follow the caller's own
// rules. Destroying or assigning to a Mapping while another thread reads
// data() is the caller's bug, as with any object.
//
//   ASSIGN_OR_RETURN(Mapping map, Mapping::Map(fd, size));
//   std::memset(map.data(), 0, map.size());
//   auto shared = std::make_shared<Mapping>(std::move(map));
//
// Device memory that the CPU cannot map fails in Map() (mmap's errno); there
// is never a Mapping of it.
#ifndef DEVMEM_BASE_MAPPING_H_
#define DEVMEM_BASE_MAPPING_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace devmem {

class Mapping {
 public:
  enum class Access { kReadOnly, kReadWrite };

  // Maps [0, size) of `fd`, PROT_READ (kReadOnly) or PROT_READ|PROT_WRITE
  // (kReadWrite). `what` names the buffer in errors, as the reader knows it:
  // "rx: mmap 4096 bytes read-write: Bad file descriptor (EBADF)", never the
  // fd's number. Errors: InvalidArgument for size 0; otherwise mmap's errno
  // (EBADF for a closed fd, EACCES for an fd opened without the access
  // asked for, ENODEV for a file that cannot be mapped, ENOMEM).
  static absl::StatusOr<Mapping> Map(BorrowedFd fd, uint64_t size,
                                     Access access = Access::kReadWrite,
                                     absl::string_view what = "buffer");

  Mapping() = default;
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  // The first byte; nullptr when nothing is mapped.
  std::byte* data() const { return data_; }
  // Bytes mapped; 0 when nothing is mapped.
  uint64_t size() const { return size_; }
  bool mapped() const { return data_ != nullptr; }

 private:
  Mapping(std::byte* data, uint64_t size) : data_(data), size_(size) {}
  void Unmap();

  std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace devmem

#endif  // DEVMEM_BASE_MAPPING_H_
