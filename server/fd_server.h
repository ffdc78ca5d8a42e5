// FdServer: devmemd's fd socket. Accepts connections on a SOCK_SEQPACKET
// socket, turns each into a session of the Broker (after Hello and the
// allowlist check on SO_PEERCRED), receives dmabuf fds (RegisterDmabuf ->
// ticket), hands each sim binding's data-path fd to its session (DataPath),
// and closes the session -- releasing its bindings -- the moment the
// connection ends for any reason. It never carries data.
//
// Protocol: proto/devmem/v1/fdsock.proto and docs/API.md. Bad input gets an
// Error reply and loses nothing: every fd that arrives is owned by a
// UniqueFd at once and either moves into the ticket store or is closed.
//
// Threading: one thread runs an epoll loop over the listener and every
// connection; requests are short (CheckDmabuf, ticket issue). DataPath and
// BindingClosed are sent from the thread that binds or releases, on the
// same sockets (SEQPACKET sends are atomic). Start/Stop are not thread-safe
// with each other; everything else is internal.
#ifndef DEVMEM_SERVER_FD_SERVER_H_
#define DEVMEM_SERVER_FD_SERVER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "base/unique_fd.h"
#include "server/broker.h"

namespace devmem::server {

class FdServer {
 public:
  struct Options {
    std::string path;  // e.g. /run/devmemd/fd.sock
    mode_t mode = 0660;
    std::optional<gid_t> group;  // chown the socket to this group
    // Replies, DataPath and BindingClosed messages never block the loop:
    // what a session's socket does not take waits in a per-session queue
    // (at most 256 messages / 1 MiB); past it that session alone is closed,
    // logged as fd_session_dropped and counted as reason "not_reading".
  };
  // Called once per rejected request with a stable reason ("no_fd", ...).
  using ErrorCounter = std::function<void(std::string_view reason)>;

  // `broker` must outlive this object.
  FdServer(Broker* broker, Options options, ErrorCounter count_error = {});
  ~FdServer();  // Stop()
  FdServer(const FdServer&) = delete;
  FdServer& operator=(const FdServer&) = delete;

  // Listens and starts the loop thread. Errors: the socket's errno.
  absl::Status Start();
  // Stops accepting, closes every connection (closing its session) and joins
  // the thread. Idempotent.
  void Stop();

  const std::string& path() const { return options_.path; }

 private:
  class Conn;
  void Loop();
  void Accept();
  // Reads and handles what `conn` has; false if it must be closed.
  bool Service(Conn& conn);
  bool Handle(Conn& conn, std::string_view data, std::vector<UniqueFd> fds);
  void CloseConn(uint64_t key);
  // Closes every connection whose reply queue overflowed.
  void CloseOverflowed();
  bool Reply(Conn& conn, uint64_t request_id, const absl::Status& status,
             std::string_view reason);
  void Count(std::string_view reason);

  Broker* const broker_;
  const Options options_;
  const ErrorCounter count_error_;
  UniqueFd listener_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: Stop()
  UniqueFd kick_;  // eventfd: a connection overflowed (any thread)
  std::thread thread_;
  uint64_t next_key_ = 3;  // 0: wake, 1: listener, 2: kick
  // Touched only by the loop thread (and by Stop after joining it).
  absl::flat_hash_map<uint64_t, std::shared_ptr<Conn>> conns_;
};

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_FD_SERVER_H_
