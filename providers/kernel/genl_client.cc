#include "providers/kernel/genl_client.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace devmem::kernel {
namespace {

// Dump parts are at most ~32 KiB; 64 KiB leaves room for any one datagram.
constexpr size_t kRecvBufferSize = 64 * 1024;

std::string CtrlAttrName(absl::Span<const uint16_t> path) {
  if (path.size() == 1 && path[0] == CTRL_ATTR_FAMILY_NAME) {
    return "family-name";
  }
  return "";
}

}  // namespace

bool GenlFamily::HasOp(uint32_t cmd) const {
  for (const Op& op : ops) {
    if (op.id == cmd) return true;
  }
  return false;
}

absl::StatusOr<GenlFamily> ParseFamily(const GenlMsg& msg) {
  GenlFamily family;
  bool have_id = false;
  for (const NlAttr& a : msg.attrs) {
    switch (a.type) {
      case CTRL_ATTR_FAMILY_ID: {
        ASSIGN_OR_RETURN(family.id, AttrU16(a));
        have_id = true;
        break;
      }
      case CTRL_ATTR_FAMILY_NAME:
        family.name = AttrString(a);
        break;
      case CTRL_ATTR_VERSION: {
        ASSIGN_OR_RETURN(family.version, AttrU32(a));
        break;
      }
      case CTRL_ATTR_MAXATTR: {
        ASSIGN_OR_RETURN(family.max_attr, AttrU32(a));
        break;
      }
      case CTRL_ATTR_OPS: {
        ASSIGN_OR_RETURN(std::vector<NlAttr> ops, AttrNested(a));
        for (const NlAttr& op_nest : ops) {
          ASSIGN_OR_RETURN(std::vector<NlAttr> fields, AttrNested(op_nest));
          GenlFamily::Op op;
          if (const NlAttr* id = FindAttr(fields, CTRL_ATTR_OP_ID)) {
            ASSIGN_OR_RETURN(op.id, AttrU32(*id));
          }
          if (const NlAttr* flags = FindAttr(fields, CTRL_ATTR_OP_FLAGS)) {
            ASSIGN_OR_RETURN(op.flags, AttrU32(*flags));
          }
          family.ops.push_back(op);
        }
        break;
      }
      case CTRL_ATTR_MCAST_GROUPS: {
        ASSIGN_OR_RETURN(std::vector<NlAttr> groups, AttrNested(a));
        for (const NlAttr& group : groups) {
          ASSIGN_OR_RETURN(std::vector<NlAttr> fields, AttrNested(group));
          const NlAttr* name = FindAttr(fields, CTRL_ATTR_MCAST_GRP_NAME);
          const NlAttr* id = FindAttr(fields, CTRL_ATTR_MCAST_GRP_ID);
          if (name == nullptr || id == nullptr) continue;
          ASSIGN_OR_RETURN(uint32_t gid, AttrU32(*id));
          family.mcast_groups.emplace_back(AttrString(*name), gid);
        }
        break;
      }
      default:
        break;
    }
  }
  if (!have_id) {
    return absl::InvalidArgumentError(
        "CTRL_CMD_GETFAMILY reply without a family id");
  }
  return family;
}

absl::Status NlErrorToStatus(const NlError& err,
                             absl::Span<const uint8_t> request,
                             const RequestContext& ctx) {
  std::string text = err.message;
  if (text.empty() && ctx.explain != nullptr) text = ctx.explain(err.errnum);
  // ErrnoToStatus gives the code and the errno payload; the message is ours.
  const absl::Status base = ErrnoToStatus(err.errnum, ctx.what);
  std::string message = text.empty() ? std::string(base.message())
                                     : absl::StrCat(ctx.what, ": ", text, " (",
                                                    ErrnoName(err.errnum), ")");
  if (err.bad_attr_offset.has_value()) {
    std::optional<std::vector<uint16_t>> path =
        FindAttrPath(request, *err.bad_attr_offset);
    absl::StrAppend(&message, ", bad attribute: ",
                    path ? DescribeAttrPath(*path, ctx.namer)
                         : absl::StrCat("at offset ", *err.bad_attr_offset));
  }
  if (err.missing_type.has_value()) {
    std::vector<uint16_t> path;
    if (err.missing_nest_offset.has_value()) {
      path = FindAttrPath(request, *err.missing_nest_offset)
                 .value_or(std::vector<uint16_t>{});
    }
    path.push_back(static_cast<uint16_t>(*err.missing_type));
    absl::StrAppend(&message,
                    ", missing attribute: ", DescribeAttrPath(path, ctx.namer));
  }
  absl::Status out(base.code(), message);
  base.ForEachPayload([&out](absl::string_view url, const absl::Cord& p) {
    out.SetPayload(url, p);
  });
  return out;
}

