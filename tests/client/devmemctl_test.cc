// devmemctl's argument parsing, help, exit codes and table/JSON output,
// without a daemon.
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "client/client.h"
#include "client/devmemctl_cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devmem::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = ParseResult::Kind;

ParseResult P(std::vector<std::string> args) { return Parse(args); }

TEST(DevmemctlParse, GlobalFlagsBeforeAndAfterTheCommand) {
  ParseResult r = P({"--run-dir", "/tmp/x", "devices", "--json"});
  ASSERT_EQ(r.kind, Kind::kRun) << r.text;
  EXPECT_EQ(r.command.name, "devices");
  EXPECT_EQ(r.command.run_dir, "/tmp/x");
  EXPECT_TRUE(r.command.json);
  r = P({"bindings", "--run-dir=/d", "--all"});
  ASSERT_EQ(r.kind, Kind::kRun) << r.text;
  EXPECT_EQ(r.command.run_dir, "/d");
  EXPECT_TRUE(r.command.all);
}

TEST(DevmemctlParse, Bind) {
  ParseResult r = P({"bind", "--device", "sim0", "--queues", "2", "--size",
                     "64M", "--chunk-size=8K"});
  ASSERT_EQ(r.kind, Kind::kRun) << r.text;
  EXPECT_EQ(r.command.device, "sim0");
  EXPECT_EQ(r.command.num_queues, 2u);
  EXPECT_EQ(r.command.size, 64u << 20);
  EXPECT_EQ(r.command.chunk_size, 8192u);
  r = P({"bind", "--device", "eth1", "--queue-ids", "3,4", "--size", "1G"});
  ASSERT_EQ(r.kind, Kind::kRun) << r.text;
  EXPECT_THAT(r.command.queue_ids, ElementsAre(3, 4));
}

TEST(DevmemctlParse, BindUsageErrors) {
  EXPECT_EQ(P({"bind", "--queues", "2", "--size", "1M"}).kind,
            Kind::kUsageError);  // no device
  EXPECT_EQ(P({"bind", "--device", "d", "--size", "1M"}).kind,
            Kind::kUsageError);  // no queues
  EXPECT_EQ(P({"bind", "--device", "d", "--queues", "1", "--queue-ids", "2",
               "--size", "1M"})
                .kind,
            Kind::kUsageError);  // both
  EXPECT_EQ(P({"bind", "--device", "d", "--queues", "1"}).kind,
            Kind::kUsageError);  // no size
  EXPECT_EQ(P({"bind", "--device", "d", "--queues", "x", "--size", "1M"}).kind,
            Kind::kUsageError);
  EXPECT_EQ(
      P({"bind", "--device", "d", "--queue-ids", "1,,2", "--size", "1M"}).kind,
      Kind::kUsageError);
  EXPECT_EQ(P({"bind", "--device", "d", "--queues", "1", "--size", "12Q"}).kind,
            Kind::kUsageError);
  EXPECT_EQ(P({"bind", "--device"}).kind, Kind::kUsageError);
}

// The first line of a usage error: what the user typed and what was wrong.
std::string FirstLine(const ParseResult& r) {
  return r.text.substr(0, r.text.find('\n'));
}

TEST(DevmemctlParse, BindTakesFlows) {
  ParseResult r = P({"bind", "--device", "sim0", "--queues", "1", "--size",
                     "1M", "--flow", "dst_port=9999", "--flow",
                     "dst_port=5201,src_ip=10.0.0.2,src_port=40000",
                     "--flow=dst_port=80,dst_ip=fd00::1"});
  ASSERT_EQ(r.kind, Kind::kRun) << r.text;
  ASSERT_EQ(r.command.flows.size(), 3u);
  EXPECT_EQ(r.command.flows[0].dst_port(), 9999u);
  EXPECT_EQ(r.command.flows[1].src_ip(), "10.0.0.2");
  EXPECT_EQ(r.command.flows[1].src_port(), 40000u);
  EXPECT_FALSE(r.command.flows[1].ipv6());
  EXPECT_EQ(r.command.flows[2].dst_ip(), "fd00::1");
  EXPECT_TRUE(r.command.flows[2].ipv6());
  for (const char* bad : {"src_ip=10.0.0.2", "dst_port=0", "dst_port=70000",
                          "dport=80", "dst_port"}) {
    ParseResult e = P({"bind", "--device", "sim0", "--queues", "1", "--size",
                       "1M", "--flow", bad});
    EXPECT_EQ(e.kind, Kind::kUsageError) << bad;
    EXPECT_NE(e.text.find("--flow"), std::string::npos) << e.text;
  }
}

