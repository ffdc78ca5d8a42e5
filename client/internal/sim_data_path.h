// SimDataPath: the job's end of a sim binding's data-path socket
// (base/sim_datapath.h), for SimRx and the sim mode of TxSender. Internal
// to client/.
//
// Thread safety: not thread-safe; its RxSocket or TxSender owns it.
#ifndef DEVMEM_CLIENT_INTERNAL_SIM_DATA_PATH_H_
#define DEVMEM_CLIENT_INTERNAL_SIM_DATA_PATH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/sim_datapath.h"
#include "base/unique_fd.h"

namespace devmem::client_internal {

class SimDataPath {
 public:
  SimDataPath(UniqueFd fd, uint32_t binding_id)
      : fd_(std::move(fd)), binding_id_(binding_id) {}

  // Sends one whole packet (blocking). Unavailable once the binding is
  // gone (EPIPE).
  absl::Status Send(std::string_view packet);
  // The next packet, waiting up to `timeout`; nullopt when it passed. Its
  // views stay valid until the next Read(). Unavailable on EOF (the binding
  // was released), DataLoss for a packet that does not parse.
  absl::StatusOr<std::optional<simdp::Packet>> Read(absl::Duration timeout);

  // "binding 3: " for messages.
  std::string Context() const;
  // The status EOF stands for.
  absl::Status Released() const;

 private:
  UniqueFd fd_;
  const uint32_t binding_id_;
  std::string buf_;
  bool eof_ = false;
};

// poll()'s timeout for `timeout`, rounded up to whole milliseconds.
int PollTimeoutMs(absl::Duration timeout);

}  // namespace devmem::client_internal

#endif  // DEVMEM_CLIENT_INTERNAL_SIM_DATA_PATH_H_
