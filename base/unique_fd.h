// UniqueFd and BorrowedFd: the only way file descriptors travel in this
// codebase.
//
// UniqueFd owns one descriptor and closes it exactly once. It is move-only,
// never converts to int implicitly, and `release()` is [[nodiscard]] so an
// ownership hand-off cannot be dropped by accident. close() is never retried
// on EINTR (on Linux the descriptor is gone either way) and reset() keeps the
// caller's errno intact.
//
// BorrowedFd is a non-owning view for parameters: a function that only uses a
// descriptor takes BorrowedFd; one that keeps it takes UniqueFd by value.
//
// Thread safety: like int, a UniqueFd object must not be mutated concurrently.
//
//   UniqueFd fd(::memfd_create("buf", MFD_CLOEXEC));
//   if (!fd.ok()) return ErrnoToStatus(errno, "memfd_create");
//   Use(fd.borrow());
#ifndef DEVMEM_BASE_UNIQUE_FD_H_
#define DEVMEM_BASE_UNIQUE_FD_H_

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace devmem {

class BorrowedFd {
 public:
  constexpr BorrowedFd() = default;
  constexpr explicit BorrowedFd(int fd) : fd_(fd) {}
  constexpr int get() const { return fd_; }
  constexpr bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

class UniqueFd {
 public:
  constexpr UniqueFd() = default;
  constexpr explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  BorrowedFd borrow() const { return BorrowedFd(fd_); }

  // Gives up ownership without closing; the caller now owns the result.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

  // Closes the current descriptor (if any) and takes `fd`. errno is preserved.
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      const int saved_errno = errno;
      ::close(fd_);  // Not retried on EINTR: Linux has released the fd.
      errno = saved_errno;
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace devmem

#endif  // DEVMEM_BASE_UNIQUE_FD_H_
