#include "tests/providers_kernel/fake_kernel.h"

#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/uapi.h"
#include "tests/providers_kernel/fake_wire.h"

namespace devmem::testing {
namespace {

using namespace ::devmem::uapi;           // NOLINT
using namespace ::devmem::testing::wire;  // NOLINT: the fake's own codec

// An error answer: what the kernel's netlink_ack() builds with CAP_ACK.
struct Err {
  int errnum = 0;
  std::string msg;
  std::optional<uint32_t> offs;
  std::optional<uint32_t> miss_type;
};

Bytes ErrorTlvs(const Err& e) {
  Bytes t;
  if (!e.msg.empty()) Str(t, NLMSGERR_ATTR_MSG, e.msg);
  if (e.offs) U32(t, NLMSGERR_ATTR_OFFS, *e.offs);
  if (e.miss_type) U32(t, NLMSGERR_ATTR_MISS_TYPE, *e.miss_type);
  return t;
}

}  // namespace

#define ASSIGN_OR_RETURN_DEV(var, dev, what)                             \
  FakeDevice* var = state_->FindLocked(dev);                             \
  if (var == nullptr) {                                                  \
    return ErrnoToStatus(ENODEV, absl::StrCat(dev, ": ethtool ", what)); \
  }

struct FakeKernel::State {
  mutable Mutex mu;
  std::map<uint32_t, FakeDevice> devices ABSL_GUARDED_BY(mu);
  std::vector<FakeBinding> bindings ABSL_GUARDED_BY(mu);
  struct Pool {
    uint64_t id;
    uint32_t ifindex;
    uint32_t dmabuf;
    uint64_t inflight;
    std::optional<uint64_t> detach_time;
  };
  std::vector<Pool> pools ABSL_GUARDED_BY(mu);
  std::map<std::string, std::map<uint32_t, std::string>> rules
      ABSL_GUARDED_BY(mu);
  std::vector<std::string> ethtool_log ABSL_GUARDED_BY(mu);
  std::set<uint64_t> open ABSL_GUARDED_BY(mu);
  std::vector<uint64_t> closed ABSL_GUARDED_BY(mu);
  uint64_t next_endpoint ABSL_GUARDED_BY(mu) = 1;
  uint32_t next_binding ABSL_GUARDED_BY(mu) = 1;
  uint64_t next_pool ABSL_GUARDED_BY(mu) = 1;
  uint64_t pool_inflight ABSL_GUARDED_BY(mu) = 0;
  uint64_t boottime ABSL_GUARDED_BY(mu) = 1000;
  bool admin ABSL_GUARDED_BY(mu) = true;
  bool one_per_datagram ABSL_GUARDED_BY(mu) = false;
  bool netdev_present ABSL_GUARDED_BY(mu) = true;
  int bind_rx_requests ABSL_GUARDED_BY(mu) = 0;

