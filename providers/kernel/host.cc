#include "providers/kernel/host.h"

#include <dirent.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace devmem::kernel {
namespace {

class RealHost final : public HostOps {
 public:
  explicit RealHost(std::string sysfs_net) : sysfs_net_(std::move(sysfs_net)) {}

  absl::StatusOr<uint32_t> NameToIndex(const std::string& name) override {
    const unsigned idx = ::if_nametoindex(name.c_str());
    if (idx == 0) return ErrnoStatus(absl::StrCat("device '", name, "'"));
    return idx;
  }

  absl::StatusOr<std::string> IndexToName(uint32_t ifindex) override {
    char buf[IF_NAMESIZE] = {};
    if (::if_indextoname(ifindex, buf) == nullptr) {
      return ErrnoStatus(absl::StrCat("ifindex ", ifindex));
    }
    return std::string(buf);
  }

  absl::StatusOr<bool> IsUp(const std::string& name) override {
    if (name.empty() || name.size() >= IFNAMSIZ) {
      return ErrnoToStatus(ENODEV, absl::StrCat("device '", name, "'"));
    }
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock.ok()) return ErrnoStatus("socket");
    ifreq ifr = {};
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) {
      return ErrnoStatus(absl::StrCat(name, ": SIOCGIFFLAGS"));
    }
    return (ifr.ifr_flags & IFF_UP) != 0;
  }

  std::optional<int32_t> NumaNode(const std::string& name) override {
    std::ifstream in(absl::StrCat(sysfs_net_, "/", name, "/device/numa_node"));
    std::string text;
    if (!in || !std::getline(in, text)) return std::nullopt;
    int32_t node = -1;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &node) ||
        node < 0) {
      return std::nullopt;
    }
    return node;
  }

  absl::StatusOr<QueueCounts> SysfsQueueCounts(
      const std::string& name) override {
    const std::string path = absl::StrCat(sysfs_net_, "/", name, "/queues");
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return ErrnoStatus(absl::StrCat("opendir ", path));
    QueueCounts counts;
    while (const dirent* e = ::readdir(dir)) {
      const absl::string_view entry = e->d_name;
      if (absl::StartsWith(entry, "rx-")) ++counts.rx;
      if (absl::StartsWith(entry, "tx-")) ++counts.tx;
    }
    ::closedir(dir);
    return counts;
  }

 private:
  const std::string sysfs_net_;
};

}  // namespace

std::unique_ptr<HostOps> CreateRealHostOps(std::string sysfs_net) {
  return std::make_unique<RealHost>(std::move(sysfs_net));
}

}  // namespace devmem::kernel
