#include "providers/sim/sim_spec.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

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

template <typename T>
bool ParseInRange(absl::string_view v, T lo, T hi, T* out) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < static_cast<int64_t>(lo) ||
      n > static_cast<int64_t>(hi)) {
    return false;
  }
  *out = static_cast<T>(n);
  return true;
}

bool ParseBool(absl::string_view v, absl::string_view yes, absl::string_view no,
               bool* out) {
  if (v == yes) {
    *out = true;
  } else if (v == no) {
    *out = false;
  } else {
    return false;
  }
  return true;
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
        bool ok = true;
        std::string range;
        if (key == "rx") {
          ok = ParseInRange<uint32_t>(val, 1, kSimMaxQueues, &dev.rx_queues);
          range = absl::StrCat("in [1, ", kSimMaxQueues, "]");
        } else if (key == "tx") {
          ok = ParseInRange<uint32_t>(val, 1, kSimMaxQueues, &dev.tx_queues);
          range = absl::StrCat("in [1, ", kSimMaxQueues, "]");
        } else if (key == "numa") {
          ok = ParseInRange<int32_t>(val, -1, 1023, &dev.numa_node);
          range = "in [-1, 1023]";
        } else if (key == "hds-thresh") {
          ok = ParseInRange<uint32_t>(val, 0, 65535, &dev.hds_thresh);
          range = "in [0, 65535]";
        } else if (key == "hds") {
          range = "one of auto, off, on, unsupported";
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
            ok = false;
          }
        } else if (key == "devmem") {
          ok = ParseBool(val, "yes", "no", &dev.devmem);
          range = "yes or no";
        } else if (key == "link") {
          ok = ParseBool(val, "up", "down", &dev.link_up);
          range = "up or down";
        } else {
          return bad(absl::StrCat(
              "unknown key \"", key,
              "\" (known: rx, tx, numa, hds, hds-thresh, devmem, link)"));
        }
        if (!ok) {
          return bad(absl::StrCat(key, "=", val, " is not ", range));
        }
      }
    }
    out.push_back(std::move(dev));
  }
  return out;
}

}  // namespace devmem
