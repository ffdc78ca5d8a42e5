#include "providers/kernel/ethtool.h"

#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/ethtool_netlink.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "providers/kernel/genl_client.h"

namespace devmem::kernel {
namespace {

static_assert(ETHTOOL_A_RINGS_TCP_DATA_SPLIT == 11);
static_assert(ETHTOOL_A_RINGS_TX_PUSH == 13);

std::string RingsAttrName(absl::Span<const uint16_t> path) {
  if (path.empty()) return "";
  switch (path[0]) {
    case ETHTOOL_A_RINGS_HEADER:
      return path.size() == 1 ? "header" : "header.dev-name";
    case ETHTOOL_A_RINGS_TCP_DATA_SPLIT:
      return "tcp-data-split";
    case uapi::kEthtoolARingsHdsThresh:
      return "hds-thresh";
    default:
      return "";
  }
}

// SIOCETHTOOL on `dev` with `data` (a struct starting with its u32 cmd).
absl::Status EthtoolIoctl(const std::string& dev, void* data,
                          absl::string_view what) {
  if (dev.empty() || dev.size() >= IFNAMSIZ) {
    return ErrnoToStatus(ENODEV, absl::StrCat("'", dev, "': ethtool ", what));
  }
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.ok()) return ErrnoStatus("ethtool socket");
  ifreq ifr = {};
  std::memcpy(ifr.ifr_name, dev.data(), dev.size());
  ifr.ifr_data = static_cast<char*>(data);
  if (::ioctl(sock.get(), SIOCETHTOOL, &ifr) != 0) {
    return ErrnoStatus(absl::StrCat(dev, ": ethtool ", what));
  }
  return absl::OkStatus();
}

void FillAddr(const std::optional<std::array<uint8_t, 16>>& addr, bool ipv6,
              void* value, void* mask) {
  if (!addr.has_value()) return;
  const size_t n = ipv6 ? 16 : 4;
  std::memcpy(value, addr->data(), n);
  std::memset(mask, 0xff, n);
}

class RealEthtool final : public EthtoolOps {
 public:
  explicit RealEthtool(std::shared_ptr<NetlinkTransport> transport)
      : transport_(std::move(transport)) {}

