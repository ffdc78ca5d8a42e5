#include "base/mapping.h"

#include <sys/mman.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem {

absl::StatusOr<Mapping> Mapping::Map(BorrowedFd fd, uint64_t size,
                                     Access access, absl::string_view what) {
  const bool writable = access == Access::kReadWrite;
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": mmap: size must be > 0"));
  }
  const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    return ErrnoStatus(absl::StrCat(what, ": mmap ", size, " bytes ",
                                    writable ? "read-write" : "read-only"));
  }
  return Mapping(static_cast<std::byte*>(p), size);
}

Mapping::Mapping(Mapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    Unmap();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() { Unmap(); }

void Mapping::Unmap() {
  // munmap fails only for an invalid range, which Map() never makes.
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace devmem
