#include "base/fd_socket.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace devmem {
namespace {

int OpenFdCount() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the DIR's own fd
}

struct Pair {
  UniqueFd a, b;
};
Pair SeqPair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

UniqueFd Memfd() { return UniqueFd(::memfd_create("t", MFD_CLOEXEC)); }

// Sends with raw sendmsg and several SCM_RIGHTS cmsgs, as a hostile peer may.
void SendTwoCmsgs(BorrowedFd sock, int fd1, int fd2) {
  alignas(cmsghdr) char control[2 * CMSG_SPACE(sizeof(int))] = {};
  char byte = 'x';
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd1, sizeof(int));
  c = CMSG_NXTHDR(&msg, c);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd2, sizeof(int));
  ASSERT_EQ(::sendmsg(sock.get(), &msg, 0), 1);
}

TEST(FdSocketTest, BytesOnly) {
  Pair p = SeqPair();
  ASSERT_TRUE(SendFrame(p.a.borrow(), "hello").ok());
  auto f = RecvFrame(p.b.borrow(), {});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->eof);
  EXPECT_EQ(f->data, "hello");
  EXPECT_TRUE(f->fds.empty());
  EXPECT_EQ(f->problem, FrameProblem::kNone);
}

TEST(FdSocketTest, OneFdArrivesCloexecAndUsable) {
  Pair p = SeqPair();
  UniqueFd m = Memfd();
  ASSERT_EQ(::ftruncate(m.get(), 8192), 0);
  const int before = OpenFdCount();
  ASSERT_TRUE(SendFrame(p.a.borrow(), "reg", {m.borrow()}).ok());
  {
    auto f = RecvFrame(p.b.borrow(), {});
    ASSERT_TRUE(f.ok());
    ASSERT_EQ(f->fds.size(), 1u);
    EXPECT_EQ(f->problem, FrameProblem::kNone);
    EXPECT_NE(f->fds[0].get(), m.get());
    EXPECT_EQ(::fcntl(f->fds[0].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    EXPECT_EQ(::lseek(f->fds[0].get(), 0, SEEK_END), 8192);
    EXPECT_EQ(OpenFdCount(), before + 1);
  }
  EXPECT_EQ(OpenFdCount(), before);
}

TEST(FdSocketTest, TooManyFdsAreReportedAndOwned) {
  Pair p = SeqPair();
  UniqueFd m1 = Memfd(), m2 = Memfd(), m3 = Memfd();
  const int before = OpenFdCount();
  ASSERT_TRUE(
      SendFrame(p.a.borrow(), "reg", {m1.borrow(), m2.borrow(), m3.borrow()})
          .ok());
  {
    auto f = RecvFrame(p.b.borrow(), {.max_frame_bytes = 1024, .max_fds = 1});
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->problem, FrameProblem::kTooManyFds);
    EXPECT_EQ(f->fds.size(), 3u);
  }
  EXPECT_EQ(OpenFdCount(), before);
}

TEST(FdSocketTest, SeveralCmsgsAreAllAdopted) {
  Pair p = SeqPair();
  UniqueFd m1 = Memfd(), m2 = Memfd();
  const int before = OpenFdCount();
  SendTwoCmsgs(p.a.borrow(), m1.get(), m2.get());
  {
    auto f = RecvFrame(p.b.borrow(), {});
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->fds.size(), 2u);
    EXPECT_EQ(f->problem, FrameProblem::kTooManyFds);
  }
  EXPECT_EQ(OpenFdCount(), before);
}

