// RxPath: the simulated NIC's receive path of one RX binding: a loopback TCP
// listener standing for the steered flow, the binding's data-path socket
// (base/sim_datapath.h) and one thread serving both. The thread receives
// into chunks of the binding's Region, lends each filled chunk as a token,
// sends the frag records to the job and takes tokens back from it. See
// providers/sim/sim_provider.h for the behaviour; this is internal.
//
// Thread safety: every public method is thread-safe.
#ifndef DEVMEM_PROVIDERS_SIM_INTERNAL_RX_PATH_H_
#define DEVMEM_PROVIDERS_SIM_INTERNAL_RX_PATH_H_

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "pool/region.h"
#include "providers/sim/internal/dp_socket.h"

namespace devmem::sim_internal {

struct RxPathOptions {
  std::string name;  // "sim0 binding 3", for messages
  uint32_t binding_id = 0;
  std::shared_ptr<Region> region;
  std::byte* cpu_base = nullptr;  // where chunk 0 of the region is mapped
  bool link_up = true;
};

struct RxPathCounters {
  uint64_t bytes = 0;
  uint64_t frags = 0;
  uint64_t packets = 0;     // receive calls that brought data
  uint64_t alloc_fail = 0;  // stalls: data waiting, pool dry
};

class RxPath {
 public:
  // Opens the listener and the data-path socket and starts the thread.
  // Errors: the socket calls' errno.
  static absl::StatusOr<std::unique_ptr<RxPath>> Create(RxPathOptions options);
  RxPath(const RxPath&) = delete;
  RxPath& operator=(const RxPath&) = delete;
  // Stops and joins the thread; closes the endpoint and the sim's end of
  // the data path (the job reads EOF). Tokens stay lent (the binding
  // releases them).
  ~RxPath();
  // What the destructor does, early (idempotent).
  void Stop();

  const std::string& endpoint() const { return endpoint_; }
  // The borrower id tokens are lent under (the binding id).
  BorrowerId borrower() const { return options_.binding_id; }
  // The job's end of the data path; invalid after the first call.
  UniqueFd TakeJobEnd();

  void SetLinkUp(bool up);
  RxPathCounters Counters() const;

 private:
  enum class Received { kMore, kDry, kEnded };

  explicit RxPath(RxPathOptions options);
  void Run();
  void Wake();
  // Receives what `conn` holds (bounded) and sends the frags as one packet.
  Received Receive(int conn);
  // Serves what the job sent (token returns); true when tokens came back.
  bool ServeJob();
  // The job closed its end: every token it holds goes back, and no flow is
  // accepted any more.
  void JobGone();

  const RxPathOptions options_;
  const uint32_t chunk_size_;
  const uint32_t chunk_shift_;
  const uint32_t max_chunks_per_read_;
  UniqueFd listener_;  // the thread's once running
  UniqueFd event_;     // eventfd: stop, link change
  std::string endpoint_;
  DpSocket dp_;  // the thread's once running

  Mutex mu_;
  UniqueFd job_end_ ABSL_GUARDED_BY(mu_);

  std::atomic<bool> stop_{false};
  std::atomic<bool> link_up_;

  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> frags_{0};
  std::atomic<uint64_t> packets_{0};
  std::atomic<uint64_t> alloc_fail_{0};

  // Scratch space of the thread (touched by it only).
  std::vector<Chunk> scratch_chunks_;
  std::vector<iovec> scratch_iov_;
  std::vector<uapi::DmabufCmsg> scratch_frags_;
  std::string scratch_in_;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_RX_PATH_H_
