#include "providers/common/dmabuf_check.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "client/dmabuf/dmabuf.h"
#include "gtest/gtest.h"

namespace devmem {
namespace {

void ExpectErrno(const absl::StatusOr<DmabufInfo>& got, int errnum,
                 absl::string_view text = "") {
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(StatusErrno(got.status()), errnum) << got.status();
  EXPECT_NE(got.status().message().find(text), absl::string_view::npos)
      << got.status();
}

TEST(DmabufCheckTest, SealedMemfdIsAccepted) {
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("check", 3 * 4096);
  ASSERT_TRUE(buf.ok());
  absl::StatusOr<DmabufInfo> info = CheckDmabufFd(buf->fd());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size_bytes, 3u * 4096);
  EXPECT_FALSE(info->is_dmabuf);
  EXPECT_TRUE(info->cpu_mappable);
  EXPECT_EQ(info->exporter, "memfd");
}

TEST(DmabufCheckTest, ClosedAndNegativeFdsAreEbadf) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  ExpectErrno(CheckDmabufFd(BorrowedFd(fds[0])), EBADF);
  ExpectErrno(CheckDmabufFd(BorrowedFd(-1)), EBADF);
}

TEST(DmabufCheckTest, PipeIsEinval) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  ExpectErrno(CheckDmabufFd(r.borrow()), EINVAL, "a pipe");
}

TEST(DmabufCheckTest, SocketIsEinval) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_TRUE(s.ok());
  ExpectErrno(CheckDmabufFd(s.borrow()), EINVAL, "a socket");
}

TEST(DmabufCheckTest, DevNullIsEinval) {
  UniqueFd n(::open("/dev/null", O_RDWR));
  ASSERT_TRUE(n.ok());
  ExpectErrno(CheckDmabufFd(n.borrow()), EINVAL, "a character device");
}

TEST(DmabufCheckTest, DirectoryAndEventfdAreEinval) {
  UniqueFd d(::open("/", O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(d.ok());
  ExpectErrno(CheckDmabufFd(d.borrow()), EINVAL, "a directory");
  UniqueFd e(::eventfd(0, 0));
  ASSERT_TRUE(e.ok());
  ExpectErrno(CheckDmabufFd(e.borrow()), EINVAL);
}

TEST(DmabufCheckTest, ZeroSizeMemfdIsEinval) {
  UniqueFd m(::memfd_create("zero", MFD_ALLOW_SEALING));
  ASSERT_TRUE(m.ok());
  ExpectErrno(CheckDmabufFd(m.borrow()), EINVAL, "size 0");
}

TEST(DmabufCheckTest, UnsealedMemfdIsEinval) {
  UniqueFd m(::memfd_create("unsealed", 0));
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(::ftruncate(m.get(), 4096), 0);
  ExpectErrno(CheckDmabufFd(m.borrow()), EINVAL, "F_SEAL_SHRINK");
}

TEST(DmabufCheckTest, FileOnDiskIsEinval) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(::ftruncate(::fileno(f), 4096), 0);
  ExpectErrno(CheckDmabufFd(BorrowedFd(::fileno(f))), EINVAL, "not a memfd");
  std::fclose(f);
}

TEST(DmabufCheckTest, ReadOnlyMemfdCannotBeMappedWritable) {
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("ro", 4096);
  ASSERT_TRUE(buf.ok());
  UniqueFd ro(::open(absl::StrCat("/proc/self/fd/", buf->fd().get()).c_str(),
                     O_RDONLY));
  ASSERT_TRUE(ro.ok());
  ExpectErrno(CheckDmabufFd(ro.borrow()), EACCES, "mmap");
}

TEST(DmabufCheckTest, MessagesSayTheDmabufNotTheDaemonsFdNumber) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  const absl::Status s = CheckDmabufFd(r.borrow()).status();
  EXPECT_EQ(s.message(),
            "the dmabuf: not a dma-buf or memfd (a pipe): Invalid argument "
            "(EINVAL)");
  EXPECT_EQ(s.message().find(absl::StrCat(" ", fds[0])),
            absl::string_view::npos)
      << s;
}

// What docs/API.md tells a client in another language: MFD_ALLOW_SEALING and
// F_SEAL_SHRINK are needed, F_SEAL_GROW is not, F_SEAL_WRITE is refused.
TEST(DmabufCheckTest, MemfdSealsAsDocumented) {
  for (int seals : {F_SEAL_SHRINK, F_SEAL_SHRINK | F_SEAL_GROW,
                    F_SEAL_SHRINK | F_SEAL_WRITE}) {
    SCOPED_TRACE(seals);
    UniqueFd m(::memfd_create("seals", MFD_ALLOW_SEALING));
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(::ftruncate(m.get(), 4096), 0);
    ASSERT_EQ(::fcntl(m.get(), F_ADD_SEALS, seals), 0);
    absl::StatusOr<DmabufInfo> info = CheckDmabufFd(m.borrow());
    if ((seals & F_SEAL_WRITE) != 0) {
      ExpectErrno(info, EPERM, "mmap read-write");
    } else {
      EXPECT_TRUE(info.ok()) << info.status();
    }
  }
  // Without MFD_ALLOW_SEALING the memfd is born with F_SEAL_SEAL and can
  // never get F_SEAL_SHRINK.
  UniqueFd m(::memfd_create("no-sealing", 0));
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(::ftruncate(m.get(), 4096), 0);
  EXPECT_NE(::fcntl(m.get(), F_ADD_SEALS, F_SEAL_SHRINK), 0);
  ExpectErrno(CheckDmabufFd(m.borrow()), EINVAL, "F_SEAL_SHRINK");
}

TEST(DmabufCheckTest, CheckLeavesTheFdAlone) {
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("offset", 8192);
  ASSERT_TRUE(buf.ok());
  ASSERT_EQ(::lseek(buf->fd().get(), 100, SEEK_SET), 100);
  ASSERT_TRUE(CheckDmabufFd(buf->fd()).ok());
  EXPECT_EQ(::lseek(buf->fd().get(), 0, SEEK_CUR), 100);
}

TEST(DmabufCheckTest, UdmabufIsRecognised) {
  if (!Dmabuf::UdmabufAvailable()) {
    GTEST_SKIP() << "/dev/udmabuf not present: load the udmabuf module "
                    "(CONFIG_UDMABUF)";
  }
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateUdmabuf("check", 1 << 20);
  if (buf.status().code() == absl::StatusCode::kPermissionDenied) {
    GTEST_SKIP() << "no access to /dev/udmabuf: " << buf.status();
  }
  ASSERT_TRUE(buf.ok()) << buf.status();
  absl::StatusOr<DmabufInfo> info = CheckDmabufFd(buf->fd());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->is_dmabuf);
  EXPECT_EQ(info->exporter, "udmabuf");
  EXPECT_EQ(info->size_bytes, 1u << 20);
  EXPECT_TRUE(info->cpu_mappable);
}

}  // namespace
}  // namespace devmem
