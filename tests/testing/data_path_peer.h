// DataPathPeer: the job's side of a sim binding's data path
// (base/sim_datapath.h), for tests of the sim provider, the broker and the
// daemon: a thread reads every packet the sim sends and records it; requests
// (kDontneed, kTxConnect, kTxSend) wait for their answer.
#ifndef DEVMEM_TESTS_TESTING_DATA_PATH_PEER_H_
#define DEVMEM_TESTS_TESTING_DATA_PATH_PEER_H_

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "base/sim_datapath.h"
#include "base/uapi.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "pool/region.h"
#include "pool/token_range.h"
#include "providers/provider.h"

namespace devmem::testing {

// How long a test waits for what the sim promised.
inline constexpr std::chrono::seconds kDataPathWait{60};

// The job's side of a sim binding's data path (base/sim_datapath.h), for
// tests: a thread reads every packet the sim sends and records it (frags,
// flow ends, errors, TX completions); Dontneed/TxConnect/TxSend send a
// request and wait for its answer (the sim answers requests in order).
// Thread-safe.
class DataPathPeer {
 public:
  // Takes `binding`'s data path (which must have one) and starts reading.
  explicit DataPathPeer(ProviderBinding& binding) {
    std::optional<DataPath> dp = binding.TakeDataPath();
    if (!dp.has_value()) {
      ADD_FAILURE() << "binding has no data path";
      return;
    }
    endpoint_ = dp->rx_endpoint;
    Start(std::move(dp->job_end));
  }
  explicit DataPathPeer(UniqueFd fd) { Start(std::move(fd)); }
  ~DataPathPeer() { Close(); }
  DataPathPeer(const DataPathPeer&) = delete;
  DataPathPeer& operator=(const DataPathPeer&) = delete;

