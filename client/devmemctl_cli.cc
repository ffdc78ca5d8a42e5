#include "client/devmemctl_cli.h"

#include <signal.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/byte_size.h"
#include "base/errno_status.h"
#include "client/client.h"
#include "client/dmabuf/dmabuf.h"
#include "google/protobuf/util/json_util.h"
#include "pool/region.h"

namespace devmem::ctl {
namespace {

constexpr char kOverview[] =
    "usage: devmemctl [--run-dir DIR] [--json] COMMAND [ARGS]\n"
    "\n"
    "Talks to devmemd, the devmem-broker daemon.\n"
    "\n"
    "commands:\n"
    "  devices    list devices, their queues and devmem capability\n"
    "  bindings   list this user's bindings\n"
    "  bind       bind a new buffer to RX queues and hold it until Ctrl-C\n"
    "  unbind     unbind a binding of this session\n"
    "  stats      daemon, device and binding statistics\n"
    "  watch      print binding events until Ctrl-C\n"
    "\n"
    "global flags:\n"
    "  --run-dir DIR  devmemd's socket directory (default: the directory of\n"
    "                 $DEVMEM_SOCKET, else /run/devmemd)\n"
    "  --json         JSON output instead of tables\n"
    "  -h, --help     this help; `devmemctl COMMAND --help` for a command\n"
    "\n"
    "exit codes: 0 ok, 1 error, 2 usage\n";

struct CommandHelp {
  const char* name;
  const char* text;
};

constexpr CommandHelp kHelps[] = {
    {"devices",
     "usage: devmemctl devices\n"
     "Lists devices: ifindex, RX/TX queues, free RX queues, link, header\n"
     "split and devmem RX/TX capability.\n"},
    {"bindings",
     "usage: devmemctl bindings [--all]\n"
     "Lists this user's bindings (other users' are only counted).\n"
     "  --all  include draining and recently released bindings\n"},
    {"bind",
     "usage: devmemctl bind --device D (--queues N | --queue-ids a,b)\n"
     "                      --size BYTES [--chunk-size B] [--udmabuf]\n"
     "                      [--flow dst_port=P[,src_ip=A][,dst_ip=A]"
     "[,src_port=P]]...\n"
     "Creates a buffer (memfd, or udmabuf with --udmabuf), binds it to RX\n"
     "queues of D, steers each --flow to it (IPv6 when an address has a\n"
     "colon), prints the binding and holds it until Ctrl-C or SIGTERM,\n"
     "then unbinds cleanly. Sizes take K, M, G, T suffixes.\n"},
    {"unbind",
     "usage: devmemctl unbind ID\n"
     "Unbinds binding ID. Only the session that made a binding may unbind\n"
     "it; a job's bindings are released when the job exits.\n"},
    {"stats",
     "usage: devmemctl stats\n"
     "Sessions, bindings by state, bound bytes, tickets; per device and per\n"
     "binding (bytes received, frags, pool, allocation failures).\n"},
    {"watch",
     "usage: devmemctl watch [--no-snapshot]\n"
     "Prints binding events (bound, draining, released) until Ctrl-C.\n"
     "  --no-snapshot  do not print the current bindings first\n"},
};

const char* FindHelp(std::string_view command) {
  for (const CommandHelp& h : kHelps) {
    if (command == h.name) return h.text;
  }
  return nullptr;
}

ParseResult UsageError(std::string_view command, std::string_view why) {
  ParseResult r;
  r.kind = ParseResult::Kind::kUsageError;
  r.text = absl::StrCat("devmemctl: ", std::string(why), "\n", Help(command));
  return r;
}

std::optional<std::vector<uint32_t>> ParseU32List(const std::string& text) {
  std::vector<uint32_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    uint32_t v;
    if (!absl::SimpleAtoi(part, &v)) return std::nullopt;
    out.push_back(v);
  }
  return out;
}

// ---- tables -------------------------------------------------------------

class Table {
 public:
  explicit Table(std::vector<std::string> header) {
    rows_.push_back(std::move(header));
  }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const {
    std::vector<size_t> width;
    for (const auto& row : rows_) {
      width.resize(std::max(width.size(), row.size()));
      for (size_t i = 0; i < row.size(); ++i) {
        width[i] = std::max(width[i], row[i].size());
      }
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        absl::StrAppend(&line, row[i]);
        if (i + 1 < row.size()) {
          line.append(width[i] - row[i].size() + 2, ' ');
        }
      }
      absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string Json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  o.add_whitespace = true;
  std::string s;
  (void)google::protobuf::util::MessageToJsonString(m, &s, o);
  return s;
}

std::string Bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(b, " B")
                : absl::StrFormat("%.1f %s", v, units[u]);
}

std::string Short(std::string name, std::string_view prefix) {
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(c));
  return name;
}