TEST(FdSocketTest, MoreFdsThanControlRoomIsCtrunc) {
  Pair p = SeqPair();
  std::vector<UniqueFd> mem;
  std::vector<BorrowedFd> borrowed;
  for (size_t i = 0; i < 40; ++i) {
    mem.push_back(Memfd());
    borrowed.push_back(mem.back().borrow());
  }
  // SendFrame refuses more than kMaxFdsPerFrame; use raw sendmsg.
  EXPECT_FALSE(SendFrame(p.a.borrow(), "x", borrowed).ok());
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 40)] = {};
  char byte = 'x';
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * 40);
  for (int i = 0; i < 40; ++i) {
    const int fd = mem[i].get();
    std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
  }
  ASSERT_EQ(::sendmsg(p.a.get(), &msg, 0), 1);
  const int before = OpenFdCount();
  {
    auto f = RecvFrame(p.b.borrow(), {});
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->problem, FrameProblem::kControlTruncated);
    EXPECT_LE(f->fds.size(), kMaxFdsPerFrame + 8);
  }
  EXPECT_EQ(OpenFdCount(), before);
}

TEST(FdSocketTest, OversizedFrameIsTruncatedAndFdsClosed) {
  Pair p = SeqPair();
  UniqueFd m = Memfd();
  const int before = OpenFdCount();
  std::string big(5000, 'z');
  ASSERT_TRUE(SendFrame(p.a.borrow(), big, {m.borrow()}).ok());
  ASSERT_TRUE(SendFrame(p.a.borrow(), "next").ok());
  {
    auto f = RecvFrame(p.b.borrow(), {.max_frame_bytes = 1000, .max_fds = 1});
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->problem, FrameProblem::kTooLarge);
    EXPECT_EQ(f->data.size(), 1000u);
    EXPECT_EQ(f->fds.size(), 1u);
  }
  EXPECT_EQ(OpenFdCount(), before);
  // The stream stays in sync: the next packet is intact.
  auto f = RecvFrame(p.b.borrow(), {.max_frame_bytes = 1000, .max_fds = 1});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->data, "next");
}

TEST(FdSocketTest, ExactlyMaxSizeIsFine) {
  Pair p = SeqPair();
  std::string s(1000, 'a');
  ASSERT_TRUE(SendFrame(p.a.borrow(), s).ok());
  auto f = RecvFrame(p.b.borrow(), {.max_frame_bytes = 1000, .max_fds = 1});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->problem, FrameProblem::kNone);
  EXPECT_EQ(f->data, s);
}

TEST(FdSocketTest, EofWhenPeerCloses) {
  Pair p = SeqPair();
  p.a.reset();
  auto f = RecvFrame(p.b.borrow(), {});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->eof);
}

TEST(FdSocketTest, ZeroLengthRecordIsNotEof) {
  Pair p = SeqPair();
  ASSERT_TRUE(SendFrame(p.a.borrow(), "", {}).ok());
  auto f = RecvFrame(p.b.borrow(), {});
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->eof);
  EXPECT_TRUE(f->data.empty());
  p.a.reset();
  auto g = RecvFrame(p.b.borrow(), {});
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->eof);
}

TEST(FdSocketTest, NonBlockingEmptyIsUnavailable) {
  Pair p = SeqPair();
  auto f = RecvFrame(p.b.borrow(), {}, MSG_DONTWAIT);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kUnavailable);
}

TEST(FdSocketTest, SendToClosedPeerFails) {
  Pair p = SeqPair();
  p.b.reset();
  absl::Status s = SendFrame(p.a.borrow(), "x");
  EXPECT_FALSE(s.ok());
}

TEST(FdSocketTest, ListenConnectPeerCred) {
  char dir[] = "/tmp/fdsockXXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/s.sock";
  auto l = ListenSeqPacket(path, 0660);
  ASSERT_TRUE(l.ok()) << l.status();
  auto c = ConnectSeqPacket(path);
  ASSERT_TRUE(c.ok()) << c.status();
  UniqueFd s(::accept4(l->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(s.ok());
  auto cred = GetPeerCred(s.borrow());
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->uid, ::getuid());
  EXPECT_EQ(cred->pid, ::getpid());
  // A second listener on the same path replaces the stale socket.
  auto l2 = ListenSeqPacket(path, 0600);
  EXPECT_TRUE(l2.ok()) << l2.status();
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST(FdSocketTest, PathTooLong) {
  auto l = ListenSeqPacket(std::string(200, 'a'), 0600);
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace devmem
