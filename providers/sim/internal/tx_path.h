// TxPath: the simulated NIC's transmit path of one TX binding: the
// binding's data-path socket (base/sim_datapath.h), a loopback TCP
// connection to the job's peer, and one thread that takes the job's
// kTxConnect / kTxSend, queues the sends (at most kMaxQueuedSends; beyond
// that it stops reading the job, as a full socket buffer blocks sendmsg),
// writes the sent ranges of the mapped buffer without blocking and reports
// MSG_ZEROCOPY-style completions. See providers/sim/sim_provider.h
// for the behaviour; this is internal.
//
// Thread safety: every public method is thread-safe.
#ifndef DEVMEM_PROVIDERS_SIM_INTERNAL_TX_PATH_H_
#define DEVMEM_PROVIDERS_SIM_INTERNAL_TX_PATH_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "base/sim_datapath.h"
#include "base/unique_fd.h"
#include "providers/sim/internal/dp_socket.h"

namespace devmem::sim_internal {

struct TxPathOptions {
  std::string name;  // "sim0 binding 4", for messages
  std::byte* cpu_base = nullptr;
  uint64_t size = 0;
  bool link_up = true;
};

class TxPath {
 public:
  static constexpr size_t kMaxQueuedSends = 4096;

  // Makes the data-path socket and starts the thread. Errors: the socket
  // calls' errno.
  static absl::StatusOr<std::unique_ptr<TxPath>> Create(TxPathOptions options);
  TxPath(const TxPath&) = delete;
  TxPath& operator=(const TxPath&) = delete;
  // Stops the thread and closes the connection and the sim's end of the
  // data path: the job reads EOF (queued sends are dropped unsent).
  ~TxPath();
  // What the destructor does, early (idempotent).
  void Stop();

  // The job's end of the data path; invalid after the first call.
  UniqueFd TakeJobEnd();
  // Down: the connection closes (queued sends complete, kClosed ENETDOWN);
  // connects are refused with ENETDOWN until it is up.
  void SetLinkUp(bool up);
  uint64_t bytes_sent() const {
    return bytes_sent_.load(std::memory_order_relaxed);
  }

 private:
  struct Pending {
    uint32_t id;
    uint64_t offset;
    uint64_t length;
  };

  explicit TxPath(TxPathOptions options);
  void Run();
  void Wake();
  bool link_up() const;
  // Takes what the job sent: connects, queues sends, answers each.
  void ServeJob();
  void Connect(std::string_view peer);
  absl::StatusOr<uint32_t> Accept(const simdp::TxSend& send);
  // Writes what the socket takes now and reports what completed; a failed
  // write closes the connection.
  void Write();
  // Ends the connection with `why` (kClosed): queued sends are completed
  // (their buffer ranges are free again) and later sends refused.
  void CloseConnection(const absl::Status& why);

  const TxPathOptions options_;
  UniqueFd event_;  // eventfd: stop, link change
  DpSocket dp_;     // the thread's once running

  // The thread's state.
  UniqueFd tcp_;  // nonblocking
  bool connected_once_ = false;
  uint32_t next_id_ = 0;
  absl::Status closed_;  // set once the connection is gone
  std::deque<Pending> queue_;
  uint64_t front_written_ = 0;  // bytes of queue_.front() already sent
  std::string scratch_in_;

  mutable Mutex mu_;
  UniqueFd job_end_ ABSL_GUARDED_BY(mu_);
  bool link_up_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};

  std::atomic<uint64_t> bytes_sent_{0};
  std::thread thread_;  // last
};

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_TX_PATH_H_