std::string State(v1::BindingState s) {
  return Short(v1::BindingState_Name(s), "BINDING_STATE_");
}

std::string Capability(v1::Capability c) {
  return Short(v1::Capability_Name(c), "CAPABILITY_");
}

std::string Queues(const v1::Binding& b) {
  if (b.direction() == v1::DIRECTION_TX) return "-";
  if (b.redacted()) return "(hidden)";
  return absl::StrJoin(b.queues(), ",");
}

void AddBindingRow(Table& t, const v1::Binding& b) {
  t.Add({b.redacted() ? "-" : absl::StrCat(b.id()), b.device(),
         b.direction() == v1::DIRECTION_TX ? "tx" : "rx", Queues(b),
         b.chunk_size() ? absl::StrCat(b.chunk_size()) : "-",
         Bytes(b.size_bytes()), State(b.state()),
         b.redacted() ? "-" : absl::StrCat(b.uid(), "/", b.pid()),
         b.endpoint().empty() ? "-" : b.endpoint()});
}

// Blocks SIGINT/SIGTERM in this thread (and threads it starts later) and
// returns the set, so sigwait can take them in one place.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace

std::string ErrorLine(const absl::Status& s) {
  return absl::StrCat("devmemctl: ", StatusText(s));
}

namespace {

int Fail(std::ostream& err, const absl::Status& s) {
  err << ErrorLine(s) << "\n";
  return kExitError;
}

}  // namespace

std::string Help(std::string_view command) {
  const char* h = FindHelp(command);
  return h != nullptr ? std::string(h) : std::string(kOverview);
}

namespace {

// "dst_port=9999,src_ip=10.0.0.2": the keys of v1::Flow, dst_port required.
// Addresses are checked by the daemon (exactly, with inet_pton); here only
// the shape and the ports.
absl::StatusOr<v1::Flow> ParseFlow(std::string_view text) {
  v1::Flow f;
  for (absl::string_view part :
       absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    const size_t eq = part.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--flow: \"", part,
                       "\" is not KEY=VALUE (keys: dst_port, src_port, "
                       "src_ip, dst_ip)"));
    }
    const absl::string_view key = part.substr(0, eq);
    const absl::string_view value = part.substr(eq + 1);
    if (key == "dst_port" || key == "src_port") {
      uint32_t port = 0;
      if (!absl::SimpleAtoi(value, &port) || port == 0 || port > 65535) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--flow: ", key, " \"", value, "\" is not a port (1-65535)"));
      }
      key == "dst_port" ? f.set_dst_port(port) : f.set_src_port(port);
    } else if (key == "src_ip" || key == "dst_ip") {
      if (value.find(':') != absl::string_view::npos) f.set_ipv6(true);
      key == "src_ip" ? f.set_src_ip(std::string(value))
                      : f.set_dst_ip(std::string(value));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--flow: unknown key \"", key,
                       "\" (keys: dst_port, src_port, src_ip, dst_ip)"));
    }
  }
  if (f.dst_port() == 0) {
    return absl::InvalidArgumentError("--flow: dst_port=P is required");
  }
  return f;
}

}  // namespace