  // Closes the job's end (the sim then releases its tokens) and stops.
  void Close() {
    if (fd_.ok()) ::shutdown(fd_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    fd_.reset();
  }

  const std::string& endpoint() const { return endpoint_; }
  int fd() const { return fd_.get(); }

  // ---- RX ----
  // Waits for at least `n` flow ends; false on timeout.
  bool WaitClosed(size_t n) {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, kDataPathWait, [&] {
      mu_.AssertHeld();
      return closed_.size() >= n;
    });
  }
  bool WaitBytes(uint64_t bytes) {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, kDataPathWait, [&] {
      mu_.AssertHeld();
      return bytes_ >= bytes;
    });
  }
  // Waits for EOF (the binding is gone); false on timeout.
  bool WaitEof() {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, kDataPathWait, [&] {
      mu_.AssertHeld();
      return eof_;
    });
  }
  // Waits for frags or `closes` flow ends; returns the frags (maybe none).
  std::vector<uapi::DmabufCmsg> TakeOrClosed(size_t closes) {
    MutexLock lock(mu_);
    cv_.AwaitFor(mu_, kDataPathWait, [&] {
      mu_.AssertHeld();
      return !pending_.empty() || closed_.size() >= closes;
    });
    std::vector<uapi::DmabufCmsg> out;
    out.swap(pending_);
    return out;
  }
  std::vector<uapi::DmabufCmsg> Take() {
    MutexLock lock(mu_);
    std::vector<uapi::DmabufCmsg> out;
    out.swap(pending_);
    return out;
  }
  uint64_t bytes() const {
    MutexLock lock(mu_);
    return bytes_;
  }
  std::vector<absl::Status> closed() const {
    MutexLock lock(mu_);
    return closed_;
  }
  size_t max_batch() const {
    MutexLock lock(mu_);
    return max_batch_;
  }
  bool eof() const {
    MutexLock lock(mu_);
    return eof_;
  }
  // kError answers, in order.
  std::vector<absl::Status> errors() const {
    MutexLock lock(mu_);
    return errors_;
  }
  // SO_DEVMEM_DONTNEED over the data path: freed, rejected, status.
  TokenRelease Dontneed(absl::Span<const TokenRange> ranges) {
    std::vector<uapi::DmabufToken> wire(ranges.size());
    std::memcpy(wire.data(), ranges.data(), ranges.size() * sizeof(wire[0]));
    std::optional<std::string> fixed =
        Call(simdp::Dontneed(wire), simdp::Type::kDontneedDone);
    if (!fixed.has_value()) return TokenRelease{0, 0, absl::UnknownError("?")};
    simdp::DontneedDone d;
    std::memcpy(&d, fixed->data(), sizeof(d));
    return TokenRelease{d.freed, d.rejected, simdp::ToStatus(d.status, "")};
  }

  // ---- TX ----
  absl::Status TxConnect(std::string_view peer) {
    return Accepted(Call(simdp::TxConnect(peer), simdp::Type::kTxAccepted))
        .status();
  }
  absl::StatusOr<uint32_t> TxSend(uint64_t offset, uint64_t length) {
    return Accepted(
        Call(simdp::TxSendPacket(offset, length), simdp::Type::kTxAccepted));
  }
  // Waits until every send id below `n` completed.
  bool WaitCompleted(uint32_t n) {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, kDataPathWait, [&] {
      mu_.AssertHeld();
      return next_completion_ >= n;
    });
  }
  uint32_t completed() const {
    MutexLock lock(mu_);
    return next_completion_;
  }

  // Sends raw bytes as one packet (bad-input tests).
  void SendRaw(std::string_view bytes) {
    ASSERT_EQ(::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Waits for `n` kError answers.
  bool WaitErrors(size_t n) {
    MutexLock lock(mu_);
    return cv_.AwaitFor(mu_, kDataPathWait, [&] {
      mu_.AssertHeld();
      return errors_.size() >= n;
    });
  }

 private:
  struct Answer {
    simdp::Type type;
    std::string fixed;
    std::string text;
  };

  void Start(UniqueFd fd) {
    fd_ = std::move(fd);
    thread_ = std::thread([this] { Run(); });
  }

  // Sends `packet` and waits for the next answer of type `want`.
  std::optional<std::string> Call(const std::string& packet, simdp::Type want,
                                  std::string* text = nullptr) {
    size_t before;
    {
      MutexLock lock(mu_);
      before = answers_seen_;
    }
    // Not under mu_: a send that waits for the sim must not stop the reader
    // thread from taking what the sim sends meanwhile.
    if (::send(fd_.get(), packet.data(), packet.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(packet.size())) {
      return std::nullopt;
    }
    MutexLock lock(mu_);
    if (!cv_.AwaitFor(mu_, kDataPathWait,
                      [&] {
                        mu_.AssertHeld();
                        return answers_seen_ > before || eof_;
                      }) ||
        answers_.empty()) {
      return std::nullopt;
    }
    Answer a = std::move(answers_.front());
    answers_.erase(answers_.begin());
    EXPECT_EQ(a.type, want);
    last_text_ = a.text;
    if (text != nullptr) *text = a.text;
    return a.fixed;
  }

  absl::StatusOr<uint32_t> Accepted(const std::optional<std::string>& fixed) {
    if (!fixed.has_value()) return absl::UnknownError("no answer");
    simdp::TxAccepted a;
    std::memcpy(&a, fixed->data(), sizeof(a));
    absl::Status s;
    {
      MutexLock lock(mu_);
      s = simdp::ToStatus(a.status, last_text_);
    }
    if (!s.ok()) return s;
    return a.send_id;
  }

  void Run() {
    std::string buf(simdp::kMaxPacketBytes, '\0');
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n <= 0) {
        MutexLock lock(mu_);
        eof_ = true;
        cv_.SignalAll();
        return;
      }
      absl::StatusOr<simdp::Packet> p =
          simdp::Parse(std::string_view(buf.data(), static_cast<size_t>(n)));
      if (!p.ok()) {
        ADD_FAILURE() << "sim sent a bad packet: " << p.status();
        continue;
      }
      MutexLock lock(mu_);
      switch (p->type) {
        case simdp::Type::kRxFrags:
          for (uint32_t i = 0; i < p->count; ++i) {
            const auto f = simdp::Unit<uapi::DmabufCmsg>(*p, i);
            pending_.push_back(f);
            bytes_ += f.frag_size;
          }
          max_batch_ = std::max<size_t>(max_batch_, p->count);
          break;
        case simdp::Type::kClosed:
          closed_.push_back(
              simdp::ToStatus(simdp::Fixed<simdp::StatusRecord>(*p), p->units));
          break;
        case simdp::Type::kError:
          errors_.push_back(
              simdp::ToStatus(simdp::Fixed<simdp::StatusRecord>(*p), p->units));
          break;
        case simdp::Type::kTxCompletion: {
          const auto c = simdp::Fixed<simdp::TxCompletion>(*p);
          // Completions arrive in order and must not overlap or skip.
          EXPECT_EQ(c.lo, next_completion_) << "completion gap";
          EXPECT_LE(c.lo, c.hi);
          next_completion_ = c.hi + 1;
          break;
        }
        case simdp::Type::kDontneedDone:
        case simdp::Type::kTxAccepted:
          answers_.push_back(
              Answer{p->type, std::string(p->fixed), std::string(p->units)});
          ++answers_seen_;
          break;
        default:
          ADD_FAILURE() << "sim sent a job-side packet type";
      }
      cv_.SignalAll();
    }
  }

  UniqueFd fd_;
  std::string endpoint_;
  std::thread thread_;
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<uapi::DmabufCmsg> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
  std::vector<Answer> answers_ ABSL_GUARDED_BY(mu_);
  size_t answers_seen_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_text_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_batch_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t next_completion_ ABSL_GUARDED_BY(mu_) = 0;
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_TESTING_DATA_PATH_PEER_H_
