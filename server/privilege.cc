#include "server/privilege.h"

#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem::server {

std::vector<int> CapabilitiesForProvider(const std::string& provider) {
  // The kernel provider drives netdev/ethtool netlink and ntuple rules; the
  // sim needs nothing.
  if (provider == "sim") return {};
  return {CAP_NET_ADMIN};
}

namespace {

absl::Status CheckSingleThreaded() {
  std::error_code ec;
  size_t threads = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++threads;
  }
  if (ec) return absl::OkStatus();  // no /proc: nothing to check against
  if (threads != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("privileges must be dropped while single-threaded; ",
                     threads, " threads run (capabilities are per thread)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DropPrivileges(const std::vector<int>& keep) {
  if (absl::Status s = CheckSingleThreaded(); !s.ok()) return s;
  auto kept = [&keep](int cap) {
    return std::find(keep.begin(), keep.end(), cap) != keep.end();
  };
  cap_t current = cap_get_proc();
  if (current == nullptr) return ErrnoStatus("cap_get_proc");
  absl::Cleanup free_current = [current] { cap_free(current); };

  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes
  // with the effective set below. Without CAP_SETPCAP (an unprivileged run)
  // the bounding set cannot shrink, and nothing in it can be gained back
  // either: no_new_privs below forbids file capabilities and setuid.
  cap_flag_value_t setpcap = CAP_CLEAR;
  cap_get_flag(current, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap);
  if (setpcap == CAP_SET) {
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      if (kept(cap)) continue;
      if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) <= 0) continue;
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        return ErrnoStatus(absl::StrCat("prctl(PR_CAPBSET_DROP, ", cap, ")"));
      }
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return ErrnoStatus("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }

  // Effective and permitted: only what is kept and held; inheritable: empty.
  cap_t next = cap_init();
  if (next == nullptr) return ErrnoStatus("cap_init");
  absl::Cleanup free_next = [next] { cap_free(next); };
  for (int cap : keep) {
    cap_flag_value_t held = CAP_CLEAR;
    cap_get_flag(current, cap, CAP_PERMITTED, &held);
    if (held != CAP_SET) continue;
    cap_value_t v = cap;
    cap_set_flag(next, CAP_PERMITTED, 1, &v, CAP_SET);
    cap_set_flag(next, CAP_EFFECTIVE, 1, &v, CAP_SET);
  }
  if (cap_set_proc(next) != 0) return ErrnoStatus("cap_set_proc");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoStatus("prctl(PR_SET_NO_NEW_PRIVS)");
  }
  return absl::OkStatus();
}

}  // namespace devmem::server