ParseResult Parse(const std::vector<std::string>& args) {
  ParseResult r;
  Command& c = r.command;
  std::vector<std::string> rest;  // the command's own arguments
  bool help = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      help = true;
    } else if (a == "--json") {
      c.json = true;
    } else if (a == "--run-dir" || a.rfind("--run-dir=", 0) == 0) {
      if (a.size() > 9) {
        c.run_dir = a.substr(10);
      } else if (i + 1 < args.size()) {
        c.run_dir = args[++i];
      } else {
        return UsageError(c.name, "--run-dir needs a directory");
      }
      if (c.run_dir.empty()) return UsageError(c.name, "empty --run-dir");
    } else if (c.name.empty() && !a.empty() && a[0] != '-') {
      c.name = a;
      if (FindHelp(c.name) == nullptr) {
        return UsageError("", absl::StrCat("unknown command \"", a, "\""));
      }
    } else if (c.name.empty()) {
      return UsageError("", absl::StrCat("unknown flag ", a));
    } else {
      rest.push_back(a);
    }
  }
  if (help) {
    r.kind = ParseResult::Kind::kHelp;
    r.text = Help(c.name);
    return r;
  }
  if (c.name.empty()) return UsageError("", "no command given");

  // Command arguments: "--flag value" or "--flag=value".
  for (size_t i = 0; i < rest.size(); ++i) {
    std::string flag = rest[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = flag.find('=');
        flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    auto need = [&]() {
      if (has_value) return true;
      if (i + 1 >= rest.size()) return false;
      value = rest[++i];
      return true;
    };
    if (c.name == "bindings" && flag == "--all") {
      c.all = true;
    } else if (c.name == "watch" && flag == "--no-snapshot") {
      c.snapshot = false;
    } else if (c.name == "bind" && flag == "--device") {
      if (!need() || value.empty())
        return UsageError(c.name, "--device needs a name");
      c.device = value;
    } else if (c.name == "bind" && flag == "--queues") {
      if (!need() || !absl::SimpleAtoi(value, &c.num_queues) ||
          c.num_queues == 0) {
        return UsageError(c.name, "--queues needs a positive number");
      }
    } else if (c.name == "bind" && flag == "--queue-ids") {
      std::optional<std::vector<uint32_t>> ids;
      if (need()) ids = ParseU32List(value);
      if (!ids.has_value()) {
        return UsageError(c.name, "--queue-ids needs a list like 3,4");
      }
      c.queue_ids = *std::move(ids);
    } else if (c.name == "bind" && flag == "--size") {
      if (!need()) return UsageError(c.name, "--size needs a size like 64M");
      absl::StatusOr<uint64_t> size = ParseByteSizeFlag(flag, value);
      if (!size.ok()) {
        return UsageError(c.name, std::string(size.status().message()));
      }
      if (*size == 0) return UsageError(c.name, "--size must be more than 0");
      c.size = *size;
    } else if (c.name == "bind" && flag == "--chunk-size") {
      if (!need()) {
        return UsageError(c.name, "--chunk-size needs a size like 4K");
      }
      absl::StatusOr<uint64_t> v = ParseByteSizeFlag(flag, value);
      if (!v.ok()) return UsageError(c.name, std::string(v.status().message()));
      // The daemon's rule, said here in the user's units before anything is
      // sent.
      if (!Region::ValidChunkSize(*v)) {
        return UsageError(c.name, absl::StrCat("--chunk-size ", value,
                                               " is out of range: a power of "
                                               "two from 4K to 2M"));
      }
      c.chunk_size = static_cast<uint32_t>(*v);
    } else if (c.name == "bind" && flag == "--udmabuf") {
      c.udmabuf = true;
    } else if (c.name == "bind" && flag == "--flow") {
      if (!need()) {
        return UsageError(c.name, "--flow needs dst_port=P[,src_ip=A,...]");
      }
      absl::StatusOr<v1::Flow> f = ParseFlow(value);
      if (!f.ok()) return UsageError(c.name, std::string(f.status().message()));
      c.flows.push_back(*std::move(f));
    } else if (c.name == "unbind" && c.binding_id == 0 && !flag.empty() &&
               flag[0] != '-') {
      if (!absl::SimpleAtoi(flag, &c.binding_id) || c.binding_id == 0) {
        return UsageError(c.name,
                          absl::StrCat("\"", flag, "\" is not a binding id"));
      }
    } else {
      return UsageError(c.name,
                        absl::StrCat("unexpected argument \"", rest[i], "\""));
    }
  }
  if (c.name == "bind") {
    if (c.device.empty()) return UsageError(c.name, "--device is required");
    if ((c.num_queues == 0) == c.queue_ids.empty()) {
      return UsageError(c.name, "give exactly one of --queues or --queue-ids");
    }
    if (c.size == 0) return UsageError(c.name, "--size is required");
  }
  if (c.name == "unbind" && c.binding_id == 0) {
    return UsageError(c.name, "unbind needs a binding ID");
  }
  return r;
}

