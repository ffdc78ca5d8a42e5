// RxPath: the simulated NIC's receive path of one RX binding: a loopback TCP
// listener standing for the steered flow and one thread that receives into
// chunks of the binding's Region and delivers dmabuf_cmsg records to the
// sink. See providers/sim/sim_provider.h for the behaviour; this is internal.
//
// Thread safety: every public method is thread-safe. The sink is called on
// the path's thread without any lock held.
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
#include "absl/types/span.h"
#include "base/mutex.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "pool/region.h"
#include "providers/provider.h"

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
  // Opens the listener and starts the thread. Errors: the socket call's
  // errno.
  static absl::StatusOr<std::unique_ptr<RxPath>> Create(RxPathOptions options);
  RxPath(const RxPath&) = delete;
  RxPath& operator=(const RxPath&) = delete;
  // Stops and joins the thread; closes the endpoint. Tokens stay lent (the
  // binding releases them).
  ~RxPath();
  // What the destructor does, early (idempotent): after it, no sink call
  // and no byte more.
  void Stop();

  const std::string& endpoint() const { return endpoint_; }
  // The borrower id tokens are lent under (the binding id).
  BorrowerId borrower() const { return options_.binding_id; }

  // FailedPrecondition if a sink was already given; InvalidArgument for null.
  absl::Status StartRx(std::shared_ptr<RxSink> sink);
  TokenRelease ReturnTokens(absl::Span<const TokenRange> ranges);
  void SetLinkUp(bool up);
  RxPathCounters Counters() const;

 private:
  explicit RxPath(RxPathOptions options);
  void Run();
  void Wake();
  // Receives what the socket holds (bounded); false when the connection
  // ended (it was closed and the sink told).
  bool Receive(int conn, RxSink& sink, bool& dry);

  const RxPathOptions options_;
  const uint32_t chunk_size_;
  const uint32_t chunk_shift_;
  const uint32_t max_chunks_per_read_;
  UniqueFd listener_;
  UniqueFd event_;  // eventfd: stop, sink, link change, tokens returned
  std::string endpoint_;

  Mutex mu_;
  std::shared_ptr<RxSink> sink_ ABSL_GUARDED_BY(mu_);

  std::atomic<bool> stop_{false};
  std::atomic<bool> link_up_;
  // Set by the thread while the pool is dry; whoever returns tokens then
  // wakes it.
  std::atomic<bool> stalled_{false};

  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> frags_{0};
  std::atomic<uint64_t> packets_{0};
  std::atomic<uint64_t> alloc_fail_{0};

  // Scratch space of the thread (touched by it only).
  std::vector<Chunk> scratch_chunks_;
  std::vector<iovec> scratch_iov_;
  std::vector<uapi::DmabufCmsg> scratch_frags_;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_RX_PATH_H_
