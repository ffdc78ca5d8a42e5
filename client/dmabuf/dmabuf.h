// Dmabuf: a buffer a job makes to receive into (or send from) with devmem
// TCP, and DmabufMapping, its RAII CPU mapping (base/mapping.h's Mapping).
//
// Two exporters are available without a GPU:
//   * memfd: memfd_create(MFD_ALLOW_SEALING), ftruncate, then sealed with
//     F_SEAL_SHRINK | F_SEAL_GROW so its size can never change under a
//     mapping (a shrink would turn the daemon's writes into SIGBUS). This is
//     what the simulated NIC accepts; the kernel's bind-rx does not (it is not
//     a dma-buf: EINVAL).
//   * udmabuf: the kernel selftest's way (ncdevmem) of making a real dma-buf
//     from host memory: a sealed memfd turned into a dma-buf with the
//     UDMABUF_CREATE ioctl on /dev/udmabuf. Needs CONFIG_UDMABUF; when
//     /dev/udmabuf is absent, CreateUdmabuf says so (FailedPrecondition).
//     Its size must be a multiple of the page size and within the module's
//     size_limit_mb (64 MiB by default).
//
// Ownership: a Dmabuf owns its fd (and, for udmabuf, the backing memfd); pass
// fd() to the daemon (it dups the fd on SCM_RIGHTS) or take it with
// ReleaseFd(). A DmabufMapping owns one mmap and unmaps it on destruction; it
// holds its own reference to the file (mmap does), so it may outlive the
// Dmabuf.
//
// Thread safety: both are immutable after creation (data() of a mapping may
// of course be written concurrently by the caller's own rules).
//
//   ASSIGN_OR_RETURN(Dmabuf buf, Dmabuf::CreateMemfd("rx", 64 << 20));
//   ASSIGN_OR_RETURN(DmabufMapping map, buf.Map());
//   std::memset(map.data(), 0, map.size());
#ifndef DEVMEM_CLIENT_DMABUF_DMABUF_H_
#define DEVMEM_CLIENT_DMABUF_DMABUF_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mapping.h"
#include "base/unique_fd.h"

namespace devmem {

// A Dmabuf's CPU mapping: the one RAII mmap of the tree (base/mapping.h).
// The name stays for the job's code; Map() gives it.
using DmabufMapping = Mapping;

class Dmabuf {
 public:
  enum class Kind { kMemfd, kUdmabuf };

  // The path udmabuf is opened at.
  static constexpr char kUdmabufPath[] = "/dev/udmabuf";

  // A sealed memfd of `size` bytes (zero-filled). `name` shows in
  // /proc/PID/fd ("memfd:NAME"). Errors: InvalidArgument for size 0; the
  // errno of memfd_create / ftruncate / F_ADD_SEALS otherwise.
  static absl::StatusOr<Dmabuf> CreateMemfd(std::string_view name,
                                            uint64_t size);

  // A udmabuf over a sealed memfd of `size` bytes. Errors: InvalidArgument
  // for size 0 or not a multiple of the page size; FailedPrecondition when
  // /dev/udmabuf is absent ("load the udmabuf module (CONFIG_UDMABUF)"); the
  // errno of open / UDMABUF_CREATE otherwise (EINVAL also when `size` exceeds
  // udmabuf's size_limit_mb).
  static absl::StatusOr<Dmabuf> CreateUdmabuf(std::string_view name,
                                              uint64_t size);

  // True when /dev/udmabuf exists (it may still refuse us: EACCES).
  static bool UdmabufAvailable();

  Dmabuf(Dmabuf&&) noexcept = default;
  Dmabuf& operator=(Dmabuf&&) noexcept = default;

  Kind kind() const { return kind_; }
  uint64_t size() const { return size_; }
  // The buffer's fd (the dma-buf for udmabuf, the memfd otherwise); invalid
  // after ReleaseFd().
  BorrowedFd fd() const { return fd_.borrow(); }
  // Hands the fd to the caller. The object keeps only the size.
  [[nodiscard]] UniqueFd ReleaseFd() { return std::move(fd_); }

  // Maps the whole buffer read-write. FailedPrecondition after ReleaseFd();
  // otherwise Mapping::Map's errors.
  absl::StatusOr<DmabufMapping> Map() const;

 private:
  Dmabuf(Kind kind, UniqueFd fd, UniqueFd backing, uint64_t size)
      : kind_(kind),
        fd_(std::move(fd)),
        backing_(std::move(backing)),
        size_(size) {}

  Kind kind_;
  UniqueFd fd_;
  UniqueFd backing_;  // udmabuf: the memfd behind it (kept as ncdevmem does)
  uint64_t size_;
};

}  // namespace devmem

#endif  // DEVMEM_CLIENT_DMABUF_DMABUF_H_
