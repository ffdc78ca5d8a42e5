// Mapping: the sim's RAII mmap(MAP_SHARED, read-write) of a bound buffer.
// Internal to providers/sim. Thread-safe (immutable).
#ifndef DEVMEM_PROVIDERS_SIM_INTERNAL_MAPPING_H_
#define DEVMEM_PROVIDERS_SIM_INTERNAL_MAPPING_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace devmem::sim_internal {

class Mapping {
 public:
  // Maps [0, size) of `fd`; mmap's errno on failure.
  static absl::StatusOr<std::shared_ptr<Mapping>> Create(
      BorrowedFd fd, uint64_t size, const std::string& what) {
    void* p =
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) {
      return ErrnoStatus(absl::StrCat(what, ": mmap ", size, " bytes"));
    }
    return std::shared_ptr<Mapping>(
        new Mapping(static_cast<std::byte*>(p), size));
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { ::munmap(data_, size_); }

  std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  Mapping(std::byte* data, uint64_t size) : data_(data), size_(size) {}
  std::byte* const data_;
  const uint64_t size_;
};

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_MAPPING_H_