absl::StatusOr<std::unique_ptr<GenlClient>> GenlClient::Open(
    NetlinkTransport& transport) {
  ASSIGN_OR_RETURN(std::unique_ptr<NetlinkEndpoint> endpoint,
                   transport.Open(NETLINK_GENERIC));
  return std::make_unique<GenlClient>(std::move(endpoint));
}

GenlClient::GenlClient(std::unique_ptr<NetlinkEndpoint> endpoint)
    : endpoint_(std::move(endpoint)), buf_(kRecvBufferSize) {}

absl::StatusOr<GenlFamily> GenlClient::ResolveFamily(absl::string_view name) {
  NlBuilder b(GENL_ID_CTRL, NLM_F_REQUEST);
  b.PutGenlHeader(CTRL_CMD_GETFAMILY, 1);
  b.PutString(CTRL_ATTR_FAMILY_NAME, name);
  RequestContext ctx;
  ctx.what = absl::StrCat("resolve generic netlink family ", name);
  ctx.namer = CtrlAttrName;
  std::optional<GenlFamily> family;
  RETURN_IF_ERROR(Do(std::move(b).Finish(), ctx,
                     [&family](const GenlMsg& msg) -> absl::Status {
                       ASSIGN_OR_RETURN(GenlFamily f, ParseFamily(msg));
                       family = std::move(f);
                       return absl::OkStatus();
                     }));
  if (!family.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx.what, ": the kernel acknowledged without a reply"));
  }
  return *std::move(family);
}

absl::Status GenlClient::Do(std::vector<uint8_t> request,
                            const RequestContext& ctx, MsgCallback on_reply) {
  return Exchange(std::move(request), /*dump=*/false, ctx, on_reply);
}

absl::Status GenlClient::Dump(std::vector<uint8_t> request,
                              const RequestContext& ctx, MsgCallback on_msg) {
  return Exchange(std::move(request), /*dump=*/true, ctx, on_msg);
}

absl::Status GenlClient::Exchange(std::vector<uint8_t> request, bool dump,
                                  const RequestContext& ctx,
                                  MsgCallback on_msg) {
  if (request.size() < kNlMsgHdrLen + kGenlHdrLen) {
    return absl::InternalError(absl::StrCat(ctx.what, ": request too short"));
  }
  uint16_t type;
  std::memcpy(&type, request.data() + 4, 2);
  const uint16_t flags =
      NLM_F_REQUEST | (dump ? static_cast<uint16_t>(NLM_F_DUMP) : NLM_F_ACK);
  std::memcpy(request.data() + 6, &flags, 2);
  const uint32_t seq = seq_++;
  SetSeq(request, seq);
  if (absl::Status s = endpoint_->Send(request); !s.ok()) {
    return WithContext(s, ctx.what);
  }
  while (true) {
    absl::StatusOr<size_t> n = endpoint_->Recv(absl::MakeSpan(buf_));
    if (!n.ok()) return WithContext(n.status(), ctx.what);
    absl::StatusOr<std::vector<NlMsg>> msgs =
        SplitMessages(absl::MakeConstSpan(buf_.data(), *n));
    if (!msgs.ok()) return WithContext(msgs.status(), ctx.what);
    for (const NlMsg& msg : *msgs) {
      // Replies to an earlier request that timed out or was abandoned.
      if (msg.seq != seq) continue;
      switch (msg.type) {
        case NLMSG_NOOP:
          continue;
        case NLMSG_OVERRUN:
          return ErrnoToStatus(ENOBUFS, absl::StrCat(ctx.what, ": overrun"));
        case NLMSG_ERROR: {
          absl::StatusOr<NlError> err = ParseNlError(msg);
          if (!err.ok()) return WithContext(err.status(), ctx.what);
          if (err->errnum != 0) return NlErrorToStatus(*err, request, ctx);
          return absl::OkStatus();  // the ACK
        }
        case NLMSG_DONE: {
          absl::StatusOr<NlError> err = ParseNlDone(msg);
          if (!err.ok()) return WithContext(err.status(), ctx.what);
          if (err->errnum != 0) return NlErrorToStatus(*err, request, ctx);
          if (dump) return absl::OkStatus();
          continue;
        }
        default:
          break;
      }
      if (msg.type != type) continue;
      absl::StatusOr<GenlMsg> genl = ParseGenl(msg);
      if (!genl.ok()) return WithContext(genl.status(), ctx.what);
      if (absl::Status s = on_msg(*genl); !s.ok()) {
        return WithContext(s, ctx.what);
      }
    }
  }
}

}  // namespace devmem::kernel
