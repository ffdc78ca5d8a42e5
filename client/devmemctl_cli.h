// devmemctl's command line, commands and output, as a library so tests can
// drive it without a terminal. The executable (devmemctl.cc) is one call to
// ctl::Main.
//
//   devmemctl [--run-dir DIR] [--json] COMMAND [ARGS]
//     devices                      devices, queues, capability
//     bindings [--all]             this uid's bindings (--all: also released)
//     bind --device D (--queues N | --queue-ids a,b) --size BYTES
//          [--chunk-size B] [--udmabuf]
//                                  bind a fresh buffer and hold it until
//                                  Ctrl-C / SIGTERM, then unbind
//     unbind ID                    unbind a binding of this session
//     stats                        daemon, device and binding statistics
//     watch [--no-snapshot]        binding events until Ctrl-C
//
// Exit codes: 0 ok, 1 error (the daemon's message on stderr), 2 usage.
//
// Thread safety: Parse and the formatters are thread-safe; Main installs a
// signal mask for `bind` and `watch`.
#ifndef DEVMEM_CLIENT_DEVMEMCTL_CLI_H_
#define DEVMEM_CLIENT_DEVMEMCTL_CLI_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "devmem/v1/devmem.pb.h"

namespace devmem::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  std::string
      name;  // "devices", "bindings", "bind", "unbind", "stats", "watch"
  std::string run_dir;
  bool json = false;
  // bindings
  bool all = false;
  // bind
  std::string device;
  uint32_t num_queues = 0;
  std::vector<uint32_t> queue_ids;
  uint64_t size = 0;
  uint32_t chunk_size = 0;
  bool udmabuf = false;
  std::vector<v1::Flow> flows;  // --flow, repeatable
  // unbind
  uint32_t binding_id = 0;
  // watch
  bool snapshot = true;
};

struct ParseResult {
  enum class Kind { kRun, kHelp, kUsageError };
  Kind kind = Kind::kRun;
  Command command;
  // kHelp: the text to print on stdout; kUsageError: the problem and usage,
  // for stderr.
  std::string text;
};

// Parses argv[1..]. Global flags may come before the command (and, for
// convenience, after it). `--help`/`-h` anywhere asks for the help of the
// command it follows (or the overview).
ParseResult Parse(const std::vector<std::string>& args);

// The help of `command` ("" for the overview).
std::string Help(std::string_view command);

// The line devmemctl prints for a failed call: "devmemctl: " and
// StatusText(s) (base/errno_status.h): the daemon's message, then the status
// code's name unless the message already ends with an errno name
// ("... (EINVAL)"), so nothing is said twice.
std::string ErrorLine(const absl::Status& s);

// Output, human (aligned tables) or JSON.
std::string FormatDevices(const v1::ListDevicesResponse& r, bool json);
std::string FormatBindings(const v1::ListBindingsResponse& r, bool json);
std::string FormatBinding(const v1::Binding& b, bool json);
std::string FormatStats(const v1::GetStatsResponse& r, bool json);
std::string FormatEvent(const v1::BindingEvent& e, bool json);

// Runs devmemctl; returns the exit code.
int Main(const std::vector<std::string>& args, std::ostream& out,
         std::ostream& err);

}  // namespace devmem::ctl

#endif  // DEVMEM_CLIENT_DEVMEMCTL_CLI_H_
