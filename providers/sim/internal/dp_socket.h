// DpSocket: the simulated NIC's end of one binding's data-path socket
// (base/sim_datapath.h). Nonblocking; the answers the job has not read yet
// wait here, bounded by simdp::kMaxQueuedReplies (a path stops reading the
// job while full, and stops producing frags while anything waits). Internal
// to providers/sim.
//
// Thread safety: not thread-safe; one path thread owns it.
#ifndef DEVMEM_PROVIDERS_SIM_INTERNAL_DP_SOCKET_H_
#define DEVMEM_PROVIDERS_SIM_INTERNAL_DP_SOCKET_H_

#include <poll.h>

#include <deque>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace devmem::sim_internal {

class DpSocket {
 public:
  // The pair: this end (nonblocking) and the job's (blocking, CLOEXEC).
  // Errors: socketpair's errno.
  static absl::StatusOr<DpSocket> Create(std::string_view name,
                                         UniqueFd* job_end);
  DpSocket() = default;
  DpSocket(DpSocket&&) = default;
  DpSocket& operator=(DpSocket&&) = default;

  // False once the job closed its end (or Close() ran).
  bool open() const { return fd_.ok(); }
  int fd() const { return fd_.get(); }
  // Something waits for the job to read it.
  bool backlogged() const { return !out_.empty(); }
  // The poll events to ask for: POLLIN unless full, POLLOUT while
  // backlogged, and the hang-up.
  short events() const;

  // Queues `packet` and sends what the socket takes now.
  void Send(std::string packet);
  // Sends what waits (on POLLOUT).
  void Flush();

  enum class Read { kPacket, kNone, kClosed };
  // One packet from the job into `buf` (at most `max_bytes`; a longer one
  // is cut, and `truncated` says so). kNone when nothing waits; kClosed
  // when the job closed its end (then this end is closed too).
  Read Recv(std::string* buf, size_t max_bytes, bool* truncated);

  void Close();

 private:
  UniqueFd fd_;
  std::deque<std::string> out_;
};

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_DP_SOCKET_H_
