#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace devmem {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("DEVMEM_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  const std::string v = absl::AsciiStrToLower(env);
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warning" || v == "warn") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& MinLevel() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void WriteAll(absl::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void SetMinLogLevel(LogLevel level) {
  MinLevel().store(static_cast<int>(level), std::memory_order_relaxed);
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= MinLevel().load(std::memory_order_relaxed);
}

std::string LogQuote(absl::string_view value) {
  bool needs = value.empty();
  for (char c : value) {
    if (c == ' ' || c == '=' || c == '"' ||
        static_cast<unsigned char>(c) < 0x20) {
      needs = true;
      break;
    }
  }
  if (!needs) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(c));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

LogLine::LogLine(LogLevel level, absl::string_view event)
    : enabled_(LogEnabled(level)) {
  if (!enabled_) return;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  line_ = absl::StrFormat(
      "ts=%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ level=%s event=%s",
      utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
      utc.tm_sec, ts.tv_nsec / 1000, LevelName(level), LogQuote(event));
}

LogLine& LogLine::Kv(absl::string_view key, const absl::AlphaNum& value) {
  if (enabled_) absl::StrAppend(&line_, " ", key, "=", LogQuote(value.Piece()));
  return *this;
}

LogLine::~LogLine() {
  if (!enabled_) return;
  line_.push_back('\n');
  WriteAll(line_);
}

namespace internal {

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << "CHECK failed at " << file << ":" << line << ": " << condition
          << ": ";
}

CheckFailure::~CheckFailure() {
  stream_ << "\n";
  WriteAll(stream_.str());
  std::abort();
}

}  // namespace internal
}  // namespace devmem
