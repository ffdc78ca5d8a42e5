// Teardown in every order: with a flow streaming into a binding and a job
// reading its data path, four things end it -- the job closes its data path
// (its session ends), the link goes down, the binding is unbound, the
// provider goes (the daemon stops) -- and each of the 24 orders must leave
// nothing behind: no crash, the region released with no token lent, the
// sender's connection ended, and the process's fd count back where it was.
// The kernel's devmem shipped a use-after-free from exactly this kind of
// ordering. Runs on the sim's threads (label tsan).
#include <dirent.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "client/dmabuf/dmabuf.h"
#include "gtest/gtest.h"
#include "providers/sim/sim_provider.h"
#include "tests/providers_sim/sim_test_util.h"

namespace devmem {
namespace {

using ::devmem::testing::ConnectTo;
using ::devmem::testing::DataPathPeer;
using ::devmem::testing::Eventually;
using ::devmem::testing::ReturnAll;
using ::devmem::testing::WriteAll;

enum class Step { kJobCloses, kLinkDown, kUnbind, kDaemonStops };

const char* Name(Step s) {
  switch (s) {
    case Step::kJobCloses:
      return "job-closes";
    case Step::kLinkDown:
      return "link-down";
    case Step::kUnbind:
      return "unbind";
    case Step::kDaemonStops:
      return "daemon-stops";
  }
  return "?";
}

int OpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the DIR itself
}

class SimTeardownTest : public ::testing::TestWithParam<std::array<Step, 4>> {};

TEST_P(SimTeardownTest, LeavesNothingBehind) {
  const std::array<Step, 4> order = GetParam();
  std::vector<std::string> names;
  for (Step s : order) names.push_back(Name(s));
  SCOPED_TRACE(absl::StrJoin(names, " -> "));

  absl::StatusOr<Dmabuf> buf = Dmabuf::CreateMemfd("teardown", 64 * 4096);
  ASSERT_TRUE(buf.ok());
  const int fds_before = OpenFds();

  auto provider = CreateSimProvider(SimOptions{.spec = "sim0:rx=4,tx=4"});
  ASSERT_TRUE(provider.ok());
  SimNic* nic = GetSimNic(provider->get());
  auto prep = (*provider)->PrepareDevice("sim0", std::vector<uint32_t>{3});
  ASSERT_TRUE(prep.ok());
  auto binding = (*provider)->BindRx(
      RxBindSpec{.device = "sim0", .queue_ids = {3}, .dmabuf = buf->fd()});
  ASSERT_TRUE(binding.ok()) << binding.status();
  std::shared_ptr<Region> region = (*binding)->region();
  auto job = std::make_unique<DataPathPeer>(**binding);
  const std::string endpoint = job->endpoint();

  // A sender that writes until its connection is taken away, and a job that
  // returns half of what it gets (so tokens are lent when teardown starts).
  std::atomic<bool> sender_done{false};
  std::thread sender([&] {
    UniqueFd fd = ConnectTo(endpoint);
    std::vector<uint8_t> block(16384, 0x5a);
    while (WriteAll(fd.get(), block.data(), block.size())) {
    }
    sender_done.store(true);
  });
  ASSERT_TRUE(job->WaitBytes(8 * 4096));
  std::vector<uapi::DmabufCmsg> got = job->Take();
  got.resize(got.size() / 2);
  (void)ReturnAll(*job, got);

  bool provider_gone = false;
  for (Step s : order) {
    switch (s) {
      case Step::kJobCloses:
        job->Close();
        break;
      case Step::kLinkDown:
        // After the daemon stopped there is no device to take down.
        if (!provider_gone) {
          ASSERT_TRUE(nic->SetLinkUp("sim0", false).ok());
        }
        break;
      case Step::kUnbind:
        binding->reset();
        prep->reset();
        break;
      case Step::kDaemonStops:
        provider->reset();  // bindings may outlive it
        provider_gone = true;
        break;
    }
  }
  // All four happened: the binding is gone, so is its flow.
  sender.join();
  EXPECT_TRUE(sender_done.load());
  job.reset();
  EXPECT_TRUE(region->retired());
  EXPECT_TRUE(region->released());
  EXPECT_EQ(region->Stats().lent_tokens, 0u);
  region.reset();
  EXPECT_TRUE(Eventually([&] { return OpenFds() == fds_before; }))
      << OpenFds() << " fds open, " << fds_before << " before";
}

std::vector<std::array<Step, 4>> AllOrders() {
  std::array<Step, 4> a = {Step::kJobCloses, Step::kLinkDown, Step::kUnbind,
                           Step::kDaemonStops};
  std::vector<std::array<Step, 4>> out;
  do {
    out.push_back(a);
  } while (std::next_permutation(a.begin(), a.end()));
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    EveryOrder, SimTeardownTest, ::testing::ValuesIn(AllOrders()),
    [](const ::testing::TestParamInfo<std::array<Step, 4>>& info) {
      std::string n;
      for (Step s : info.param) {
        for (const char* c = Name(s); *c != '\0'; ++c) {
          if (*c != '-') n.push_back(*c);
        }
        n.push_back('_');
      }
      n.pop_back();
      return n;
    });

}  // namespace
}  // namespace devmem
