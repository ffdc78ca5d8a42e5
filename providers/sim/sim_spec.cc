#include "providers/sim/sim_spec.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"

namespace devmem {
namespace {

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

// `v` as a T in [lo, hi]; InvalidArgument "KEY=V is not in [LO, HI]".
template <typename T>
absl::StatusOr<T> ParseInRange(absl::string_view key, absl::string_view v, T lo,
                               T hi) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < static_cast<int64_t>(lo) ||
      n > static_cast<int64_t>(hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, "=", v, " is not in [", lo, ", ", hi, "]"));
  }
  return static_cast<T>(n);
}

// true for `yes`, false for `no`; InvalidArgument "KEY=V is not YES or NO".
absl::StatusOr<bool> ParseBool(absl::string_view key, absl::string_view v,
                               absl::string_view yes, absl::string_view no) {
  if (v == yes) return true;
  if (v == no) return false;
  return absl::InvalidArgumentError(
      absl::StrCat(key, "=", v, " is not ", yes, " or ", no));
}

// Sets the option `key` of `dev` from `val`. InvalidArgument naming the key,
// the value and what it may be.
absl::Status SetOption(absl::string_view key, absl::string_view val,
                       SimDeviceSpec& dev) {
  if (key == "rx") {
    ASSIGN_OR_RETURN(dev.rx_queues,
                     ParseInRange<uint32_t>(key, val, 1, kSimMaxQueues));
  } else if (key == "tx") {
    ASSIGN_OR_RETURN(dev.tx_queues,
                     ParseInRange<uint32_t>(key, val, 1, kSimMaxQueues));
  } else if (key == "numa") {
    ASSIGN_OR_RETURN(dev.numa_node, ParseInRange<int32_t>(key, val, -1, 1023));
  } else if (key == "hds-thresh") {
    ASSIGN_OR_RETURN(dev.hds_thresh,
                     ParseInRange<uint32_t>(key, val, 0, 65535));
  } else if (key == "hds") {
    if (val == "auto") {
      dev.header_split = HeaderSplit::kUnknown;
    } else if (val == "off") {
      dev.header_split = HeaderSplit::kDisabled;
    } else if (val == "on") {
      dev.header_split = HeaderSplit::kEnabled;
    } else if (val == "unsupported") {
      dev.header_split = HeaderSplit::kUnknown;
      dev.header_split_supported = false;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          key, "=", val, " is not one of auto, off, on, unsupported"));
    }
  } else if (key == "devmem") {
    ASSIGN_OR_RETURN(dev.devmem, ParseBool(key, val, "yes", "no"));
  } else if (key == "link") {
    ASSIGN_OR_RETURN(dev.link_up, ParseBool(key, val, "up", "down"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown key \"", key,
        "\" (known: rx, tx, numa, hds, hds-thresh, devmem, link)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SimDeviceSpec>> ParseSimSpec(
    std::string_view spec_view) {
  const absl::string_view spec(spec_view.data(), spec_view.size());
  if (absl::StripAsciiWhitespace(spec).empty()) {
    return absl::InvalidArgumentError(
        "sim spec is empty: name a device, "
        "e.g. \"sim0:rx=16,tx=16\"");
  }
  std::vector<SimDeviceSpec> out;
  absl::flat_hash_set<std::string> names;
  int index = 0;
  for (absl::string_view part : absl::StrSplit(spec, ';')) {
    ++index;
    part = absl::StripAsciiWhitespace(part);
    const std::string where =
        absl::StrCat("sim spec device ", index, " \"", part, "\"");
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", why));
    };
    if (part.empty()) return bad("empty device entry");
    SimDeviceSpec dev;
    absl::string_view name = part;
    absl::string_view opts;
    if (size_t colon = part.find(':'); colon != absl::string_view::npos) {
      name = absl::StripAsciiWhitespace(part.substr(0, colon));
      opts = part.substr(colon + 1);
    }
    if (!ValidName(name)) {
      return bad(absl::StrCat("bad device name \"", name,
                              "\" (1-15 characters of [A-Za-z0-9_.-])"));
    }
    dev.name = std::string(name);
    if (!names.insert(dev.name).second) {
      return bad(absl::StrCat("device \"", name, "\" named twice"));
    }
    absl::flat_hash_set<std::string> seen;
    if (!absl::StripAsciiWhitespace(opts).empty()) {
      for (absl::string_view kv : absl::StrSplit(opts, ',')) {
        kv = absl::StripAsciiWhitespace(kv);
        const size_t eq = kv.find('=');
        if (eq == absl::string_view::npos) {
          return bad(absl::StrCat("\"", kv, "\" is not KEY=VALUE"));
        }
        const absl::string_view key =
            absl::StripAsciiWhitespace(kv.substr(0, eq));
        const absl::string_view val =
            absl::StripAsciiWhitespace(kv.substr(eq + 1));
        if (!seen.insert(std::string(key)).second) {
          return bad(absl::StrCat("key \"", key, "\" given twice"));
        }
        if (absl::Status set = SetOption(key, val, dev); !set.ok()) {
          return bad(set.message());
        }
      }
    }
    out.push_back(std::move(dev));
  }
  return out;
}

}  // namespace devmem
