#include "providers/common/dmabuf_check.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/errno_status.h"

namespace devmem {
namespace {

const char* FileTypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFSOCK:
      return "a socket";
    case S_IFIFO:
      return "a pipe";
    case S_IFDIR:
      return "a directory";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFLNK:
      return "a symlink";
    case S_IFREG:
      return "a regular file";
    default:
      return "an anonymous inode";
  }
}

// The dma-buf exporter's name from /proc/self/fdinfo/<fd>, or nullopt when
// the fd is not a dma-buf (dma_buf_show_fdinfo prints "exp_name:\t<name>").
std::optional<std::string> DmabufExporter(int fd) {
  std::ifstream in(absl::StrCat("/proc/self/fdinfo/", fd));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v(line);
    if (absl::ConsumePrefix(&v, "exp_name:")) {
      return std::string(absl::StripAsciiWhitespace(v));
    }
  }
  return std::nullopt;
}

// Messages say "the dmabuf", never the fd number: that is the daemon's own
// descriptor, which means nothing to the job that sent it.
absl::Status Invalid(absl::string_view why) {
  return ErrnoToStatus(EINVAL, absl::StrCat("the dmabuf: ", why));
}

}  // namespace

absl::StatusOr<DmabufInfo> CheckDmabufFd(BorrowedFd borrowed) {
  const int fd = borrowed.get();
  if (fd < 0) {
    return ErrnoToStatus(EBADF, "the dmabuf");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return ErrnoStatus("the dmabuf: fstat");
  }
  DmabufInfo info;
  const mode_t type = st.st_mode & S_IFMT;
  if (std::optional<std::string> exporter = DmabufExporter(fd)) {
    // A dma-buf lives on an anonymous inode (no S_IFMT bits); its size is
    // what lseek(SEEK_END) answers (dma_buf_llseek).
    if (type != 0 && type != S_IFREG) {
      return Invalid(absl::StrCat("not a dma-buf (", FileTypeName(type), ")"));
    }
    info.is_dmabuf = true;
    info.exporter = std::move(*exporter);
    const off_t end = ::lseek(fd, 0, SEEK_END);
    if (end < 0) return ErrnoStatus("the dmabuf: lseek");
    (void)::lseek(fd, 0, SEEK_SET);
    info.size_bytes = static_cast<uint64_t>(end);
  } else if (type == S_IFREG) {
    // Host memory. Only sealed shmem files qualify: F_GET_SEALS fails with
    // EINVAL on anything else, and without F_SEAL_SHRINK the owner could
    // truncate the file under our mapping.
    info.size_bytes = static_cast<uint64_t>(st.st_size);
    info.exporter = "memfd";
  } else {
    // What dma_buf_get() says for a file that is not a dma-buf.
    return Invalid(
        absl::StrCat("not a dma-buf or memfd (", FileTypeName(type), ")"));
  }
  if (info.size_bytes == 0) return Invalid("size 0");

  if (!info.is_dmabuf) {
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0) {
      return Invalid(
          "a regular file, not a memfd (host buffers must be "
          "memfds sealed with F_SEAL_SHRINK)");
    }
    if ((seals & F_SEAL_SHRINK) == 0) {
      return Invalid(
          "memfd is not sealed with F_SEAL_SHRINK (it could "
          "shrink under the mapping)");
    }
  }

  void* p = ::mmap(nullptr, info.size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd, 0);
  if (p == MAP_FAILED) {
    if (!info.is_dmabuf) {
      return ErrnoStatus(absl::StrCat("the dmabuf: mmap read-write ",
                                      info.size_bytes, " bytes"));
    }
    info.cpu_mappable = false;  // device memory: bindable, not mappable
  } else {
    ::munmap(p, info.size_bytes);
    info.cpu_mappable = true;
  }
  return info;
}

}  // namespace devmem
