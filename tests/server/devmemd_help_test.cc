// `devmemd --help` as a user runs it: every flag with its default, exit 0,
// and nothing about the machine the binary was built on.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string BinDir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string exe(buf, n > 0 ? n : 0);
  return exe.substr(0, exe.rfind('/'));
}

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Result RunDevmemd(const std::string& args) {
  Result r;
  const std::string cmd = BinDir() + "/devmemd " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

TEST(DevmemdHelpTest, HelpListsEveryFlagWithItsDefaultAndExitsZero) {
  for (const char* flag : {"--help", "-h"}) {
    SCOPED_TRACE(flag);
    const Result r = RunDevmemd(flag);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    for (const char* name :
         {"--config=FILE", "--run-dir=DIR", "--provider=NAME",
          "--sim-devices=SPEC", "--metrics-address=HOST:PORT",
          "--socket-mode=MODE", "--socket-group=GROUP",
          "--allow-uids=", "--allow-gids=", "--allow-all", "--chunk-size=BYTES",
          "--ticket-ttl-ms=MS", "--listen=HOST:PORT", "--tls-cert=FILE",
          "--tls-key=FILE", "--log-level=LEVEL"}) {
      EXPECT_THAT(r.output, HasSubstr(name));
    }
    EXPECT_THAT(r.output, HasSubstr("(default: /run/devmemd)"));
    EXPECT_THAT(r.output, HasSubstr("(default: sim0:rx=16,tx=16)"));
    EXPECT_THAT(r.output, HasSubstr("(default: 4096)"));
    EXPECT_THAT(r.output, Not(HasSubstr("No flags matched")));
    EXPECT_THAT(r.output, Not(HasSubstr(PROJECT_SOURCE_DIR)));
    EXPECT_THAT(r.output, Not(HasSubstr(".cc")));
  }
}

TEST(DevmemdHelpTest, HelpfullShowsNoBuildMachinePath) {
  const Result r = RunDevmemd("--helpfull");
  EXPECT_THAT(r.output, HasSubstr("run_dir"));
  EXPECT_THAT(r.output, Not(HasSubstr(PROJECT_SOURCE_DIR)));
  EXPECT_THAT(r.output, Not(HasSubstr("/usr/include")));
}

}  // namespace