  absl::StatusOr<RingsConfig> GetRings(const std::string& dev) override {
    MutexLock lock(mu_);
    ASSIGN_OR_RETURN(GenlClient * genl, ClientLocked());
    NlBuilder b(family_id_, NLM_F_REQUEST);
    b.PutGenlHeader(ETHTOOL_MSG_RINGS_GET, ETHTOOL_GENL_VERSION);
    const size_t nest = b.BeginNest(ETHTOOL_A_RINGS_HEADER);
    b.PutString(ETHTOOL_A_HEADER_DEV_NAME, dev);
    b.EndNest(nest);
    RequestContext ctx;
    ctx.what = absl::StrCat(dev, ": ethtool rings-get");
    ctx.namer = RingsAttrName;
    std::optional<RingsConfig> out;
    RETURN_IF_ERROR(genl->Do(
        std::move(b).Finish(), ctx, [&out](const GenlMsg& msg) -> absl::Status {
          ASSIGN_OR_RETURN(RingsConfig r, ParseRingsReply(msg.attrs));
          out = r;
          return absl::OkStatus();
        }));
    if (!out.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ctx.what, ": no reply before the ACK"));
    }
    return *out;
  }

  absl::Status SetRings(const std::string& dev,
                        std::optional<uint8_t> tcp_data_split,
                        std::optional<uint32_t> hds_thresh) override {
    MutexLock lock(mu_);
    ASSIGN_OR_RETURN(GenlClient * genl, ClientLocked());
    NlBuilder b(family_id_, NLM_F_REQUEST);
    b.PutGenlHeader(ETHTOOL_MSG_RINGS_SET, ETHTOOL_GENL_VERSION);
    const size_t nest = b.BeginNest(ETHTOOL_A_RINGS_HEADER);
    b.PutString(ETHTOOL_A_HEADER_DEV_NAME, dev);
    b.EndNest(nest);
    if (tcp_data_split) {
      b.PutU8(ETHTOOL_A_RINGS_TCP_DATA_SPLIT, *tcp_data_split);
    }
    if (hds_thresh) b.PutU32(uapi::kEthtoolARingsHdsThresh, *hds_thresh);
    RequestContext ctx;
    ctx.what = absl::StrCat(dev, ": ethtool rings-set");
    ctx.namer = RingsAttrName;
    return genl->Do(std::move(b).Finish(), ctx,
                    [](const GenlMsg&) { return absl::OkStatus(); });
  }

  absl::StatusOr<uint32_t> GetRxRingCount(const std::string& dev) override {
    ethtool_rxnfc nfc = {};
    nfc.cmd = ETHTOOL_GRXRINGS;
    RETURN_IF_ERROR(EthtoolIoctl(dev, &nfc, "GRXRINGS"));
    return static_cast<uint32_t>(nfc.data);
  }

  absl::StatusOr<std::vector<uint32_t>> GetRxfhIndir(
      const std::string& dev) override {
    ethtool_rxfh_indir head = {};
    head.cmd = ETHTOOL_GRXFHINDIR;
    RETURN_IF_ERROR(EthtoolIoctl(dev, &head, "GRXFHINDIR"));
    if (head.size == 0) return std::vector<uint32_t>{};
    // The table follows the header in one allocation (flexible array).
    std::vector<uint32_t> buf(2 + head.size);
    auto* indir = reinterpret_cast<ethtool_rxfh_indir*>(buf.data());
    indir->cmd = ETHTOOL_GRXFHINDIR;
    indir->size = head.size;
    RETURN_IF_ERROR(EthtoolIoctl(dev, indir, "GRXFHINDIR"));
    return std::vector<uint32_t>(buf.begin() + 2,
                                 buf.begin() + 2 + indir->size);
  }

  absl::Status SetRxfhIndir(const std::string& dev,
                            absl::Span<const uint32_t> table) override {
    std::vector<uint32_t> buf(2 + table.size());
    auto* indir = reinterpret_cast<ethtool_rxfh_indir*>(buf.data());
    indir->cmd = ETHTOOL_SRXFHINDIR;
    indir->size = static_cast<uint32_t>(table.size());
    std::copy(table.begin(), table.end(), buf.begin() + 2);
    return EthtoolIoctl(dev, indir, "SRXFHINDIR");
  }

  absl::StatusOr<uint32_t> InsertRule(const std::string& dev,
                                      const NtupleRule& rule) override {
    ASSIGN_OR_RETURN(uint32_t location, PickLocation(dev));
    ethtool_rxnfc nfc = {};
    nfc.cmd = ETHTOOL_SRXCLSRLINS;
    ethtool_rx_flow_spec& fs = nfc.fs;
    fs.ring_cookie = rule.queue;
    fs.location = location;
    if (rule.ipv6) {
      fs.flow_type = TCP_V6_FLOW;
      FillAddr(rule.src_ip, true, fs.h_u.tcp_ip6_spec.ip6src,
               fs.m_u.tcp_ip6_spec.ip6src);
      FillAddr(rule.dst_ip, true, fs.h_u.tcp_ip6_spec.ip6dst,
               fs.m_u.tcp_ip6_spec.ip6dst);
      if (rule.src_port != 0) {
        fs.h_u.tcp_ip6_spec.psrc = htons(rule.src_port);
        fs.m_u.tcp_ip6_spec.psrc = 0xffff;
      }
      fs.h_u.tcp_ip6_spec.pdst = htons(rule.dst_port);
      fs.m_u.tcp_ip6_spec.pdst = 0xffff;
    } else {
      fs.flow_type = TCP_V4_FLOW;
      FillAddr(rule.src_ip, false, &fs.h_u.tcp_ip4_spec.ip4src,
               &fs.m_u.tcp_ip4_spec.ip4src);
      FillAddr(rule.dst_ip, false, &fs.h_u.tcp_ip4_spec.ip4dst,
               &fs.m_u.tcp_ip4_spec.ip4dst);
      if (rule.src_port != 0) {
        fs.h_u.tcp_ip4_spec.psrc = htons(rule.src_port);
        fs.m_u.tcp_ip4_spec.psrc = 0xffff;
      }
      fs.h_u.tcp_ip4_spec.pdst = htons(rule.dst_port);
      fs.m_u.tcp_ip4_spec.pdst = 0xffff;
    }
    RETURN_IF_ERROR(EthtoolIoctl(dev, &nfc, "SRXCLSRLINS"));
    return nfc.fs.location;
  }

  absl::Status DeleteRule(const std::string& dev, uint32_t location) override {
    ethtool_rxnfc nfc = {};
    nfc.cmd = ETHTOOL_SRXCLSRLDEL;
    nfc.fs.location = location;
    return EthtoolIoctl(dev, &nfc, "SRXCLSRLDEL");
  }

 private:
  // ethtool(8)'s rule manager: RX_CLS_LOC_ANY where the driver takes it,
  // else the lowest location no rule uses.
  absl::StatusOr<uint32_t> PickLocation(const std::string& dev) {
    ethtool_rxnfc cnt = {};
    cnt.cmd = ETHTOOL_GRXCLSRLCNT;
    RETURN_IF_ERROR(EthtoolIoctl(dev, &cnt, "GRXCLSRLCNT"));
    if (cnt.data & RX_CLS_LOC_SPECIAL) return RX_CLS_LOC_ANY;
    const uint32_t table_size = static_cast<uint32_t>(cnt.data);
    std::vector<uint8_t> buf(sizeof(ethtool_rxnfc) +
                             sizeof(uint32_t) * cnt.rule_cnt);
    auto* all = reinterpret_cast<ethtool_rxnfc*>(buf.data());
    all->cmd = ETHTOOL_GRXCLSRLALL;
    all->rule_cnt = cnt.rule_cnt;
    RETURN_IF_ERROR(EthtoolIoctl(dev, all, "GRXCLSRLALL"));
    std::vector<bool> used(table_size, false);
    for (uint32_t i = 0; i < all->rule_cnt && i < cnt.rule_cnt; ++i) {
      if (all->rule_locs[i] < table_size) used[all->rule_locs[i]] = true;
    }
    for (uint32_t loc = 0; loc < table_size; ++loc) {
      if (!used[loc]) return loc;
    }
    return ErrnoToStatus(ENOSPC, absl::StrCat(dev, ": ntuple rule table full (",
                                              table_size, " entries)"));
  }

  absl::StatusOr<GenlClient*> ClientLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (genl_ == nullptr) {
      ASSIGN_OR_RETURN(std::unique_ptr<GenlClient> genl,
                       GenlClient::Open(*transport_));
      ASSIGN_OR_RETURN(GenlFamily family,
                       genl->ResolveFamily(ETHTOOL_GENL_NAME));
      family_id_ = family.id;
      genl_ = std::move(genl);
    }
    return genl_.get();
  }

  const std::shared_ptr<NetlinkTransport> transport_;
  Mutex mu_;
  std::unique_ptr<GenlClient> genl_ ABSL_GUARDED_BY(mu_);
  uint16_t family_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::StatusOr<RingsConfig> ParseRingsReply(absl::Span<const NlAttr> attrs) {
  RingsConfig r;
  for (const NlAttr& a : attrs) {
    switch (a.type) {
      case ETHTOOL_A_RINGS_TCP_DATA_SPLIT: {
        ASSIGN_OR_RETURN(r.tcp_data_split, AttrU8(a));
        break;
      }
      case uapi::kEthtoolARingsHdsThresh: {
        ASSIGN_OR_RETURN(uint32_t v, AttrU32(a));
        r.hds_thresh = v;
        break;
      }
      case uapi::kEthtoolARingsHdsThreshMax: {
        ASSIGN_OR_RETURN(uint32_t v, AttrU32(a));
        r.hds_thresh_max = v;
        break;
      }
      default:
        break;
    }
  }
  return r;
}

std::unique_ptr<EthtoolOps> CreateRealEthtoolOps(
    std::shared_ptr<NetlinkTransport> transport) {
  return std::make_unique<RealEthtool>(std::move(transport));
}

}  // namespace devmem::kernel
