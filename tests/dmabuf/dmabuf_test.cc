#include "client/dmabuf/dmabuf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "base/errno_status.h"
#include "gtest/gtest.h"

namespace devmem {
namespace {

TEST(DmabufTest, MemfdHasSizeSealsAndMaps) {
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("test", 1 << 20);
  ASSERT_TRUE(buf.ok()) << buf.status();
  EXPECT_EQ(buf->kind(), Dmabuf::Kind::kMemfd);
  EXPECT_EQ(buf->size(), 1u << 20);
  struct stat st;
  ASSERT_EQ(::fstat(buf->fd().get(), &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  const int seals = ::fcntl(buf->fd().get(), F_GET_SEALS);
  EXPECT_TRUE(seals & F_SEAL_SHRINK);
  EXPECT_TRUE(seals & F_SEAL_GROW);
  // Sealed: it can neither shrink nor grow.
  EXPECT_NE(::ftruncate(buf->fd().get(), 4096), 0);
  EXPECT_NE(::ftruncate(buf->fd().get(), 2 << 20), 0);

  absl::StatusOr<DmabufMapping> a = buf->Map();
  absl::StatusOr<DmabufMapping> b = buf->Map();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 1u << 20);
  std::memcpy(a->data() + 4096, "hello", 5);
  EXPECT_EQ(std::memcmp(b->data() + 4096, "hello", 5), 0);  // MAP_SHARED
}

TEST(DmabufTest, MappingOutlivesTheDmabufAndMoves) {
  DmabufMapping kept;
  {
    absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("short", 8192);
    ASSERT_TRUE(buf.ok());
    absl::StatusOr<DmabufMapping> m = buf->Map();
    ASSERT_TRUE(m.ok());
    kept = std::move(*m);
    EXPECT_FALSE(m->mapped());
  }
  ASSERT_TRUE(kept.mapped());
  kept.data()[8191] = std::byte{7};  // still valid: mmap holds the file
  EXPECT_EQ(kept.data()[8191], std::byte{7});
}

TEST(DmabufTest, ZeroSizeIsInvalid) {
  EXPECT_EQ(Dmabuf::CreateMemfd("zero", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dmabuf::CreateUdmabuf("zero", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DmabufMapping::Map(BorrowedFd(0), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DmabufTest, ReleaseFdHandsOverOwnership) {
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("give", 4096);
  ASSERT_TRUE(buf.ok());
  UniqueFd fd = buf->ReleaseFd();
  EXPECT_TRUE(fd.ok());
  EXPECT_FALSE(buf->fd().ok());
  EXPECT_EQ(buf->Map().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(DmabufMapping::Map(fd.borrow(), 4096).ok());
}

TEST(DmabufTest, MapOfBadFdGivesErrno) {
  absl::StatusOr<DmabufMapping> m = DmabufMapping::Map(BorrowedFd(-1), 4096);
  EXPECT_EQ(StatusErrno(m.status()), EBADF);
}

TEST(DmabufTest, UdmabufUnalignedSizeIsInvalid) {
  EXPECT_EQ(Dmabuf::CreateUdmabuf("odd", 4097).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DmabufTest, UdmabufAbsentSaysWhy) {
  if (Dmabuf::UdmabufAvailable()) GTEST_SKIP() << "/dev/udmabuf is present";
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateUdmabuf("rx", 1 << 20);
  ASSERT_FALSE(buf.ok());
  EXPECT_EQ(buf.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(buf.status().message().find("/dev/udmabuf not present"),
            absl::string_view::npos);
  EXPECT_NE(buf.status().message().find("CONFIG_UDMABUF"),
            absl::string_view::npos);
}

// Hardware-ish: needs CONFIG_UDMABUF and access to /dev/udmabuf.
TEST(DmabufTest, UdmabufIsARealDmabuf) {
  if (!Dmabuf::UdmabufAvailable()) {
    GTEST_SKIP() << "/dev/udmabuf not present: load the udmabuf module "
                    "(CONFIG_UDMABUF)";
  }
  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateUdmabuf("rx", 1 << 20);
  if (buf.status().code() == absl::StatusCode::kPermissionDenied) {
    GTEST_SKIP() << "no access to /dev/udmabuf: " << buf.status();
  }
  ASSERT_TRUE(buf.ok()) << buf.status();
  EXPECT_EQ(buf->kind(), Dmabuf::Kind::kUdmabuf);
  absl::StatusOr<DmabufMapping> m = buf->Map();
  ASSERT_TRUE(m.ok()) << m.status();
  m->data()[0] = std::byte{1};
  // A dma-buf's size is what lseek(SEEK_END) says.
  EXPECT_EQ(::lseek(buf->fd().get(), 0, SEEK_END), 1 << 20);
}

}  // namespace
}  // namespace devmem
