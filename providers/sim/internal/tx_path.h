// TxPath: the simulated NIC's transmit path of one TX binding: a loopback TCP
// connection and one thread that writes queued ranges of the mapped buffer
// and reports MSG_ZEROCOPY-style completions. See providers/sim/
// sim_provider.h for the behaviour; this is internal.
//
// Thread safety: every public method is thread-safe. The sink is called on
// the path's thread without any lock held.
#ifndef DEVMEM_PROVIDERS_SIM_INTERNAL_TX_PATH_H_
#define DEVMEM_PROVIDERS_SIM_INTERNAL_TX_PATH_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "providers/provider.h"

namespace devmem::sim_internal {

struct TxPathOptions {
  std::string name;  // "sim0 binding 4", for messages
  std::byte* cpu_base = nullptr;
  uint64_t size = 0;
  bool link_up = true;
};

class TxPath {
 public:
  explicit TxPath(TxPathOptions options);
  TxPath(const TxPath&) = delete;
  TxPath& operator=(const TxPath&) = delete;
  // Stops the thread: queued sends are completed, the sink gets
  // Closed(Cancelled) unless it was closed before.
  ~TxPath();
  // What the destructor does, early (idempotent): after it, no sink call
  // and no byte more.
  void Stop();

  // Connects to `peer` ("127.0.0.1:PORT" or "[::1]:PORT"). InvalidArgument
  // for a bad address or null sink, FailedPrecondition when already started,
  // ENETDOWN when the link is down, connect's errno otherwise.
  absl::Status Start(std::string_view peer, std::shared_ptr<TxSink> sink);
  // Queues [offset, offset+length). EINVAL for length 0, EFAULT for a range
  // beyond the buffer, FailedPrecondition before Start, ENETDOWN / EPIPE once
  // the connection is gone.
  absl::StatusOr<uint32_t> Send(uint64_t offset, uint64_t length);
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
  void Run(std::shared_ptr<TxSink> sink);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes all of `p`; the errno on failure, 0 on success.
  int WriteAll(const Pending& p);

  const TxPathOptions options_;
  int fd_ = -1;  // set by Start() before the thread starts; closed in ~TxPath

  mutable Mutex mu_;
  CondVar cv_;  // queue_, stop_ or link_up_ changed
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool link_up_ ABSL_GUARDED_BY(mu_);
  // Set once the connection is gone; Send() answers with it.
  absl::Status closed_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> bytes_sent_{0};
  std::thread thread_;
};

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_TX_PATH_H_
