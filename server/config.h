// devmemd configuration: the DaemonConfig proto (proto/devmem/v1/config.proto)
// read from a text-format file, defaults, validation, and the policies the
// Broker takes from it.
//
// Thread safety: pure functions; thread-safe.
#ifndef DEVMEM_SERVER_CONFIG_H_
#define DEVMEM_SERVER_CONFIG_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devmem/v1/config.pb.h"
#include "server/broker.h"

namespace devmem::server {

// Parses a text-format DaemonConfig. InvalidArgument "line L column C: ..."
// (the first error, 1-based) for text that does not parse, including an
// unknown field.
absl::StatusOr<v1::DaemonConfig> ParseConfigText(std::string_view text);

// ParseConfigText on the file's contents. NotFound for an unreadable file;
// InvalidArgument "config file PATH: line L ..." for a parse error.
absl::StatusOr<v1::DaemonConfig> LoadConfigFile(const std::string& path);

// Fills every unset field with its documented default.
void ApplyDefaults(v1::DaemonConfig* config);

// InvalidArgument naming the field and the rule for any bad value.
// REQUIRES: ApplyDefaults ran.
absl::Status ValidateConfig(const v1::DaemonConfig& config);

AllowPolicy AllowFromConfig(const v1::DaemonConfig& config);
QuotaPolicy QuotaFromConfig(const v1::DaemonConfig& config);

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_CONFIG_H_
