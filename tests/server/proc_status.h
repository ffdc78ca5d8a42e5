// Reads the capability sets and no_new_privs of a task from
// /proc/<pid>/task/<tid>/status (or /proc/self/status), as the kernel
// reports them, for the least-privilege tests.
#ifndef DEVMEM_TESTS_SERVER_PROC_STATUS_H_
#define DEVMEM_TESTS_SERVER_PROC_STATUS_H_

#include <cstdint>
#include <fstream>
#include <string>

namespace devmem::testing {

struct ProcCaps {
  bool found = false;
  uint64_t inh = 0, prm = 0, eff = 0, bnd = 0, amb = 0;
  int no_new_privs = -1;
};

inline ProcCaps ReadProcCaps(const std::string& status_path) {
  ProcCaps c;
  std::ifstream f(status_path);
  std::string key;
  while (f >> key) {
    std::string value;
    f >> value;
    auto hex = [&value] { return std::stoull(value, nullptr, 16); };
    if (key == "CapInh:") c.inh = hex();
    if (key == "CapPrm:") c.prm = hex();
    if (key == "CapEff:") c.eff = hex();
    if (key == "CapBnd:") c.bnd = hex();
    if (key == "CapAmb:") c.amb = hex(), c.found = true;
    if (key == "NoNewPrivs:") c.no_new_privs = std::stoi(value);
    f.ignore(1 << 20, '\n');
  }
  return c;
}

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_SERVER_PROC_STATUS_H_