std::string FormatDevices(const v1::ListDevicesResponse& r, bool json) {
  if (json) return Json(r);
  Table t({"NAME", "IFINDEX", "RX", "TX", "FREE_RX", "LINK", "HDS", "RX_DEVMEM",
           "TX_DEVMEM", "NUMA"});
  for (const v1::Device& d : r.devices()) {
    t.Add({d.name(), absl::StrCat(d.ifindex()), absl::StrCat(d.rx_queues()),
           absl::StrCat(d.tx_queues()), absl::StrCat(d.free_rx_queues()),
           d.up() ? "up" : "down",
           Short(v1::HeaderSplit_Name(d.header_split()), "HEADER_SPLIT_"),
           Capability(d.rx_capability()), Capability(d.tx_capability()),
           d.numa_node() < 0 ? "-" : absl::StrCat(d.numa_node())});
  }
  std::string out = t.Render();
  absl::StrAppend(&out, "provider: ", r.provider(), "\n");
  return out;
}

std::string FormatBindings(const v1::ListBindingsResponse& r, bool json) {
  if (json) return Json(r);
  Table t({"ID", "DEVICE", "DIR", "QUEUES", "CHUNK", "SIZE", "STATE", "UID/PID",
           "ENDPOINT"});
  for (const v1::Binding& b : r.bindings()) AddBindingRow(t, b);
  std::string out = r.bindings().empty() ? "no bindings\n" : t.Render();
  if (r.other_active() || r.other_draining()) {
    absl::StrAppend(&out, "other users: ", r.other_active(), " active, ",
                    r.other_draining(), " draining\n");
  }
  return out;
}

std::string FormatBinding(const v1::Binding& b, bool json) {
  if (json) return Json(b);
  Table t({"ID", "DEVICE", "DIR", "QUEUES", "CHUNK", "SIZE", "STATE", "UID/PID",
           "ENDPOINT"});
  AddBindingRow(t, b);
  return t.Render();
}

std::string FormatStats(const v1::GetStatsResponse& r, bool json) {
  if (json) return Json(r);
  std::string out = absl::StrCat(
      "sessions: ", r.sessions(), "  bindings: ", r.bindings_active(),
      " active, ", r.bindings_draining(),
      " draining  bound: ", Bytes(r.bound_bytes()),
      "  tickets outstanding: ", r.tickets_outstanding(), "\n");
  if (!r.devices().empty()) {
    Table t({"DEVICE", "QUEUES_IN_USE", "BINDINGS", "BOUND"});
    for (const v1::DeviceStats& d : r.devices()) {
      t.Add({d.name(), absl::StrCat(d.queues_in_use()),
             absl::StrCat(d.bindings()), Bytes(d.bound_bytes())});
    }
    absl::StrAppend(&out, "\n", t.Render());
  }
  if (!r.bindings().empty()) {
    Table t({"BINDING", "DEVICE", "STATE", "RECEIVED", "SENT", "FRAGS",
             "ALLOC_FAIL", "LENT_TOKENS", "INFLIGHT", "CAPACITY"});
    for (const v1::BindingStats& b : r.bindings()) {
      t.Add({absl::StrCat(b.binding_id()), b.device(), State(b.state()),
             Bytes(b.bytes_received()), Bytes(b.bytes_sent()),
             absl::StrCat(b.frags()), absl::StrCat(b.alloc_fail()),
             b.has_pool() ? absl::StrCat(b.pool().lent_tokens()) : "-",
             b.has_pool() ? absl::StrCat(b.pool().inflight_chunks()) : "-",
             b.has_pool() ? absl::StrCat(b.pool().capacity_chunks()) : "-"});
    }
    absl::StrAppend(&out, "\n", t.Render());
  }
  return out;
}

std::string FormatEvent(const v1::BindingEvent& e, bool json) {
  if (json) {
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    std::string s;
    (void)google::protobuf::util::MessageToJsonString(e, &s, o);
    return s + "\n";
  }
  const v1::Binding& b = e.binding();
  return absl::StrCat(
      absl::FormatTime("%H:%M:%E3S", absl::FromUnixNanos(e.unix_ns()),
                       absl::LocalTimeZone()),
      "  ", Short(v1::BindingEventKind_Name(e.kind()), "BINDING_EVENT_KIND_"),
      "  binding ",
      b.redacted() ? std::string("(other user)") : absl::StrCat(b.id()), "  ",
      e.device(), "  ", b.direction() == v1::DIRECTION_TX ? "tx" : "rx",
      "  queues ", Queues(b), "  ", State(b.state()),
      b.release_reason().empty() ? ""
                                 : absl::StrCat("  (", b.release_reason(), ")"),
      "\n");
}

