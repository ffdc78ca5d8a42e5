// devmemd: the devmem-broker daemon. The only file that knows which providers
// exist.
//
//   devmemd [--config FILE] [--run-dir DIR] [--provider sim|kernel]
//           [--sim-devices SPEC] [--metrics-address HOST:PORT] ...
//
// Signals: SIGTERM/SIGINT release every binding, restore the NIC and exit 0;
// SIGHUP re-reads --config and applies the allowlist and quotas. Signals are
// blocked in every thread before any is started and taken here, with
// sigwaitinfo, in one place.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "providers/provider.h"
#include "server/config.h"
#include "server/daemon.h"
#include "server/k8s/device_plugin.h"
#include "server/privilege.h"
#ifdef DEVMEM_HAVE_SIM_PROVIDER
#include "providers/sim/sim_provider.h"
#endif
#ifdef DEVMEM_HAVE_KERNEL_PROVIDER
#include "providers/kernel/kernel_provider.h"
#endif

// A flag left empty (0) takes the value from --config, else the default that
// --help shows (ApplyDefaults in server/config.cc).
ABSL_FLAG(std::string, config, "", "DaemonConfig file (protobuf text format)");
ABSL_FLAG(std::string, run_dir, "", "directory for api.sock and fd.sock");
ABSL_FLAG(std::string, provider, "", "sim or kernel");
ABSL_FLAG(std::string, sim_devices, "", "the sim provider's devices");
ABSL_FLAG(std::string, metrics_address, "",
          "Prometheus /metrics address; port 0 picks one, \"none\" disables");
ABSL_FLAG(std::string, socket_mode, "", "octal mode of both sockets");
ABSL_FLAG(std::string, socket_group, "", "group name or id of both sockets");
ABSL_FLAG(std::vector<std::string>, allow_uids, {},
          "comma-separated uids allowed to open sessions, besides root");
ABSL_FLAG(std::vector<std::string>, allow_gids, {},
          "comma-separated gids allowed to open sessions");
ABSL_FLAG(bool, allow_all, false, "allow every uid (development only)");
ABSL_FLAG(uint32_t, chunk_size, 0, "default RX chunk size in bytes");
ABSL_FLAG(uint64_t, ticket_ttl_ms, 0, "ticket lifetime in milliseconds");
ABSL_FLAG(std::string, listen, "",
          "read-only TCP listener host:port for remote monitoring");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate for --listen");
ABSL_FLAG(std::string, tls_key, "", "PEM key for --listen");
ABSL_FLAG(std::string, log_level, "", "debug, info, warning or error");
ABSL_FLAG(std::string, kubelet_dir, "",
          "serve the Kubernetes device plugin in this directory and register "
          "with its kubelet.sock");
ABSL_FLAG(std::string, resource_name, devmem::server::k8s::kDefaultResourceName,
          "extended resource name the device plugin advertises");

