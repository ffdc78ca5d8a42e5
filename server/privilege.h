// Least privilege for devmemd: before it serves, the daemon keeps only the
// capabilities its provider needs (CAP_NET_ADMIN for the kernel provider,
// none for the sim), in every set (effective, permitted, inheritable,
// ambient and the bounding set), and sets no_new_privs, so neither it nor
// anything it could exec regains a capability.
//
// Linux keeps capabilities per thread, so this runs while the process has a
// single thread (before the provider, the fd server and gRPC start any): every
// later thread inherits the reduced sets. Nothing the daemon does while
// opening its sockets needs a capability (the run directory is its own; the
// socket group is its own gid under systemd's Group=).
//
// Thread safety: call once, from main, while single-threaded.
#ifndef DEVMEM_SERVER_PRIVILEGE_H_
#define DEVMEM_SERVER_PRIVILEGE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace devmem::server {

// The capabilities (CAP_*) a provider needs: none for "sim", CAP_NET_ADMIN
// for any other (the kernel provider).
std::vector<int> CapabilitiesForProvider(const std::string& provider);

// Drops every capability not in `keep` from all five sets and sets
// no_new_privs. A capability in `keep` that the process does not hold is not
// an error (an unprivileged test run holds none). FailedPrecondition if the
// process has more than one thread; the errno of a failing prctl/capset
// otherwise.
absl::Status DropPrivileges(const std::vector<int>& keep);

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_PRIVILEGE_H_
