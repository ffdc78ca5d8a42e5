#include "providers/kernel/netdev_family.h"

#include <linux/netlink.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/uapi.h"

namespace devmem::kernel {
namespace {

using namespace ::devmem::uapi;  // NOLINT: the attribute enums

template <typename T>
absl::Status Assign(std::optional<T>& out, absl::StatusOr<T> value) {
  if (!value.ok()) return value.status();
  out = *value;
  return absl::OkStatus();
}

template <typename T>
absl::Status Assign(T& out, absl::StatusOr<T> value) {
  if (!value.ok()) return value.status();
  out = *value;
  return absl::OkStatus();
}

absl::Status Missing(absl::string_view record, absl::string_view attr) {
  return absl::InvalidArgumentError(
      absl::StrCat(record, " record without ", attr));
}

std::string ExplainBindRx(int errnum) {
  return errnum == EOPNOTSUPP ? kNoQueueApiText : "";
}

}  // namespace

uint64_t QstatsRecord::Counter(uint16_t type) const {
  auto it = counters.find(type);
  return it == counters.end() ? 0 : it->second;
}

absl::StatusOr<DevRecord> ParseDevRecord(absl::Span<const NlAttr> attrs) {
  DevRecord r;
  bool have_ifindex = false;
  for (const NlAttr& a : attrs) {
    switch (a.type) {
      case kNetdevADevIfindex:
        RETURN_IF_ERROR(Assign(r.ifindex, AttrU32(a)));
        have_ifindex = true;
        break;
      case kNetdevADevXdpFeatures:
        RETURN_IF_ERROR(Assign(r.xdp_features, AttrU64(a)));
        break;
      case kNetdevADevXdpZcMaxSegs:
        RETURN_IF_ERROR(Assign(r.xdp_zc_max_segs, AttrU32(a)));
        break;
      case kNetdevADevXdpRxMetadataFeatures:
        RETURN_IF_ERROR(Assign(r.xdp_rx_metadata_features, AttrU64(a)));
        break;
      case kNetdevADevXskFeatures:
        RETURN_IF_ERROR(Assign(r.xsk_features, AttrU64(a)));
        break;
      default:
        break;
    }
  }
  if (!have_ifindex) return Missing("dev", "ifindex");
  return r;
}

absl::StatusOr<QueueRecord> ParseQueueRecord(absl::Span<const NlAttr> attrs) {
  QueueRecord r;
  bool have_id = false, have_ifindex = false, have_type = false;
  for (const NlAttr& a : attrs) {
    switch (a.type) {
      case kNetdevAQueueId:
        RETURN_IF_ERROR(Assign(r.id, AttrU32(a)));
        have_id = true;
        break;
      case kNetdevAQueueIfindex:
        RETURN_IF_ERROR(Assign(r.ifindex, AttrU32(a)));
        have_ifindex = true;
        break;
      case kNetdevAQueueType:
        RETURN_IF_ERROR(Assign(r.type, AttrU32(a)));
        have_type = true;
        break;
      case kNetdevAQueueNapiId:
        RETURN_IF_ERROR(Assign(r.napi_id, AttrU32(a)));
        break;
      case kNetdevAQueueDmabuf:
        RETURN_IF_ERROR(Assign(r.dmabuf, AttrU32(a)));
        break;
      case kNetdevAQueueIoUring:
        r.io_uring = true;
        break;
      case kNetdevAQueueXsk:
        r.xsk = true;
        break;
      default:
        break;
    }
  }
  if (!have_id) return Missing("queue", "id");
  if (!have_ifindex) return Missing("queue", "ifindex");
  if (!have_type) return Missing("queue", "type");
  return r;
}

absl::StatusOr<NapiRecord> ParseNapiRecord(absl::Span<const NlAttr> attrs) {
  NapiRecord r;
  bool have_id = false;
  for (const NlAttr& a : attrs) {
    switch (a.type) {
      case kNetdevANapiIfindex:
        RETURN_IF_ERROR(Assign(r.ifindex, AttrU32(a)));
        break;
      case kNetdevANapiId:
        RETURN_IF_ERROR(Assign(r.id, AttrU32(a)));
        have_id = true;
        break;
      case kNetdevANapiIrq:
        RETURN_IF_ERROR(Assign(r.irq, AttrU32(a)));
        break;
      case kNetdevANapiPid:
        RETURN_IF_ERROR(Assign(r.pid, AttrU32(a)));
        break;
      case kNetdevANapiDeferHardIrqs:
        RETURN_IF_ERROR(Assign(r.defer_hard_irqs, AttrU32(a)));
        break;
      case kNetdevANapiGroFlushTimeout:
        RETURN_IF_ERROR(Assign(r.gro_flush_timeout, AttrUint(a)));
        break;
      case kNetdevANapiIrqSuspendTimeout:
        RETURN_IF_ERROR(Assign(r.irq_suspend_timeout, AttrUint(a)));
        break;
      case kNetdevANapiThreaded:
        RETURN_IF_ERROR(Assign(r.threaded, AttrU32(a)));
        break;
      default:
        break;
    }
  }
  if (!have_id) return Missing("napi", "id");
  return r;
}

absl::StatusOr<PagePoolRecord> ParsePagePoolRecord(
    absl::Span<const NlAttr> attrs) {
  PagePoolRecord r;
  bool have_id = false;
  for (const NlAttr& a : attrs) {
    switch (a.type) {
      case kNetdevAPagePoolId:
        RETURN_IF_ERROR(Assign(r.id, AttrUint(a)));
        have_id = true;
        break;
      case kNetdevAPagePoolIfindex:
        RETURN_IF_ERROR(Assign(r.ifindex, AttrU32(a)));
        break;
      case kNetdevAPagePoolNapiId:
        RETURN_IF_ERROR(Assign(r.napi_id, AttrUint(a)));
        break;
      case kNetdevAPagePoolInflight:
        RETURN_IF_ERROR(Assign(r.inflight, AttrUint(a)));
        break;
      case kNetdevAPagePoolInflightMem:
        RETURN_IF_ERROR(Assign(r.inflight_mem, AttrUint(a)));
        break;
      case kNetdevAPagePoolDetachTime:
        RETURN_IF_ERROR(Assign(r.detach_time, AttrUint(a)));
        break;
      case kNetdevAPagePoolDmabuf:
        RETURN_IF_ERROR(Assign(r.dmabuf, AttrU32(a)));
        break;
      case kNetdevAPagePoolIoUring:
        r.io_uring = true;
        break;
      default:
        break;
    }
  }
  if (!have_id) return Missing("page-pool", "id");
  return r;
}

absl::StatusOr<QstatsRecord> ParseQstatsRecord(absl::Span<const NlAttr> attrs) {
  QstatsRecord r;
  bool have_ifindex = false;
  for (const NlAttr& a : attrs) {
    switch (a.type) {
      case kNetdevAQstatsIfindex:
        RETURN_IF_ERROR(Assign(r.ifindex, AttrU32(a)));
        have_ifindex = true;
        break;
      case kNetdevAQstatsQueueType:
        RETURN_IF_ERROR(Assign(r.queue_type, AttrU32(a)));
        break;
      case kNetdevAQstatsQueueId:
        RETURN_IF_ERROR(Assign(r.queue_id, AttrU32(a)));
        break;
      case kNetdevAQstatsScope:
        RETURN_IF_ERROR(AttrUint(a).status());
        break;
      default:
        if (a.type >= kNetdevAQstatsRxPackets) {
          ASSIGN_OR_RETURN(r.counters[a.type], AttrUint(a));
        }
        break;
    }
  }
  if (!have_ifindex) return Missing("qstats", "ifindex");
  return r;
}

std::string DmabufAttrName(absl::Span<const uint16_t> path) {
  if (path.empty()) return "";
  std::string top;
  switch (path[0]) {
    case kNetdevADmabufIfindex:
      top = "ifindex";
      break;
    case kNetdevADmabufQueues:
      top = "queues";
      break;
    case kNetdevADmabufFd:
      top = "fd";
      break;
    case kNetdevADmabufId:
      top = "id";
      break;
    default:
      return "";
  }
  if (path.size() == 1) return top;
  if (path.size() == 2 && path[0] == kNetdevADmabufQueues) {
    if (path[1] == kNetdevAQueueIdId) return "queues.id";
    if (path[1] == kNetdevAQueueIdType) return "queues.type";
  }
  return "";
}

std::vector<uint8_t> BuildDumpRequest(uint16_t family, uint8_t cmd) {
  NlBuilder b(family, NLM_F_REQUEST | NLM_F_DUMP);
  b.PutGenlHeader(cmd, kNetdevFamilyVersion);
  return std::move(b).Finish();
}

std::vector<uint8_t> BuildQueueDumpRequest(uint16_t family,
                                           std::optional<uint32_t> ifindex) {
  NlBuilder b(family, NLM_F_REQUEST | NLM_F_DUMP);
  b.PutGenlHeader(kNetdevCmdQueueGet, kNetdevFamilyVersion);
  if (ifindex.has_value()) b.PutU32(kNetdevAQueueIfindex, *ifindex);
  return std::move(b).Finish();
}

std::vector<uint8_t> BuildQstatsDumpRequest(uint16_t family,
                                            std::optional<uint32_t> ifindex,
                                            bool per_queue) {
  NlBuilder b(family, NLM_F_REQUEST | NLM_F_DUMP);
  b.PutGenlHeader(kNetdevCmdQstatsGet, kNetdevFamilyVersion);
  if (ifindex.has_value()) b.PutU32(kNetdevAQstatsIfindex, *ifindex);
  if (per_queue) b.PutU32(kNetdevAQstatsScope, kNetdevQstatsScopeQueue);
  return std::move(b).Finish();
}

std::vector<uint8_t> BuildBindRxRequest(uint16_t family, uint32_t ifindex,
                                        BorrowedFd dmabuf,
                                        absl::Span<const uint32_t> queues) {
  NlBuilder b(family, NLM_F_REQUEST | NLM_F_ACK);
  b.PutGenlHeader(kNetdevCmdBindRx, kNetdevFamilyVersion);
  b.PutU32(kNetdevADmabufIfindex, ifindex);
  b.PutU32(kNetdevADmabufFd, static_cast<uint32_t>(dmabuf.get()));
  for (uint32_t q : queues) {
    const size_t nest = b.BeginNest(kNetdevADmabufQueues);
    b.PutU32(kNetdevAQueueIdId, q);
    b.PutU32(kNetdevAQueueIdType, kNetdevQueueTypeRx);
    b.EndNest(nest);
  }
  return std::move(b).Finish();
}

std::vector<uint8_t> BuildBindTxRequest(uint16_t family, uint32_t ifindex,
                                        BorrowedFd dmabuf) {
  NlBuilder b(family, NLM_F_REQUEST | NLM_F_ACK);
  b.PutGenlHeader(kNetdevCmdBindTx, kNetdevFamilyVersion);
  b.PutU32(kNetdevADmabufIfindex, ifindex);
  b.PutU32(kNetdevADmabufFd, static_cast<uint32_t>(dmabuf.get()));
  return std::move(b).Finish();
}

absl::StatusOr<std::unique_ptr<NetdevClient>> NetdevClient::Open(
    NetlinkTransport& transport, std::optional<uint16_t> family_id) {
  ASSIGN_OR_RETURN(std::unique_ptr<GenlClient> genl,
                   GenlClient::Open(transport));
  if (!family_id.has_value()) {
    ASSIGN_OR_RETURN(GenlFamily family, genl->ResolveFamily(kNetdevFamilyName));
    family_id = family.id;
  }
  return std::make_unique<NetdevClient>(std::move(genl), *family_id);
}

NetdevClient::NetdevClient(std::unique_ptr<GenlClient> genl, uint16_t family_id)
    : genl_(std::move(genl)), family_id_(family_id) {}

namespace {

// Dump filters: queue-get's ifindex is attribute 2, qstats-get's is 1.
std::string QueueDumpAttrName(absl::Span<const uint16_t> path) {
  return path.size() == 1 && path[0] == kNetdevAQueueIfindex ? "ifindex" : "";
}
std::string QstatsDumpAttrName(absl::Span<const uint16_t> path) {
  if (path.size() != 1) return "";
  if (path[0] == kNetdevAQstatsIfindex) return "ifindex";
  if (path[0] == kNetdevAQstatsScope) return "scope";
  return "";
}

template <typename Record, typename Parser>
absl::StatusOr<std::vector<Record>> DumpRecords(GenlClient& genl,
                                                std::vector<uint8_t> request,
                                                std::string what, Parser parse,
                                                AttrNamer namer = nullptr) {
  std::vector<Record> out;
  RequestContext ctx;
  ctx.what = std::move(what);
  ctx.namer = namer;
  RETURN_IF_ERROR(genl.Dump(std::move(request), ctx,
                            [&](const GenlMsg& msg) -> absl::Status {
                              ASSIGN_OR_RETURN(Record r, parse(msg.attrs));
                              out.push_back(std::move(r));
                              return absl::OkStatus();
                            }));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<DevRecord>> NetdevClient::DumpDevs() {
  return DumpRecords<DevRecord>(*genl_,
                                BuildDumpRequest(family_id_, kNetdevCmdDevGet),
                                "netdev dev-get dump", ParseDevRecord);
}

absl::StatusOr<std::vector<QueueRecord>> NetdevClient::DumpQueues(
    std::optional<uint32_t> ifindex) {
  return DumpRecords<QueueRecord>(
      *genl_, BuildQueueDumpRequest(family_id_, ifindex),
      ifindex ? absl::StrCat("netdev queue-get dump (ifindex ", *ifindex, ")")
              : "netdev queue-get dump",
      ParseQueueRecord, QueueDumpAttrName);
}

absl::StatusOr<std::vector<NapiRecord>> NetdevClient::DumpNapis() {
  return DumpRecords<NapiRecord>(
      *genl_, BuildDumpRequest(family_id_, kNetdevCmdNapiGet),
      "netdev napi-get dump", ParseNapiRecord);
}

absl::StatusOr<std::vector<PagePoolRecord>> NetdevClient::DumpPagePools() {
  return DumpRecords<PagePoolRecord>(
      *genl_, BuildDumpRequest(family_id_, kNetdevCmdPagePoolGet),
      "netdev page-pool-get dump", ParsePagePoolRecord);
}

absl::StatusOr<std::vector<QstatsRecord>> NetdevClient::DumpQstats(
    std::optional<uint32_t> ifindex, bool per_queue) {
  return DumpRecords<QstatsRecord>(
      *genl_, BuildQstatsDumpRequest(family_id_, ifindex, per_queue),
      ifindex ? absl::StrCat("netdev qstats-get dump (ifindex ", *ifindex, ")")
              : "netdev qstats-get dump",
      ParseQstatsRecord, QstatsDumpAttrName);
}

absl::StatusOr<uint32_t> NetdevClient::Bind(std::vector<uint8_t> request,
                                            RequestContext ctx) {
  std::optional<uint32_t> id;
  RETURN_IF_ERROR(genl_->Do(
      std::move(request), ctx, [&id](const GenlMsg& msg) -> absl::Status {
        const NlAttr* a = FindAttr(msg.attrs, kNetdevADmabufId);
        if (a == nullptr) {
          return absl::InvalidArgumentError("bind reply without an id");
        }
        ASSIGN_OR_RETURN(uint32_t v, AttrU32(*a));
        id = v;
        return absl::OkStatus();
      }));
  if (!id.has_value() || *id == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx.what, ": the kernel acknowledged without an id"));
  }
  return *id;
}

absl::StatusOr<uint32_t> NetdevClient::BindRx(
    const std::string& device, uint32_t ifindex, BorrowedFd dmabuf,
    absl::Span<const uint32_t> queues) {
  RequestContext ctx;
  ctx.what = absl::StrCat(device, ": bind-rx");
  ctx.namer = DmabufAttrName;
  ctx.explain = ExplainBindRx;
  return Bind(BuildBindRxRequest(family_id_, ifindex, dmabuf, queues), ctx);
}

absl::StatusOr<uint32_t> NetdevClient::BindTx(const std::string& device,
                                              uint32_t ifindex,
                                              BorrowedFd dmabuf) {
  RequestContext ctx;
  ctx.what = absl::StrCat(device, ": bind-tx");
  ctx.namer = DmabufAttrName;
  return Bind(BuildBindTxRequest(family_id_, ifindex, dmabuf), ctx);
}

}  // namespace devmem::kernel