namespace {

using devmem::v1::DaemonConfig;

absl::Status ApplyFlags(DaemonConfig* c) {
  auto set = [](const std::string& v, auto setter) {
    if (!v.empty()) setter(v);
  };
  set(absl::GetFlag(FLAGS_run_dir), [&](auto v) { c->set_run_dir(v); });
  set(absl::GetFlag(FLAGS_provider), [&](auto v) { c->set_provider(v); });
  set(absl::GetFlag(FLAGS_sim_devices), [&](auto v) { c->set_sim_devices(v); });
  set(absl::GetFlag(FLAGS_metrics_address),
      [&](auto v) { c->set_metrics_address(v); });
  set(absl::GetFlag(FLAGS_socket_group),
      [&](auto v) { c->set_socket_group(v); });
  set(absl::GetFlag(FLAGS_listen), [&](auto v) { c->set_listen_address(v); });
  set(absl::GetFlag(FLAGS_tls_cert), [&](auto v) { c->set_tls_cert_file(v); });
  set(absl::GetFlag(FLAGS_tls_key), [&](auto v) { c->set_tls_key_file(v); });
  if (const std::string m = absl::GetFlag(FLAGS_socket_mode); !m.empty()) {
    char* end = nullptr;
    const unsigned long mode = std::strtoul(m.c_str(), &end, 8);
    if (end == m.c_str() || *end != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("--socket_mode ", m, ": not an octal number"));
    }
    c->set_socket_mode(static_cast<uint32_t>(mode));
  }
  for (const std::string& u : absl::GetFlag(FLAGS_allow_uids)) {
    uint32_t v;
    if (!absl::SimpleAtoi(u, &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow_uids: ", u, " is not a uid"));
    }
    c->mutable_allow()->add_uids(v);
  }
  for (const std::string& g : absl::GetFlag(FLAGS_allow_gids)) {
    uint32_t v;
    if (!absl::SimpleAtoi(g, &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow_gids: ", g, " is not a gid"));
    }
    c->mutable_allow()->add_gids(v);
  }
  if (absl::GetFlag(FLAGS_allow_all)) c->mutable_allow()->set_allow_all(true);
  if (absl::GetFlag(FLAGS_chunk_size) != 0) {
    c->set_chunk_size(absl::GetFlag(FLAGS_chunk_size));
  }
  if (absl::GetFlag(FLAGS_ticket_ttl_ms) != 0) {
    c->set_ticket_ttl_ms(absl::GetFlag(FLAGS_ticket_ttl_ms));
  }
  return absl::OkStatus();
}

absl::StatusOr<DaemonConfig> BuildConfig() {
  DaemonConfig c;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    auto loaded = devmem::server::LoadConfigFile(path);
    if (!loaded.ok()) return loaded.status();
    c = *std::move(loaded);
  }
  if (absl::Status s = ApplyFlags(&c); !s.ok()) return s;
  devmem::server::ApplyDefaults(&c);
  if (absl::Status s = devmem::server::ValidateConfig(c); !s.ok()) return s;
  return c;
}

absl::StatusOr<std::unique_ptr<devmem::Provider>> MakeProvider(
    const DaemonConfig& c) {
  if (c.provider() == "sim") {
#ifdef DEVMEM_HAVE_SIM_PROVIDER
    devmem::SimOptions o;
    o.spec = c.sim_devices();
    return devmem::CreateSimProvider(o);
#else
    return absl::UnimplementedError("this devmemd was built without sim");
#endif
  }
#ifdef DEVMEM_HAVE_KERNEL_PROVIDER
  return devmem::CreateKernelProvider({});
#else
  return absl::UnimplementedError("this devmemd was built without kernel");
#endif
}

int Fail(std::string_view what, const absl::Status& s) {
  DEVMEM_LOG(kError, "devmemd_failed")
      .Kv("step", std::string(what))
      .Kv("error", s.ToString());
  std::fprintf(stderr, "devmemd: %s: %s\n", std::string(what).c_str(),
               s.ToString().c_str());
  return 1;
}

// One row of --help: the flag as a user types it, and its effective default.
struct FlagRow {
  const absl::CommandLineFlag& flag;
  const char* arg;
  const char* default_text;
};

// --help: every devmemd flag with its default, exit 0. Abseil's own --help
// lists flags by source file (and --helpfull prints the build's paths).
int PrintUsage() {
  const FlagRow rows[] = {
      {absl::GetFlagReflectionHandle(FLAGS_config), "FILE", "none"},
      {absl::GetFlagReflectionHandle(FLAGS_run_dir), "DIR", "/run/devmemd"},
      {absl::GetFlagReflectionHandle(FLAGS_provider), "NAME", "sim"},
      {absl::GetFlagReflectionHandle(FLAGS_sim_devices), "SPEC",
       "sim0:rx=16,tx=16"},
      {absl::GetFlagReflectionHandle(FLAGS_metrics_address), "HOST:PORT",
       "127.0.0.1:9464"},
      {absl::GetFlagReflectionHandle(FLAGS_socket_mode), "MODE", "0660"},
      {absl::GetFlagReflectionHandle(FLAGS_socket_group), "GROUP",
       "the daemon's group"},
      {absl::GetFlagReflectionHandle(FLAGS_allow_uids), "UID,...", "none"},
      {absl::GetFlagReflectionHandle(FLAGS_allow_gids), "GID,...", "none"},
      {absl::GetFlagReflectionHandle(FLAGS_allow_all), "", "false"},
      {absl::GetFlagReflectionHandle(FLAGS_chunk_size), "BYTES", "4096"},
      {absl::GetFlagReflectionHandle(FLAGS_ticket_ttl_ms), "MS", "30000"},
      {absl::GetFlagReflectionHandle(FLAGS_listen), "HOST:PORT", "off"},
      {absl::GetFlagReflectionHandle(FLAGS_tls_cert), "FILE", "none"},
      {absl::GetFlagReflectionHandle(FLAGS_tls_key), "FILE", "none"},
      {absl::GetFlagReflectionHandle(FLAGS_log_level), "LEVEL", "info"},
      {absl::GetFlagReflectionHandle(FLAGS_kubelet_dir), "DIR", "off"},
      {absl::GetFlagReflectionHandle(FLAGS_resource_name), "NAME",
       devmem::server::k8s::kDefaultResourceName},
  };
  std::string out = absl::StrCat(
      "usage: devmemd [FLAGS]\n\n", absl::ProgramUsageMessage(),
      "\n\nflags (a flag overrides the --config file; '-' and '_' are the "
      "same in names):\n");
  for (const FlagRow& r : rows) {
    std::string name(r.flag.Name());
    std::replace(name.begin(), name.end(), '_', '-');
    std::string left = absl::StrCat("  --", name);
    if (*r.arg != '\0') absl::StrAppend(&left, "=", r.arg);
    if (left.size() < 30) left.resize(30, ' ');
    absl::StrAppend(&out, left, " ", r.flag.Help(),
                    " (default: ", r.default_text, ")\n");
  }
  absl::StrAppend(&out,
                  "  --help                       this help\n\n"
                  "signals: SIGTERM/SIGINT release every binding and exit 0; "
                  "SIGHUP re-reads --config\n");
  std::fputs(out.c_str(), stdout);
  return 0;
}

// Abseil's --helpfull names each flag's source file: show it relative to the
// project, never the build machine's absolute path.
std::string NormalizeFlagFile(absl::string_view path) {
  for (absl::string_view root : {"/server/", "/absl/"}) {
    if (size_t at = path.rfind(root); at != path.npos) {
      return std::string(path.substr(at + 1));
    }
  }
  const size_t slash = path.rfind('/');
  return std::string(slash == path.npos ? path : path.substr(slash + 1));
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists (gRPC, civetweb, providers): every thread
  // inherits this mask, so these signals reach only sigwaitinfo below.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::SetProgramUsageMessage(
      "devmemd binds jobs' dmabufs to NIC queues for devmem TCP.");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage.normalize_filename = NormalizeFlagFile;
  absl::SetFlagsUsageConfig(usage);
  // Accept --run-dir as well as --run_dir (Abseil flag names use '_').
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> fixed;
  for (std::string& a : args) {
    if (a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      for (size_t i = 2; i < end; ++i) {
        if (a[i] == '-') a[i] = '_';
      }
    }
    if (a == "--help" || a == "-h" || a == "-help") return PrintUsage();
    fixed.push_back(a.data());
  }
  absl::ParseCommandLine(static_cast<int>(fixed.size()), fixed.data());
  if (const std::string l = absl::GetFlag(FLAGS_log_level); !l.empty()) {
    devmem::SetMinLogLevel(l == "debug"     ? devmem::LogLevel::kDebug
                           : l == "warning" ? devmem::LogLevel::kWarning
                           : l == "error"   ? devmem::LogLevel::kError
                                            : devmem::LogLevel::kInfo);
  }