int Main(const std::vector<std::string>& args, std::ostream& out,
         std::ostream& err) {
  ParseResult p = Parse(args);
  if (p.kind == ParseResult::Kind::kHelp) {
    out << p.text;
    return kExitOk;
  }
  if (p.kind == ParseResult::Kind::kUsageError) {
    err << p.text;
    return kExitUsage;
  }
  const Command& c = p.command;
  // bind and watch wait for Ctrl-C: block the signals before gRPC starts
  // threads, and take them in one place.
  sigset_t stop;
  const bool waits = c.name == "bind" || c.name == "watch";
  if (waits) stop = BlockStopSignals();

  ClientOptions o;
  o.run_dir = c.run_dir;
  o.client_name = absl::StrCat("devmemctl ", c.name);
  // Reads see this uid's bindings only through a session; without one they
  // still work (other bindings are counted).
  o.session = (c.name == "bind" || c.name == "unbind")
                  ? ClientOptions::Session::kRequired
                  : ClientOptions::Session::kIfAllowed;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(o);
  if (!client.ok()) return Fail(err, client.status());
  Client& cl = **client;
  if (!cl.session_status().ok() && !c.json) {
    err << "devmemctl: note: no session (" << cl.session_status().message()
        << "); showing other users' bindings as counts only\n";
  }

  if (c.name == "devices") {
    auto r = cl.ListDevices();
    if (!r.ok()) return Fail(err, r.status());
    out << FormatDevices(*r, c.json);
  } else if (c.name == "bindings") {
    auto r = cl.ListBindings(c.all);
    if (!r.ok()) return Fail(err, r.status());
    out << FormatBindings(*r, c.json);
  } else if (c.name == "stats") {
    auto r = cl.GetStats();
    if (!r.ok()) return Fail(err, r.status());
    out << FormatStats(*r, c.json);
  } else if (c.name == "unbind") {
    absl::Status s = cl.Unbind(c.binding_id);
    if (!s.ok()) return Fail(err, s);
    if (!c.json) out << "binding " << c.binding_id << " unbound\n";
  } else if (c.name == "bind") {
    absl::StatusOr<Dmabuf> buf =
        c.udmabuf ? Dmabuf::CreateUdmabuf("devmemctl", c.size)
                  : Dmabuf::CreateMemfd("devmemctl", c.size);
    if (!buf.ok()) return Fail(err, buf.status());
    RxBindOptions rx;
    rx.device = c.device;
    rx.num_queues = c.num_queues;
    rx.queue_ids = c.queue_ids;
    rx.chunk_size = c.chunk_size;
    rx.flows = c.flows;
    rx.name = "devmemctl";
    absl::StatusOr<Binding> b = cl.BindRx(buf->fd(), rx);
    if (!b.ok()) return Fail(err, b.status());
    out << FormatBinding(b->info(), c.json);
    if (!c.json) out << "holding binding " << b->id() << "; Ctrl-C to unbind\n";
    out.flush();
    int sig = 0;
    sigwait(&stop, &sig);
    absl::Status s = b->Unbind();
    if (!s.ok()) return Fail(err, s);
    if (!c.json) out << "binding " << b->id() << " unbound\n";
  } else if (c.name == "watch") {
    auto w = cl.Watch(c.snapshot);
    if (!w.ok()) return Fail(err, w.status());
    BindingWatch* watch = w->get();
    std::thread stopper([&stop, watch] {
      int sig = 0;
      sigwait(&stop, &sig);
      watch->Cancel();
    });
    int rc = kExitOk;
    for (;;) {
      auto ev = watch->Next();
      if (!ev.ok()) {
        rc = Fail(err, ev.status());
        break;
      }
      if (!ev->has_value()) break;
      out << FormatEvent(**ev, c.json);
      out.flush();
    }
    // Wake the stopper if the stream ended on its own.
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
    return rc;
  }
  return kExitOk;
}

}  // namespace devmem::ctl
