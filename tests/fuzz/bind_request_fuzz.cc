// Fuzz target: a Bind request as it arrives over gRPC, through the checks
// the broker runs before any device or ticket is touched: bytes ->
// v1::BindRequest (binary protobuf; text format when the bytes are not
// binary protobuf, so seeds can be written by hand) -> server::FromProto ->
// server::ValidateBindParams. Checks:
//   - a rejection is InvalidArgument with a message;
//   - what ValidateBindParams accepts has the documented shape (docs/API.md,
//     server/bind_params.h), re-checked here independently: device 1-64
//     bytes, a ticket, TX without queues or flows, RX with exactly one of
//     num_queues / queue_ids, at most 1024 queues without duplicates, at most
//     64 flows each with dst_port != 0 and addresses inet_pton parses in
//     full (no embedded NUL, at most 45 bytes), chunk size 0 or a power of
//     two in [4096, 2 MiB];
//   - FromProto carried the request's values over unchanged.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "devmem/v1/devmem.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"
#include "pool/region.h"
#include "server/bind_params.h"
#include "server/convert.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckRejected(const absl::Status& s) {
  Check(s.code() == absl::StatusCode::kInvalidArgument);
  Check(!s.message().empty());
}

// Empty (any), or the whole text is one address of the family.
bool AddressOk(const std::string& text, bool ipv6) {
  if (text.empty()) return true;
  if (text.size() > 45 || text.find('\0') != std::string::npos) return false;
  unsigned char out[16];
  return ::inet_pton(ipv6 ? AF_INET6 : AF_INET, text.c_str(), out) == 1;
}

void CheckAccepted(const devmem::v1::BindRequest& req,
                   const devmem::server::BindParams& p) {
  Check(!p.device.empty() && p.device.size() <= 64);
  Check(!p.ticket.empty());
  Check(p.device == req.device() && p.ticket == req.ticket());
  if (!p.rx) {
    Check(req.has_tx());
    Check(p.num_queues == 0 && p.queue_ids.empty() && p.flows.empty());
    return;
  }
  Check(req.has_rx());
  Check((p.num_queues == 0) != p.queue_ids.empty());
  Check(p.num_queues <= 1024 && p.queue_ids.size() <= 1024);
  Check(p.num_queues == req.rx().num_queues());
  Check(p.queue_ids.size() == static_cast<size_t>(req.rx().queue_ids_size()));
  const std::set<uint32_t> unique(p.queue_ids.begin(), p.queue_ids.end());
  Check(unique.size() == p.queue_ids.size());
  Check(p.flows.size() <= 64);
  Check(p.flows.size() == static_cast<size_t>(req.rx().flows_size()));
  for (size_t i = 0; i < p.flows.size(); ++i) {
    const devmem::Flow& f = p.flows[i];
    const devmem::v1::Flow& pf = req.rx().flows(static_cast<int>(i));
    Check(f.dst_port != 0);
    Check(f.dst_port == pf.dst_port() && f.src_port == pf.src_port());
    Check(f.ipv6 == pf.ipv6() && f.src_ip == pf.src_ip() &&
          f.dst_ip == pf.dst_ip());
    Check(AddressOk(f.src_ip, f.ipv6) && AddressOk(f.dst_ip, f.ipv6));
  }
  Check(p.chunk_size == req.rx().chunk_size());
  Check(p.chunk_size == 0 || (p.chunk_size >= devmem::Region::kMinChunkSize &&
                              p.chunk_size <= devmem::Region::kMaxChunkSize &&
                              (p.chunk_size & (p.chunk_size - 1)) == 0));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The text parser logs every error it meets; only the result matters here.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;

  devmem::v1::BindRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) {
    req.Clear();
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (!google::protobuf::TextFormat::ParseFromString(text, &req)) return 0;
  }
  auto params = devmem::server::FromProto(req);
  if (!params.ok()) {
    CheckRejected(params.status());
    return 0;
  }
  const absl::Status valid = devmem::server::ValidateBindParams(*params);
  if (!valid.ok()) {
    CheckRejected(valid);
    return 0;
  }
  CheckAccepted(req, *params);
  return 0;
}
