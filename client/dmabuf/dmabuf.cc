#include "client/dmabuf/dmabuf.h"

#include <fcntl.h>
#include <linux/ioctl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

#if __has_include(<linux/udmabuf.h>)
#include <linux/udmabuf.h>
#endif

namespace devmem {
namespace {

// include/uapi/linux/udmabuf.h (4.20). Defined here so the build does not
// depend on the installed headers; checked against them when present.
struct UdmabufCreate {
  uint32_t memfd;
  uint32_t flags;
  uint64_t offset;
  uint64_t size;
};
static_assert(sizeof(UdmabufCreate) == 24);
constexpr uint32_t kUdmabufFlagsCloexec = 0x01;
constexpr unsigned long kUdmabufCreate = _IOW('u', 0x42, UdmabufCreate);
#ifdef UDMABUF_CREATE
static_assert(kUdmabufCreate == UDMABUF_CREATE);
static_assert(kUdmabufFlagsCloexec == UDMABUF_FLAGS_CLOEXEC);
#endif

absl::StatusOr<UniqueFd> MakeSealedMemfd(const std::string& name,
                                         uint64_t size) {
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dmabuf ", name, ": size must be > 0"));
  }
  // memfd names are limited to 249 bytes.
  const std::string memfd_name = name.substr(0, 200);
  UniqueFd fd(
      ::memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.ok()) {
    return ErrnoStatus(absl::StrCat("dmabuf ", name, ": memfd_create"));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(absl::StrCat("dmabuf ", name, ": ftruncate ", size));
  }
  // Sealed against shrinking (udmabuf requires it, and a shrink under a
  // mapping turns accesses into SIGBUS) and growing (the size is the
  // contract with whoever maps it).
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    return ErrnoStatus(absl::StrCat("dmabuf ", name, ": F_ADD_SEALS"));
  }
  return fd;
}

}  // namespace

absl::StatusOr<Dmabuf> Dmabuf::CreateMemfd(std::string_view name_view,
                                           uint64_t size) {
  ASSIGN_OR_RETURN(UniqueFd fd, MakeSealedMemfd(std::string(name_view), size));
  return Dmabuf(Kind::kMemfd, std::move(fd), UniqueFd(), size);
}

bool Dmabuf::UdmabufAvailable() {
  struct stat st;
  return ::stat(kUdmabufPath, &st) == 0 && S_ISCHR(st.st_mode);
}

absl::StatusOr<Dmabuf> Dmabuf::CreateUdmabuf(std::string_view name_view,
                                             uint64_t size) {
  const std::string name(name_view);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (size == 0 || size % static_cast<uint64_t>(page) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("udmabuf ", name, ": size ", size,
                     " must be a non-zero multiple of the page size ", page));
  }
  UniqueFd dev(::open(kUdmabufPath, O_RDWR | O_CLOEXEC));
  if (!dev.ok()) {
    if (errno == ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrCat(kUdmabufPath,
                       " not present: load the udmabuf module "
                       "(CONFIG_UDMABUF)"));
    }
    return ErrnoStatus(absl::StrCat("udmabuf ", name, ": open ", kUdmabufPath));
  }
  ASSIGN_OR_RETURN(UniqueFd memfd, MakeSealedMemfd(name, size));
  UdmabufCreate create{};
  create.memfd = static_cast<uint32_t>(memfd.get());
  create.flags = kUdmabufFlagsCloexec;
  create.offset = 0;
  create.size = size;
  UniqueFd buf(::ioctl(dev.get(), kUdmabufCreate, &create));
  if (!buf.ok()) {
    return ErrnoStatus(
        absl::StrCat("udmabuf ", name, ": UDMABUF_CREATE size ", size));
  }
  return Dmabuf(Kind::kUdmabuf, std::move(buf), std::move(memfd), size);
}

absl::StatusOr<DmabufMapping> Dmabuf::Map() const {
  if (!fd_.ok()) {
    return absl::FailedPreconditionError("dmabuf: fd was released");
  }
  return Mapping::Map(fd_.borrow(), size_, Mapping::Access::kReadWrite,
                      kind_ == Kind::kUdmabuf ? "udmabuf" : "dmabuf");
}

}  // namespace devmem