  auto config = BuildConfig();
  if (!config.ok()) return Fail("config", config.status());
  // Least privilege before any thread starts (server/privilege.h).
  if (absl::Status s = devmem::server::DropPrivileges(
          devmem::server::CapabilitiesForProvider(config->provider()));
      !s.ok()) {
    return Fail("drop_privileges", s);
  }
  auto provider = MakeProvider(*config);
  if (!provider.ok()) return Fail("provider", provider.status());

  devmem::Provider* const raw_provider = provider->get();
  devmem::server::Daemon daemon(*std::move(provider), *config);
  if (absl::Status s = daemon.Start(); !s.ok()) return Fail("start", s);
  std::unique_ptr<devmem::server::k8s::DevicePlugin> plugin;
  if (const std::string dir = absl::GetFlag(FLAGS_kubelet_dir); !dir.empty()) {
    devmem::server::k8s::DevicePluginOptions o;
    o.kubelet_dir = dir;
    o.resource_name = absl::GetFlag(FLAGS_resource_name);
    o.run_dir = config->run_dir();
    devmem::server::Metrics* metrics = &daemon.metrics();
    metrics->DevicePluginRegistered(false);
    o.on_registration = [metrics](bool ok) {
      metrics->DevicePluginRegistered(ok);
    };
    plugin = std::make_unique<devmem::server::k8s::DevicePlugin>(
        o, [raw_provider] { return raw_provider->ListDevices(); });
    if (absl::Status s = plugin->Start(); !s.ok()) {
      daemon.Stop();
      return Fail("device plugin", s);
    }
  }
  if (daemon.metrics_port() != 0) {
    DEVMEM_LOG(kInfo, "metrics_listening").Kv("port", daemon.metrics_port());
  }

  for (;;) {
    siginfo_t info;
    const int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;  // EINTR
    if (sig == SIGHUP) {
      auto reloaded = BuildConfig();
      if (!reloaded.ok()) {
        DEVMEM_LOG(kError, "reload_failed")
            .Kv("error", reloaded.status().ToString());
        continue;
      }
      daemon.Reload(*reloaded);
      continue;
    }
    DEVMEM_LOG(kInfo, "devmemd_stopping")
        .Kv("signal", std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT"))
        .Kv("from_pid", info.si_pid);
    break;
  }
  if (plugin != nullptr) plugin->Stop();
  daemon.Stop();
  return 0;
}