  FakeDevice* FindLocked(uint32_t ifindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = devices.find(ifindex);
    return it == devices.end() ? nullptr : &it->second;
  }
  FakeDevice* FindLocked(const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& [idx, d] : devices) {
      if (d.name == name) return &d;
    }
    return nullptr;
  }
  bool QueueBoundLocked(uint32_t ifindex, uint32_t q)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (const FakeBinding& b : bindings) {
      if (b.rx && b.ifindex == ifindex &&
          std::find(b.queues.begin(), b.queues.end(), q) != b.queues.end()) {
        return true;
      }
    }
    return false;
  }

  void Close(uint64_t endpoint) {
    MutexLock lock(mu);
    open.erase(endpoint);
    closed.push_back(endpoint);
    // netdev_nl_sock_priv_destroy: unbind everything this socket made.
    for (auto it = bindings.begin(); it != bindings.end();) {
      if (it->endpoint != endpoint) {
        ++it;
        continue;
      }
      for (auto p = pools.begin(); p != pools.end();) {
        if (p->dmabuf == it->id) {
          if (p->inflight == 0) {
            p = pools.erase(p);
            continue;
          }
          p->detach_time = boottime;
        }
        ++p;
      }
      it = bindings.erase(it);
    }
  }

  // Handles one request datagram; appends reply datagrams to `out`.
  void Handle(uint64_t endpoint, const Bytes& req, std::deque<Bytes>& out);

 private:
  void Reply(const Bytes& req, uint16_t type, const Bytes& payload,
             std::deque<Bytes>& out) {
    uint32_t seq;
    std::memcpy(&seq, req.data() + 8, 4);
    out.push_back(Msg(type, 0, seq, payload));
  }
  void Ack(const Bytes& req, const Err& e, std::deque<Bytes>& out) {
    uint32_t seq;
    std::memcpy(&seq, req.data() + 8, 4);
    Bytes payload;
    const int32_t code = -e.errnum;
    Raw(payload, &code, 4);
    Raw(payload, req.data(), 16);  // capped: the request header only
    const Bytes tlvs = ErrorTlvs(e);
    payload.insert(payload.end(), tlvs.begin(), tlvs.end());
    out.push_back(Msg(NLMSG_ERROR,
                      NLM_F_CAPPED | (tlvs.empty() ? 0 : NLM_F_ACK_TLVS), seq,
                      payload));
  }
  void DumpReply(const Bytes& req, uint16_t type, std::vector<Bytes> records,
                 const Err& done, std::deque<Bytes>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint32_t seq;
    std::memcpy(&seq, req.data() + 8, 4);
    Bytes batch;
    for (const Bytes& r : records) {
      Bytes m = Msg(type, NLM_F_MULTI, seq, r);
      if (one_per_datagram) {
        out.push_back(m);
      } else {
        batch.insert(batch.end(), m.begin(), m.end());
      }
    }
    if (!batch.empty()) out.push_back(batch);
    Bytes payload;
    const int32_t code = -done.errnum;
    Raw(payload, &code, 4);
    const Bytes tlvs = ErrorTlvs(done);
    payload.insert(payload.end(), tlvs.begin(), tlvs.end());
    out.push_back(Msg(NLMSG_DONE,
                      NLM_F_MULTI | (tlvs.empty() ? 0 : NLM_F_ACK_TLVS), seq,
                      payload));
  }

  void HandleCtrl(const Bytes& req, const std::vector<InAttr>& attrs,
                  uint8_t cmd, std::deque<Bytes>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void HandleNetdev(uint64_t endpoint, const Bytes& req,
                    const std::vector<InAttr>& attrs, uint8_t cmd, bool dump,
                    std::deque<Bytes>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // bind-rx / bind-tx. On success (errnum 0) the new binding is
  // bindings.back().
  Err BindRx(uint64_t endpoint, const std::vector<InAttr>& attrs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Err BindTx(uint64_t endpoint, const std::vector<InAttr>& attrs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

void FakeKernel::State::Handle(uint64_t endpoint, const Bytes& req,
                               std::deque<Bytes>& out) {
  MutexLock lock(mu);
  uint32_t len;
  uint16_t type, flags;
  if (req.size() < 20) return;  // the kernel drops runts silently
  std::memcpy(&len, req.data(), 4);
  std::memcpy(&type, req.data() + 4, 2);
  std::memcpy(&flags, req.data() + 6, 2);
  if (len != req.size()) {
    Ack(req, {EINVAL}, out);
    return;
  }
  const std::optional<std::vector<InAttr>> attrs =
      Decode(req.data() + 20, req.size() - 20, 20);
  if (!attrs.has_value()) {
    Ack(req, {EINVAL, "malformed attributes"}, out);
    return;
  }
  const uint8_t cmd = req[16];
  const bool dump = (flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (type == GENL_ID_CTRL) {
    HandleCtrl(req, *attrs, cmd, out);
  } else if (type == kNetdevFamilyId && netdev_present) {
    HandleNetdev(endpoint, req, *attrs, cmd, dump, out);
  } else {
    Ack(req, {ENOENT}, out);
  }
}

void FakeKernel::State::HandleCtrl(const Bytes& req,
                                   const std::vector<InAttr>& attrs,
                                   uint8_t cmd, std::deque<Bytes>& out) {
  std::string name;
  for (const InAttr& a : attrs) {
    if (a.type == CTRL_ATTR_FAMILY_NAME) {
      name.assign(reinterpret_cast<const char*>(a.data),
                  strnlen(reinterpret_cast<const char*>(a.data), a.len));
    }
  }
  if (cmd != CTRL_CMD_GETFAMILY || name != kNetdevFamilyName ||
      !netdev_present) {
    Ack(req, {ENOENT}, out);
    return;
  }
  Bytes p = Genl(CTRL_CMD_NEWFAMILY);
  Str(p, CTRL_ATTR_FAMILY_NAME, name);
  U16(p, CTRL_ATTR_FAMILY_ID, kNetdevFamilyId);
  U32(p, CTRL_ATTR_VERSION, 1);
  U32(p, CTRL_ATTR_HDRSIZE, 0);
  U32(p, CTRL_ATTR_MAXATTR, 0);
  const size_t ops = NestBegin(p, CTRL_ATTR_OPS);
  const std::pair<uint32_t, uint32_t> op_table[] = {
      {1, 0xe},  {5, 0xe},  {10, 0xe}, {11, 0xe},
      {12, 0xc}, {13, 0xb}, {14, 0xb}, {15, 0xa}};
  uint16_t i = 1;
  for (auto [id, fl] : op_table) {
    const size_t op = NestBegin(p, i++);
    U32(p, CTRL_ATTR_OP_ID, id);
    U32(p, CTRL_ATTR_OP_FLAGS, fl);
    NestEnd(p, op);
  }
  NestEnd(p, ops);
  const size_t groups = NestBegin(p, CTRL_ATTR_MCAST_GROUPS);
  const size_t g1 = NestBegin(p, 1);
  Str(p, CTRL_ATTR_MCAST_GRP_NAME, "mgmt");
  U32(p, CTRL_ATTR_MCAST_GRP_ID, 4);
  NestEnd(p, g1);
  NestEnd(p, groups);
  Reply(req, GENL_ID_CTRL, p, out);
  Ack(req, {0}, out);
}

void FakeKernel::State::HandleNetdev(uint64_t endpoint, const Bytes& req,
                                     const std::vector<InAttr>& attrs,
                                     uint8_t cmd, bool dump,
                                     std::deque<Bytes>& out) {
  std::optional<uint32_t> filter;
  std::optional<size_t> filter_offset;
  for (const InAttr& a : attrs) {
    // Queue-get and qstats-get filter on attribute 2 and 1 respectively.
    if ((cmd == kNetdevCmdQueueGet && a.type == kNetdevAQueueIfindex) ||
        (cmd == kNetdevCmdQstatsGet && a.type == kNetdevAQstatsIfindex)) {
      filter = GetU32(a);
      filter_offset = a.offset;
    }
  }
  if (dump) {
    std::vector<Bytes> records;
    Err done;
    switch (cmd) {
      case kNetdevCmdDevGet:
        for (const auto& [idx, d] : devices) {
          Bytes r = Genl(kNetdevCmdDevGet);
          U32(r, kNetdevADevIfindex, idx);
          U64(r, kNetdevADevXdpFeatures, 43);
          U64(r, kNetdevADevXdpRxMetadataFeatures, 0);
          U64(r, kNetdevADevXskFeatures, 0);
          records.push_back(r);
        }
        break;
      case kNetdevCmdQueueGet:
        if (filter && FindLocked(*filter) == nullptr) {
          done.errnum = ENODEV;
          break;
        }
        for (const auto& [idx, d] : devices) {
          if (!d.up || (filter && *filter != idx)) continue;
          for (uint32_t q = 0; q < d.rx_queues + d.tx_queues; ++q) {
            const bool rx = q < d.rx_queues;
            const uint32_t id = rx ? q : q - d.rx_queues;
            Bytes r = Genl(kNetdevCmdQueueGet);
            U32(r, kNetdevAQueueId, id);
            U32(r, kNetdevAQueueIfindex, idx);
            U32(r, kNetdevAQueueType, rx ? 0 : 1);
            U32(r, kNetdevAQueueNapiId, 8192 + q);
            if (rx) {
              for (const FakeBinding& b : bindings) {
                if (b.rx && b.ifindex == idx &&
                    std::find(b.queues.begin(), b.queues.end(), id) !=
                        b.queues.end()) {
                  U32(r, kNetdevAQueueDmabuf, b.id);
                }
              }
            }
            records.push_back(r);
          }
        }
        break;
      case kNetdevCmdPagePoolGet:
        for (const Pool& p : pools) {
          Bytes r = Genl(kNetdevCmdPagePoolGet);
          Uint(r, kNetdevAPagePoolId, p.id);
          U32(r, kNetdevAPagePoolIfindex, p.ifindex);
          Uint(r, kNetdevAPagePoolInflight, p.inflight);
          Uint(r, kNetdevAPagePoolInflightMem, p.inflight * 4096);
          if (p.detach_time)
            Uint(r, kNetdevAPagePoolDetachTime, *p.detach_time);
          U32(r, kNetdevAPagePoolDmabuf, p.dmabuf);
          records.push_back(r);
        }
        break;
      case kNetdevCmdQstatsGet: {
        if (filter) {
          const FakeDevice* d = FindLocked(*filter);
          if (d == nullptr) {
            done = {ENODEV, "", filter_offset};
            break;
          }
          if (!d->qstats) {
            done = {EOPNOTSUPP, "", filter_offset};
            break;
          }
        }
        for (const auto& [idx, d] : devices) {
          if (!d.qstats || (filter && *filter != idx)) continue;
          for (uint32_t q = 0; q < d.rx_queues; ++q) {
            Bytes r = Genl(kNetdevCmdQstatsGet);
            U32(r, kNetdevAQstatsIfindex, idx);
            U32(r, kNetdevAQstatsQueueType, 0);
            U32(r, kNetdevAQstatsQueueId, q);
            Uint(r, kNetdevAQstatsRxPackets, 1000 + q);
            // Large enough to need the 8-byte form of `uint`.
            Uint(r, kNetdevAQstatsRxBytes, 5'000'000'000ull + q);
            Uint(r, kNetdevAQstatsRxAllocFail, q);
            Uint(r, kNetdevAQstatsRxHwDrops, 7);
            records.push_back(r);
          }
          for (uint32_t q = 0; q < d.tx_queues; ++q) {
            Bytes r = Genl(kNetdevCmdQstatsGet);
            U32(r, kNetdevAQstatsIfindex, idx);
            U32(r, kNetdevAQstatsQueueType, 1);
            U32(r, kNetdevAQstatsQueueId, q);
            Uint(r, kNetdevAQstatsTxPackets, 2000 + q);
            Uint(r, kNetdevAQstatsTxBytes, 3000 + q);
            records.push_back(r);
          }
        }
        break;
      }
      default:
        Ack(req, {EOPNOTSUPP}, out);
        return;
    }
    if (done.errnum != 0) records.clear();
    DumpReply(req, kNetdevFamilyId, std::move(records), done, out);
    return;
  }
  Err err;
  if (cmd == kNetdevCmdBindRx) {
    ++bind_rx_requests;
    err = BindRx(endpoint, attrs);
  } else if (cmd == kNetdevCmdBindTx) {
    err = BindTx(endpoint, attrs);
  } else {
    err = {EOPNOTSUPP};
  }
  if (err.errnum != 0) {
    Ack(req, err, out);
    return;
  }
  Bytes p = Genl(cmd);
  U32(p, kNetdevADmabufId, bindings.back().id);
  Reply(req, kNetdevFamilyId, p, out);
  Ack(req, {0}, out);
}

Err FakeKernel::State::BindRx(uint64_t endpoint,
                              const std::vector<InAttr>& attrs) {
  if (!admin) return {EPERM};  // GENL_ADMIN_PERM, before any parsing
  const InAttr *ifindex = nullptr, *fd = nullptr;
  std::vector<const InAttr*> queues;
  for (const InAttr& a : attrs) {
    if (a.type > kNetdevADmabufFd) {
      return {EINVAL, "Unknown attribute type", a.offset};
    }
    switch (a.type) {
      case kNetdevADmabufIfindex:
        if (a.len != 4) return {EINVAL, "", a.offset};
        if (GetU32(a) < 1) return {ERANGE, "integer out of range", a.offset};
        ifindex = &a;
        break;
      case kNetdevADmabufFd:
        if (a.len != 4) return {EINVAL, "", a.offset};
        fd = &a;
        break;
      case kNetdevADmabufQueues:
        if (!a.nested) return {EINVAL, "NLA_F_NESTED is missing", a.offset};
        queues.push_back(&a);
        break;
      default:
        return {EINVAL, "Unsupported attribute", a.offset};
    }
  }
  if (ifindex == nullptr) return {EINVAL, "", {}, kNetdevADmabufIfindex};
  if (fd == nullptr) return {EINVAL, "", {}, kNetdevADmabufFd};
  if (queues.empty()) return {EINVAL, "", {}, kNetdevADmabufQueues};
  FakeDevice* dev = FindLocked(GetU32(*ifindex));
  if (dev == nullptr) return {ENODEV};
  if (!dev->queue_api) return {EOPNOTSUPP, "", ifindex->offset};
  std::vector<uint32_t> ids;
  for (const InAttr* q : queues) {
    const std::optional<std::vector<InAttr>> inner =
        Decode(q->data, q->len, q->offset + 4);
    if (!inner.has_value()) return {EINVAL};
    const InAttr *qid = nullptr, *qtype = nullptr;
    for (const InAttr& a : *inner) {
      if (a.type == kNetdevAQueueIdId)
        qid = &a;
      else if (a.type == kNetdevAQueueIdType)
        qtype = &a;
      else
        return {EINVAL, "Unsupported attribute", a.offset};
    }
    if (qid == nullptr) return {EINVAL, "", {}, kNetdevAQueueIdId};
    if (qtype == nullptr) return {EINVAL, "", {}, kNetdevAQueueIdType};
    if (GetU32(*qtype) > 1)
      return {ERANGE, "integer out of range", qtype->offset};
    if (GetU32(*qtype) != 0) return {EINVAL, "", qtype->offset};
    if (GetU32(*qid) >= dev->rx_queues) return {EINVAL, "", qid->offset};
    ids.push_back(GetU32(*qid));
  }
  if (dev->tcp_data_split != kTcpDataSplitEnabled) {
    return {EINVAL, "tcp-data-split is disabled"};
  }
  if (dev->hds_thresh.value_or(0) != 0) {
    return {EINVAL, "hds-thresh is not zero"};
  }
  // dma_buf_get() in the sender's context: this process.
  if (::fcntl(static_cast<int>(GetU32(*fd)), F_GETFD) < 0) return {EBADF};
  for (uint32_t q : ids) {
    if (QueueBoundLocked(dev->ifindex, q)) {
      return {EEXIST, "designated queue already memory provider bound"};
    }
  }
  const uint32_t id = next_binding++;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (uint32_t q : ids) {
    (void)q;
    pools.push_back({next_pool++, dev->ifindex, id, pool_inflight, {}});
  }
  bindings.push_back({id, endpoint, dev->ifindex, true, ids});
  return {};
}

Err FakeKernel::State::BindTx(uint64_t endpoint,
                              const std::vector<InAttr>& attrs) {
  const InAttr *ifindex = nullptr, *fd = nullptr;
  for (const InAttr& a : attrs) {
    if (a.type > kNetdevADmabufFd) {
      return {EINVAL, "Unknown attribute type", a.offset};
    }
    if (a.type == kNetdevADmabufIfindex) {
      ifindex = &a;
    } else if (a.type == kNetdevADmabufFd) {
      fd = &a;
    } else {
      return {EINVAL, "Unsupported attribute", a.offset};
    }
  }
  if (ifindex == nullptr) return {EINVAL, "", {}, kNetdevADmabufIfindex};
  if (fd == nullptr) return {EINVAL, "", {}, kNetdevADmabufFd};
  FakeDevice* dev = FindLocked(GetU32(*ifindex));
  if (dev == nullptr) return {ENODEV};
  if (!dev->netmem_tx) return {EOPNOTSUPP, "Driver does not support netmem TX"};
  if (::fcntl(static_cast<int>(GetU32(*fd)), F_GETFD) < 0) return {EBADF};
  const uint32_t id = next_binding++;
  bindings.push_back({id, endpoint, dev->ifindex, false, {}});
  return {};
}

namespace {

class FakeEndpoint final : public kernel::NetlinkEndpoint {
 public:
  FakeEndpoint(std::shared_ptr<FakeKernel::State> state, uint64_t id)
      : state_(std::move(state)), id_(id) {}
  ~FakeEndpoint() override { state_->Close(id_); }

  absl::Status Send(absl::Span<const uint8_t> datagram) override {
    state_->Handle(id_, Bytes(datagram.begin(), datagram.end()), queue_);
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Recv(absl::Span<uint8_t> buf) override {
    if (queue_.empty()) return ErrnoToStatus(EAGAIN, "fake netlink recv");
    Bytes d = std::move(queue_.front());
    queue_.pop_front();
    if (d.size() > buf.size()) return ErrnoToStatus(EMSGSIZE, "fake recv");
    std::memcpy(buf.data(), d.data(), d.size());
    return d.size();
  }

 private:
  const std::shared_ptr<FakeKernel::State> state_;
  const uint64_t id_;
  std::deque<Bytes> queue_;
};

class FakeTransport final : public kernel::NetlinkTransport {
 public:
  explicit FakeTransport(std::shared_ptr<FakeKernel::State> state)
      : state_(std::move(state)) {}
  absl::StatusOr<std::unique_ptr<kernel::NetlinkEndpoint>> Open(
      int protocol) override {
    if (protocol != NETLINK_GENERIC) {
      return ErrnoToStatus(EPROTONOSUPPORT, "fake netlink socket");
    }
    uint64_t id;
    {
      MutexLock lock(state_->mu);
      id = state_->next_endpoint++;
      state_->open.insert(id);
    }
    return std::make_unique<FakeEndpoint>(state_, id);
  }

 private:
  const std::shared_ptr<FakeKernel::State> state_;
};

std::vector<uint32_t> DefaultIndir(uint32_t rx) {
  std::vector<uint32_t> t(128);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>(i % rx);
  return t;
}

class FakeEthtool final : public kernel::EthtoolOps {
 public:
  explicit FakeEthtool(std::shared_ptr<FakeKernel::State> state)
      : state_(std::move(state)) {}

  absl::StatusOr<kernel::RingsConfig> GetRings(
      const std::string& dev) override {
    MutexLock lock(state_->mu);
    ASSIGN_OR_RETURN_DEV(d, dev, "rings-get");
    if (!d->rings_supported) return Unsupported(dev, "rings-get");
    kernel::RingsConfig r;
    r.tcp_data_split = d->tcp_data_split;
    r.hds_thresh = d->hds_thresh;
    if (d->hds_thresh) r.hds_thresh_max = 1024;
    return r;
  }

  absl::Status SetRings(const std::string& dev, std::optional<uint8_t> split,
                        std::optional<uint32_t> hds) override {
    MutexLock lock(state_->mu);
    ASSIGN_OR_RETURN_DEV(d, dev, "rings-set");
    if (!d->rings_supported) return Unsupported(dev, "rings-set");
    if (hds && !d->hds_thresh) {
      return ErrnoToStatus(EOPNOTSUPP, dev + ": hds-thresh unsupported");
    }
    if (split) d->tcp_data_split = *split;
    if (hds) d->hds_thresh = *hds;
    state_->ethtool_log.push_back(absl::StrCat(
        "rings-set ", dev,
        " split=", split ? absl::StrCat(static_cast<int>(*split)) : "-",
        " hds=", hds ? absl::StrCat(*hds) : "-"));
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> GetRxRingCount(const std::string& dev) override {
    MutexLock lock(state_->mu);
    ASSIGN_OR_RETURN_DEV(d, dev, "GRXRINGS");
    return d->rx_queues;
  }

  absl::StatusOr<std::vector<uint32_t>> GetRxfhIndir(
      const std::string& dev) override {
    MutexLock lock(state_->mu);
    ASSIGN_OR_RETURN_DEV(d, dev, "GRXFHINDIR");
    if (d->indir.empty()) d->indir = DefaultIndir(d->rx_queues);
    return d->indir;
  }

  absl::Status SetRxfhIndir(const std::string& dev,
                            absl::Span<const uint32_t> table) override {
    MutexLock lock(state_->mu);
    ASSIGN_OR_RETURN_DEV(d, dev, "SRXFHINDIR");
    for (uint32_t q : table) {
      if (q >= d->rx_queues) return ErrnoToStatus(EINVAL, dev + ": SRXFHINDIR");
    }
    d->indir.assign(table.begin(), table.end());
    std::set<uint32_t> used(table.begin(), table.end());
    state_->ethtool_log.push_back(
        absl::StrCat("rss ", dev, " queues=", absl::StrJoin(used, ",")));
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> InsertRule(const std::string& dev,
                                      const kernel::NtupleRule& rule) override {
    MutexLock lock(state_->mu);
    ASSIGN_OR_RETURN_DEV(d, dev, "SRXCLSRLINS");
    if (rule.queue >= d->rx_queues) {
      return ErrnoToStatus(EINVAL, dev + ": SRXCLSRLINS");
    }
    auto& rules = state_->rules[dev];
    uint32_t loc = 0;
    while (rules.contains(loc)) ++loc;
    rules[loc] = absl::StrCat(rule.ipv6 ? "tcp6" : "tcp4", " dst-port ",
                              rule.dst_port, " queue ", rule.queue);
    state_->ethtool_log.push_back(
        absl::StrCat("rule-add ", dev, " ", loc, " ", rules[loc]));
    return loc;
  }

  absl::Status DeleteRule(const std::string& dev, uint32_t location) override {
    MutexLock lock(state_->mu);
    auto& rules = state_->rules[dev];
    if (rules.erase(location) == 0) {
      return ErrnoToStatus(ENOENT, dev + ": SRXCLSRLDEL");
    }
    state_->ethtool_log.push_back(
        absl::StrCat("rule-del ", dev, " ", location));
    return absl::OkStatus();
  }

 private:
  static absl::Status Unsupported(const std::string& dev, const char* what) {
    return ErrnoToStatus(EOPNOTSUPP, absl::StrCat(dev, ": ethtool ", what));
  }

  const std::shared_ptr<FakeKernel::State> state_;
};

class FakeHost final : public kernel::HostOps {
 public:
  explicit FakeHost(std::shared_ptr<FakeKernel::State> state)
      : state_(std::move(state)) {}

  absl::StatusOr<uint32_t> NameToIndex(const std::string& name) override {
    MutexLock lock(state_->mu);
    FakeDevice* d = state_->FindLocked(name);
    if (d == nullptr) return ErrnoToStatus(ENODEV, "device '" + name + "'");
    return d->ifindex;
  }
  absl::StatusOr<std::string> IndexToName(uint32_t ifindex) override {
    MutexLock lock(state_->mu);
    FakeDevice* d = state_->FindLocked(ifindex);
    if (d == nullptr) return ErrnoToStatus(ENXIO, "ifindex");
    return d->name;
  }
  absl::StatusOr<bool> IsUp(const std::string& name) override {
    MutexLock lock(state_->mu);
    FakeDevice* d = state_->FindLocked(name);
    if (d == nullptr) return ErrnoToStatus(ENODEV, name);
    return d->up;
  }
  std::optional<int32_t> NumaNode(const std::string& name) override {
    MutexLock lock(state_->mu);
    FakeDevice* d = state_->FindLocked(name);
    if (d == nullptr || d->numa_node < 0) return std::nullopt;
    return d->numa_node;
  }
  absl::StatusOr<kernel::QueueCounts> SysfsQueueCounts(
      const std::string& name) override {
    MutexLock lock(state_->mu);
    FakeDevice* d = state_->FindLocked(name);
    if (d == nullptr) return ErrnoToStatus(ENOENT, name);
    return kernel::QueueCounts{d->rx_queues, d->tx_queues};
  }

 private:
  const std::shared_ptr<FakeKernel::State> state_;
};

}  // namespace

FakeKernel::FakeKernel() : state_(std::make_shared<State>()) {}
FakeKernel::~FakeKernel() = default;

void FakeKernel::AddDevice(FakeDevice device) {
  MutexLock lock(state_->mu);
  state_->devices[device.ifindex] = std::move(device);
}

std::shared_ptr<kernel::NetlinkTransport> FakeKernel::transport() {
  return std::make_shared<FakeTransport>(state_);
}
std::shared_ptr<kernel::EthtoolOps> FakeKernel::ethtool() {
  return std::make_shared<FakeEthtool>(state_);
}
std::shared_ptr<kernel::HostOps> FakeKernel::host() {
  return std::make_shared<FakeHost>(state_);
}

void FakeKernel::set_caller_is_admin(bool admin) {
  MutexLock lock(state_->mu);
  state_->admin = admin;
}
void FakeKernel::set_pool_inflight(uint64_t inflight) {
  MutexLock lock(state_->mu);
  state_->pool_inflight = inflight;
}
void FakeKernel::ReturnPages(uint32_t dmabuf) {
  MutexLock lock(state_->mu);
  // page_pool_release: a detached pool with nothing in flight is destroyed.
  auto& pools = state_->pools;
  for (auto p = pools.begin(); p != pools.end();) {
    if (p->dmabuf != dmabuf) {
      ++p;
      continue;
    }
    p->inflight = 0;
    if (p->detach_time.has_value()) {
      p = pools.erase(p);
    } else {
      ++p;
    }
  }
}
void FakeKernel::set_one_record_per_datagram(bool on) {
  MutexLock lock(state_->mu);
  state_->one_per_datagram = on;
}
void FakeKernel::set_netdev_family_present(bool present) {
  MutexLock lock(state_->mu);
  state_->netdev_present = present;
}

std::vector<FakeBinding> FakeKernel::bindings() const {
  MutexLock lock(state_->mu);
  return state_->bindings;
}
int FakeKernel::open_endpoints() const {
  MutexLock lock(state_->mu);
  return static_cast<int>(state_->open.size());
}
int FakeKernel::endpoints_opened() const {
  MutexLock lock(state_->mu);
  return static_cast<int>(state_->next_endpoint - 1);
}
std::vector<uint64_t> FakeKernel::closed_endpoints() const {
  MutexLock lock(state_->mu);
  return state_->closed;
}
std::vector<std::string> FakeKernel::ethtool_log() const {
  MutexLock lock(state_->mu);
  return state_->ethtool_log;
}
std::map<uint32_t, std::string> FakeKernel::rules(
    const std::string& dev) const {
  MutexLock lock(state_->mu);
  auto it = state_->rules.find(dev);
  return it == state_->rules.end() ? std::map<uint32_t, std::string>{}
                                   : it->second;
}
FakeDevice FakeKernel::device(const std::string& name) const {
  MutexLock lock(state_->mu);
  FakeDevice* d = state_->FindLocked(name);
  return d == nullptr ? FakeDevice{} : *d;
}
int FakeKernel::bind_rx_requests() const {
  MutexLock lock(state_->mu);
  return state_->bind_rx_requests;
}

}  // namespace devmem::testing
