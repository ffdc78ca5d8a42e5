#include "base/mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace devmem {
namespace {

UniqueFd Memfd(uint64_t size) {
  UniqueFd fd(::memfd_create("mapping_test", MFD_CLOEXEC));
  EXPECT_TRUE(fd.ok());
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
  return fd;
}

TEST(MappingTest, MapsSharedAndOutlivesTheFd) {
  Mapping kept;
  EXPECT_FALSE(kept.mapped());
  EXPECT_EQ(kept.data(), nullptr);
  EXPECT_EQ(kept.size(), 0u);
  {
    UniqueFd fd = Memfd(8192);
    absl::StatusOr<Mapping> a = Mapping::Map(fd.borrow(), 8192);
    absl::StatusOr<Mapping> b = Mapping::Map(fd.borrow(), 8192);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    a->data()[8191] = std::byte{7};
    EXPECT_EQ(b->data()[8191], std::byte{7}) << "MAP_SHARED";
    kept = *std::move(a);
    EXPECT_FALSE(a->mapped()) << "moved from";
  }
  ASSERT_TRUE(kept.mapped());
  EXPECT_EQ(kept.size(), 8192u);
  EXPECT_EQ(kept.data()[8191], std::byte{7});
  Mapping moved(std::move(kept));
  EXPECT_FALSE(kept.mapped());
  EXPECT_EQ(moved.data()[8191], std::byte{7});
}

TEST(MappingTest, ReadOnlyNeedsOnlyReadAccess) {
  UniqueFd fd = Memfd(4096);
  UniqueFd ro(::open(absl::StrCat("/proc/self/fd/", fd.get()).c_str(),
                     O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro.ok());
  absl::StatusOr<Mapping> r =
      Mapping::Map(ro.borrow(), 4096, Mapping::Access::kReadOnly);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data()[0], std::byte{0});
  absl::StatusOr<Mapping> w =
      Mapping::Map(ro.borrow(), 4096, Mapping::Access::kReadWrite, "rx");
  EXPECT_EQ(StatusErrno(w.status()), EACCES);
  EXPECT_EQ(w.status().message(),
            "rx: mmap 4096 bytes read-write: Permission denied (EACCES)");
}

TEST(MappingTest, ErrorsNameTheBufferNotTheFd) {
  absl::StatusOr<Mapping> zero = Mapping::Map(BorrowedFd(0), 0);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Mapping> bad =
      Mapping::Map(BorrowedFd(-1), 4096, Mapping::Access::kReadOnly, "tx");
  EXPECT_EQ(StatusErrno(bad.status()), EBADF);
  EXPECT_EQ(bad.status().message(),
            "tx: mmap 4096 bytes read-only: Bad file descriptor (EBADF)");
}

}  // namespace
}  // namespace devmem
