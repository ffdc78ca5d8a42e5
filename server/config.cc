#include "server/config.h"

#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "pool/region.h"

namespace devmem::server {

namespace {

class Collector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) {
      first_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ",
                            message);
    }
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

}  // namespace

absl::StatusOr<v1::DaemonConfig> ParseConfigText(std::string_view text) {
  v1::DaemonConfig config;
  google::protobuf::TextFormat::Parser parser;
  Collector errors;
  parser.RecordErrorsTo(&errors);
  // ArrayInputStream takes an int size.
  if (text.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("line 1 column 1: config too large");
  }
  google::protobuf::io::ArrayInputStream in(text.data(),
                                            static_cast<int>(text.size()));
  if (!parser.Parse(&in, &config)) {
    return absl::InvalidArgumentError(errors.first().empty()
                                          ? "does not parse (no line reported)"
                                          : errors.first());
  }
  return config;
}

absl::StatusOr<v1::DaemonConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("config file ", path, " cannot be read"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto config = ParseConfigText(ss.str());
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": ", config.status().message()));
  }
  return config;
}

void ApplyDefaults(v1::DaemonConfig* c) {
  if (c->provider().empty()) c->set_provider("sim");
  if (c->sim_devices().empty()) c->set_sim_devices("sim0:rx=16,tx=16");
  if (c->run_dir().empty()) c->set_run_dir("/run/devmemd");
  if (c->socket_mode() == 0) c->set_socket_mode(0660);
  if (c->metrics_address().empty()) c->set_metrics_address("127.0.0.1:9464");
  if (c->chunk_size() == 0) c->set_chunk_size(4096);
  if (c->ticket_ttl_ms() == 0) c->set_ticket_ttl_ms(30000);
  if (c->released_history() == 0) c->set_released_history(256);
  v1::Quota* q = c->mutable_quota();
  if (q->max_bindings() == 0) q->set_max_bindings(16);
  if (q->max_bound_bytes() == 0) q->set_max_bound_bytes(uint64_t{1} << 40);
  if (q->max_queues() == 0) q->set_max_queues(64);
  if (q->max_sessions() == 0) q->set_max_sessions(4096);
}

absl::Status ValidateConfig(const v1::DaemonConfig& c) {
  auto bad = [](absl::string_view field, const auto& value,
                absl::string_view rule) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", field, " = ", value, ": ", rule));
  };
  if (c.provider() != "sim" && c.provider() != "kernel") {
    return bad("provider", c.provider(), "must be \"sim\" or \"kernel\"");
  }
  if (c.run_dir().empty() || c.run_dir()[0] != '/') {
    return bad("run_dir", c.run_dir(), "must be an absolute path");
  }
  // sun_path is 108 bytes; the longest name we put there is "/api.sock".
  if (c.run_dir().size() > 96) {
    return bad("run_dir", c.run_dir(),
               "is too long for a Unix socket path (at most 96 bytes)");
  }
  if (c.socket_mode() > 0777 || (c.socket_mode() & 0600) != 0600) {
    return bad("socket_mode", absl::StrCat(c.socket_mode()),
               "must be an octal mode <= 0777 that gives the owner rw");
  }
  if (!Region::ValidChunkSize(c.chunk_size())) {
    return bad("chunk_size", c.chunk_size(),
               "must be a power of two in [4096, 2097152]");
  }
  if (c.ticket_ttl_ms() < 100 || c.ticket_ttl_ms() > 3'600'000) {
    return bad("ticket_ttl_ms", c.ticket_ttl_ms(), "must be in [100, 3600000]");
  }
  if (c.released_history() > 100000) {
    return bad("released_history", c.released_history(),
               "must be at most 100000");
  }
  if (c.metrics_address() != "none" &&
      c.metrics_address().find(':') == std::string::npos) {
    return bad("metrics_address", c.metrics_address(),
               "must be host:port (port 0 picks one) or \"none\"");
  }
  if (c.tls_cert_file().empty() != c.tls_key_file().empty()) {
    return bad("tls_cert_file/tls_key_file", "(one set)",
               "give both or neither");
  }
  if (!c.tls_cert_file().empty() && c.listen_address().empty()) {
    return bad("listen_address", "(empty)", "TLS files need a listen address");
  }
  if (c.quota().max_bindings() > 4096) {
    return bad("quota.max_bindings", c.quota().max_bindings(),
               "must be at most 4096");
  }
  if (c.quota().max_queues() > 4096) {
    return bad("quota.max_queues", c.quota().max_queues(),
               "must be at most 4096");
  }
  return absl::OkStatus();
}

AllowPolicy AllowFromConfig(const v1::DaemonConfig& c) {
  AllowPolicy a;
  a.uids.assign(c.allow().uids().begin(), c.allow().uids().end());
  a.gids.assign(c.allow().gids().begin(), c.allow().gids().end());
  a.allow_all = c.allow().allow_all();
  return a;
}

QuotaPolicy QuotaFromConfig(const v1::DaemonConfig& c) {
  QuotaPolicy q;
  q.max_bindings = c.quota().max_bindings();
  q.max_bound_bytes = c.quota().max_bound_bytes();
  q.max_queues = c.quota().max_queues();
  q.max_sessions = c.quota().max_sessions();
  return q;
}

}  // namespace devmem::server