TEST(DevmemctlParse, SizesUpToTheDefaultQuotaAreAccepted) {
  ParseResult r = P({"bind", "--device", "d", "--queues", "1", "--size", "2T"});
  ASSERT_EQ(r.kind, Kind::kRun) << r.text;
  EXPECT_EQ(r.command.size, uint64_t{2} << 40);
}

TEST(DevmemctlParse, SizeMessagesSayWhatWasWrongOnce) {
  EXPECT_EQ(
      FirstLine(P({"bind", "--device", "d", "--queues", "1", "--size", "12Q"})),
      "devmemctl: --size \"12Q\" is not a size: want a whole number with an "
      "optional K, M, G or T (below 16E)");
  EXPECT_EQ(
      FirstLine(P({"bind", "--device", "d", "--queues", "1", "--size", "0"})),
      "devmemctl: --size must be more than 0");
  // A well-formed value outside the daemon's range is a range error, not a
  // format error.
  for (const char* bad : {"4G", "1K", "12K", "0"}) {
    EXPECT_EQ(FirstLine(P({"bind", "--device", "d", "--queues", "1", "--size",
                           "1M", "--chunk-size", bad})),
              absl::StrCat("devmemctl: --chunk-size ", bad,
                           " is out of range: a power of two from 4K to 2M"));
  }
  EXPECT_EQ(FirstLine(P({"bind", "--device", "d", "--queues", "1", "--size",
                         "1M", "--chunk-size", "4KB"})),
            "devmemctl: --chunk-size \"4KB\" is not a size: want a whole "
            "number with an optional K, M, G or T (below 16E)");
  ParseResult ok = P({"bind", "--device", "d", "--queues", "1", "--size", "1M",
                      "--chunk-size", "2M"});
  ASSERT_EQ(ok.kind, Kind::kRun) << ok.text;
  EXPECT_EQ(ok.command.chunk_size, 2u << 20);
}

TEST(DevmemctlErrors, EachThingIsSaidOnce) {
  // A daemon message made from an errno (base/errno_status) already names it.
  EXPECT_EQ(ErrorLine(ErrnoToStatus(EINVAL, "bind sim0: the dmabuf: size 0")),
            "devmemctl: bind sim0: the dmabuf: size 0: Invalid argument "
            "(EINVAL)");
  // Otherwise the code's name says what kind of failure it was.
  EXPECT_EQ(ErrorLine(absl::PermissionDeniedError("uid 1000 is not allowed")),
            "devmemctl: uid 1000 is not allowed (PERMISSION_DENIED)");
  EXPECT_EQ(ErrorLine(absl::NotFoundError("binding 7 (of this session)")),
            "devmemctl: binding 7 (of this session) (NOT_FOUND)");
  EXPECT_EQ(ErrorLine(absl::UnavailableError("")), "devmemctl: UNAVAILABLE");
}

TEST(DevmemctlParse, UnbindNeedsANumber) {
  ParseResult r = P({"unbind", "12"});
  ASSERT_EQ(r.kind, Kind::kRun);
  EXPECT_EQ(r.command.binding_id, 12u);
  EXPECT_EQ(P({"unbind"}).kind, Kind::kUsageError);
  EXPECT_EQ(P({"unbind", "x"}).kind, Kind::kUsageError);
  EXPECT_EQ(P({"unbind", "1", "2"}).kind, Kind::kUsageError);
}

TEST(DevmemctlParse, UnknownThings) {
  EXPECT_EQ(P({}).kind, Kind::kUsageError);
  EXPECT_EQ(P({"frobnicate"}).kind, Kind::kUsageError);
  EXPECT_EQ(P({"--bogus", "devices"}).kind, Kind::kUsageError);
  EXPECT_EQ(P({"devices", "--bogus"}).kind, Kind::kUsageError);
  EXPECT_EQ(P({"stats", "extra"}).kind, Kind::kUsageError);
  EXPECT_EQ(P({"--run-dir"}).kind, Kind::kUsageError);
}

