// server/privilege: DropPrivileges in a forked (single-threaded) child keeps
// exactly the capabilities asked for, in every set, and sets no_new_privs;
// it refuses to run with more than one thread (capabilities are per thread).
#include "server/privilege.h"

#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/server/proc_status.h"

namespace devmem::server {
namespace {

using devmem::testing::ProcCaps;
using devmem::testing::ReadProcCaps;

constexpr uint64_t Bit(int cap) { return uint64_t{1} << cap; }

// Runs DropPrivileges(keep) in a child; returns the child's sets afterwards
// (written to a pipe), or found=false if the drop failed.
ProcCaps DropInChild(const std::vector<int>& keep) {
  int p[2];
  if (::pipe(p) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    ProcCaps c;
    if (DropPrivileges(keep).ok()) c = ReadProcCaps("/proc/self/status");
    (void)!::write(p[1], &c, sizeof(c));
    ::_exit(0);
  }
  ::close(p[1]);
  ProcCaps c;
  if (::read(p[0], &c, sizeof(c)) != sizeof(c)) c = {};
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return c;
}

TEST(PrivilegeTest, KernelProviderKeepsOnlyNetAdmin) {
  const ProcCaps before = ReadProcCaps("/proc/self/status");
  ASSERT_TRUE(before.found);
  const ProcCaps after = DropInChild(CapabilitiesForProvider("kernel"));
  ASSERT_TRUE(after.found) << "DropPrivileges failed in the child";
  std::printf(
      "before: eff=%016llx bnd=%016llx; after: eff=%016llx "
      "prm=%016llx inh=%016llx amb=%016llx bnd=%016llx nnp=%d\n",
      (unsigned long long)before.eff, (unsigned long long)before.bnd,
      (unsigned long long)after.eff, (unsigned long long)after.prm,
      (unsigned long long)after.inh, (unsigned long long)after.amb,
      (unsigned long long)after.bnd, after.no_new_privs);
  const uint64_t want = before.prm & Bit(CAP_NET_ADMIN);
  EXPECT_EQ(after.eff, want);
  EXPECT_EQ(after.prm, want);
  EXPECT_EQ(after.inh, 0u);
  EXPECT_EQ(after.amb, 0u);
  if (before.eff & Bit(CAP_SETPCAP)) {
    EXPECT_EQ(after.bnd, Bit(CAP_NET_ADMIN) & before.bnd);
  }
  EXPECT_EQ(after.no_new_privs, 1);
}

TEST(PrivilegeTest, SimProviderKeepsNothing) {
  const ProcCaps before = ReadProcCaps("/proc/self/status");
  const ProcCaps after = DropInChild(CapabilitiesForProvider("sim"));
  ASSERT_TRUE(after.found) << "DropPrivileges failed in the child";
  EXPECT_EQ(after.eff, 0u);
  EXPECT_EQ(after.prm, 0u);
  EXPECT_EQ(after.inh, 0u);
  EXPECT_EQ(after.amb, 0u);
  if (before.eff & Bit(CAP_SETPCAP)) {
    EXPECT_EQ(after.bnd, 0u);
  }
  EXPECT_EQ(after.no_new_privs, 1);
}

TEST(PrivilegeTest, RefusesWhenAnotherThreadRuns) {
  absl::Notification stop;
  std::thread t([&stop] { stop.WaitForNotification(); });
  const absl::Status s = DropPrivileges({});
  stop.Notify();
  t.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  // Nothing was dropped in this (the test's) process.
  EXPECT_EQ(ReadProcCaps("/proc/self/status").no_new_privs, 0);
}

}  // namespace
}  // namespace devmem::server
