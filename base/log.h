// Structured logging: one line per event, `key=value`, to stderr.
//
//   DEVMEM_LOG(kInfo, "bind").Kv("binding", id).Kv("uid", uid);
// prints
//   ts=2026-11-25T14:02:03.123456Z level=info event=bind binding=7 uid=1000
//
// Values with spaces, quotes or '=' are quoted. The line is written with one
// write(2) when the LogLine is destroyed, so lines from different threads do
// not interleave. Thread-safe. The minimum level is process-wide
// (SetMinLogLevel); DEVMEM_LOG_LEVEL=debug|info|warning|error in the
// environment sets the default.
//
// DEVMEM_CHECK(cond) << "why"; aborts with the message when cond is false:
// for broken invariants only, never for input from outside.
#ifndef DEVMEM_BASE_LOG_H_
#define DEVMEM_BASE_LOG_H_

#include <sstream>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace devmem {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetMinLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view event);
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine();

  LogLine& Kv(absl::string_view key, const absl::AlphaNum& value);
  // Exactly bool: a plain `bool` overload would also win for ints and
  // const char* (a standard conversion beats AlphaNum's user-defined one).
  template <typename T, typename = std::enable_if_t<std::is_same_v<T, bool>>>
  LogLine& Kv(absl::string_view key, T value) {
    return Kv(key, absl::AlphaNum(value ? "true" : "false"));
  }

 private:
  bool enabled_;
  std::string line_;
};

// Quotes `value` when it holds a space, '=', '"' or a control character.
std::string LogQuote(absl::string_view value);

namespace internal {
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace devmem

#define DEVMEM_LOG(level, event) \
  ::devmem::LogLine(::devmem::LogLevel::level, event)

#define DEVMEM_CHECK(cond)             \
  if (__builtin_expect(!!(cond), 1)) { \
  } else                               \
    ::devmem::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#endif  // DEVMEM_BASE_LOG_H_