TEST(DevmemctlParse, HelpForEveryCommand) {
  ParseResult r = P({"--help"});
  EXPECT_EQ(r.kind, Kind::kHelp);
  EXPECT_THAT(r.text, HasSubstr("commands:"));
  for (const char* c :
       {"devices", "bindings", "bind", "unbind", "stats", "watch"}) {
    r = P({c, "--help"});
    EXPECT_EQ(r.kind, Kind::kHelp) << c;
    EXPECT_THAT(r.text, HasSubstr(std::string("usage: devmemctl ") + c)) << c;
    r = P({"-h", c});
    EXPECT_THAT(r.text, HasSubstr(std::string("usage: devmemctl ") + c)) << c;
  }
  // Help wins over a usage error in the same line.
  EXPECT_EQ(P({"bind", "--help"}).kind, Kind::kHelp);
}

int RunCtl(std::vector<std::string> args, std::string* out, std::string* err) {
  std::ostringstream o, e;
  const int rc = Main(args, o, e);
  *out = o.str();
  *err = e.str();
  return rc;
}

TEST(DevmemctlMain, ExitCodes) {
  std::string out, err;
  EXPECT_EQ(RunCtl({"--help"}, &out, &err), kExitOk);
  EXPECT_THAT(out, HasSubstr("usage: devmemctl"));
  EXPECT_EQ(RunCtl({"bogus"}, &out, &err), kExitUsage);
  EXPECT_THAT(err, HasSubstr("unknown command"));
  // A run dir without a daemon: an error with the reason on stderr.
  EXPECT_EQ(
      RunCtl({"--run-dir", "/nonexistent-devmemd", "devices"}, &out, &err),
      kExitError);
  EXPECT_THAT(err, HasSubstr("/nonexistent-devmemd/api.sock"));
  EXPECT_TRUE(out.empty());
}

TEST(DevmemctlFormat, DevicesTableIsAlignedAndJsonHasTheFields) {
  v1::ListDevicesResponse r;
  r.set_provider("sim");
  v1::Device* d = r.add_devices();
  d->set_name("sim0");
  d->set_ifindex(1000);
  d->set_rx_queues(16);
  d->set_tx_queues(8);
  d = r.add_devices();
  d->set_name("a-much-longer-name");
  d->set_ifindex(7);
  const std::string table = FormatDevices(r, false);
  std::istringstream lines(table);
  std::string header, row1, row2;
  std::getline(lines, header);
  std::getline(lines, row1);
  std::getline(lines, row2);
  // Every row puts IFINDEX at the same column.
  EXPECT_EQ(header.find("IFINDEX"), row1.find("1000"));
  EXPECT_EQ(header.find("IFINDEX"), row2.find("7 "));
  const std::string json = FormatDevices(r, true);
  for (const char* f : {"\"name\"", "\"ifindex\"", "\"rx_queues\"",
                        "\"tx_queues\"", "\"provider\""}) {
    EXPECT_THAT(json, HasSubstr(f));
  }
}

TEST(DevmemctlFormat, BindingsShowsOtherUsersAsCounts) {
  v1::ListBindingsResponse r;
  EXPECT_THAT(FormatBindings(r, false), HasSubstr("no bindings"));
  r.set_other_active(2);
  v1::Binding* b = r.add_bindings();
  b->set_id(5);
  b->set_device("sim0");
  b->set_direction(v1::DIRECTION_RX);
  b->add_queues(14);
  b->add_queues(15);
  b->set_state(v1::BINDING_STATE_ACTIVE);
  const std::string t = FormatBindings(r, false);
  EXPECT_THAT(t, HasSubstr("14,15"));
  EXPECT_THAT(t, HasSubstr("active"));
  EXPECT_THAT(t, HasSubstr("other users: 2 active"));
}

TEST(ClientRunDir, FromDevmemSocketElseDefault) {
  ::unsetenv("DEVMEM_SOCKET");
  EXPECT_EQ(Client::DefaultRunDir(), "/run/devmemd");
  ::setenv("DEVMEM_SOCKET", "/var/run/devmem/api.sock", 1);
  EXPECT_EQ(Client::DefaultRunDir(), "/var/run/devmem");
  ::setenv("DEVMEM_SOCKET", "/tmp", 1);  // a directory names itself
  EXPECT_EQ(Client::DefaultRunDir(), "/tmp");
  ::unsetenv("DEVMEM_SOCKET");
}

}  // namespace
}  // namespace devmem::ctl
