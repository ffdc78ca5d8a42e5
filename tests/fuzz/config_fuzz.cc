// Fuzz target: devmemd's config file (text-format DaemonConfig, --config)
// through the path main.cc runs: ParseConfigText, ApplyDefaults,
// ValidateConfig, then the policies the Broker takes. Checks the documented
// rules (server/config.h, proto/devmem/v1/config.proto):
//   - text that does not parse is InvalidArgument "line L column C: ...";
//   - a config ValidateConfig accepts has every field within its bounds, and
//     AllowFromConfig / QuotaFromConfig carry exactly its values;
//   - ApplyDefaults is idempotent, and an accepted config printed as text
//     parses back to the same config, which is accepted again.
// The flags (server/main.cc's ApplyFlags) are read from absl flags inside
// main() and are not reachable from here; --sim-devices is fuzzed by
// sim_spec_fuzz.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"
#include "pool/region.h"
#include "server/config.h"

namespace {

using devmem::v1::DaemonConfig;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// The bounds ValidateConfig documents, written out again independently.
void CheckAccepted(const DaemonConfig& c) {
  Check(c.provider() == "sim" || c.provider() == "kernel");
  Check(!c.sim_devices().empty());
  Check(!c.run_dir().empty() && c.run_dir()[0] == '/' &&
        c.run_dir().size() <= 96);
  Check(c.socket_mode() <= 0777 && (c.socket_mode() & 0600) == 0600);
  Check(c.chunk_size() >= devmem::Region::kMinChunkSize &&
        c.chunk_size() <= devmem::Region::kMaxChunkSize &&
        (c.chunk_size() & (c.chunk_size() - 1)) == 0);
  Check(c.ticket_ttl_ms() >= 100 && c.ticket_ttl_ms() <= 3'600'000);
  Check(c.released_history() >= 1 && c.released_history() <= 100000);
  Check(c.metrics_address() == "none" ||
        absl::StrContains(c.metrics_address(), ':'));
  Check(c.tls_cert_file().empty() == c.tls_key_file().empty());
  Check(c.tls_cert_file().empty() || !c.listen_address().empty());

  const devmem::server::QuotaPolicy q = devmem::server::QuotaFromConfig(c);
  Check(q.max_bindings >= 1 && q.max_bindings <= 4096);
  Check(q.max_queues >= 1 && q.max_queues <= 4096);
  Check(q.max_bound_bytes >= 1 && q.max_sessions >= 1);
  Check(q.max_bindings == c.quota().max_bindings() &&
        q.max_bound_bytes == c.quota().max_bound_bytes() &&
        q.max_queues == c.quota().max_queues() &&
        q.max_sessions == c.quota().max_sessions());

  const devmem::server::AllowPolicy a = devmem::server::AllowFromConfig(c);
  Check(a.allow_all == c.allow().allow_all());
  Check(a.uids.size() == static_cast<size_t>(c.allow().uids_size()) &&
        a.gids.size() == static_cast<size_t>(c.allow().gids_size()));
  for (int i = 0; i < c.allow().uids_size(); ++i) {
    Check(a.uids[i] == c.allow().uids(i));
  }
  for (int i = 0; i < c.allow().gids_size(); ++i) {
    Check(a.gids[i] == c.allow().gids(i));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Invalid UTF-8 in a string field is logged by protobuf on every input;
  // the log is noise here (the parse result is what is checked).
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;

  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = devmem::server::ParseConfigText(text);
  if (!parsed.ok()) {
    Check(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(parsed.status().message(), "line "));
    return 0;
  }
  DaemonConfig c = *std::move(parsed);
  devmem::server::ApplyDefaults(&c);
  DaemonConfig again = c;
  devmem::server::ApplyDefaults(&again);
  Check(again.SerializeAsString() == c.SerializeAsString());

  absl::Status valid = devmem::server::ValidateConfig(c);
  if (!valid.ok()) {
    Check(valid.code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(valid.message(), "config "));
    return 0;
  }
  CheckAccepted(c);

  std::string printed;
  Check(google::protobuf::TextFormat::PrintToString(c, &printed));
  auto reparsed = devmem::server::ParseConfigText(printed);
  Check(reparsed.ok());
  Check(reparsed->SerializeAsString() == c.SerializeAsString());
  Check(devmem::server::ValidateConfig(*reparsed).ok());
  return 0;
}
