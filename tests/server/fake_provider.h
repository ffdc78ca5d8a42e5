// FakeProvider: an in-memory Provider for server tests, until (and besides)
// the sim provider. Devices have N RX queues; bindings mark queues bound and
// free them on destruction; any step can be told to fail once, so tests can
// check that Bind unwinds. Counters say what is still held.
//
// Thread safety: thread-safe.
#ifndef DEVMEM_TESTS_SERVER_FAKE_PROVIDER_H_
#define DEVMEM_TESTS_SERVER_FAKE_PROVIDER_H_

#include <sys/socket.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/errno_status.h"
#include "pool/region.h"
#include "providers/common/dmabuf_check.h"
#include "providers/provider.h"

namespace devmem::testing {

class FakeProvider : public Provider {
 public:
  enum class Fail { kNone, kPrepare, kBindRx, kBindTx, kAddFlow };

  struct State {
    absl::Mutex mu;
    std::map<std::string, std::map<uint32_t, uint32_t>> bound;  // dev->q->id
    uint32_t next_id = 1;
    Fail fail = Fail::kNone;
    std::atomic<int> preparations{0};
    std::atomic<int> bindings{0};
    std::atomic<int> flows{0};
    // Each binding makes a data path (a socketpair, as the sim does); the
    // fake keeps its own end until the binding goes.
    bool data_paths = false;
    // Each RX binding gets a Region of 16 chunks over heap memory (as the
    // sim's page pool); the last one made is kept here for tests.
    bool regions = false;
    std::shared_ptr<Region> last_region;
    // ReleasedInflight per binding id (a kernel's lingering page pools).
    std::map<uint32_t, uint64_t> inflight;
  };

  explicit FakeProvider(std::map<std::string, uint32_t> devices = {{"fake0",
                                                                    8}})
      : devices_(std::move(devices)), state_(std::make_shared<State>()) {}

  State& state() { return *state_; }
  void FailNext(Fail f) {
    absl::MutexLock l(&state_->mu);
    state_->fail = f;
  }

  std::string_view name() const override { return "fake"; }

  absl::StatusOr<std::vector<DeviceInfo>> ListDevices() override {
    absl::MutexLock l(&state_->mu);
    std::vector<DeviceInfo> out;
    uint32_t ifindex = 1;
    for (const auto& [name, n] : devices_) {
      DeviceInfo d;
      d.name = name;
      d.ifindex = ifindex++;
      d.rx_queues = n;
      d.tx_queues = n;
      d.up = true;
      d.numa_node = 0;
      d.header_split = HeaderSplit::kEnabled;
      for (uint32_t q = 0; q < n; ++q) {
        QueueInfo qi;
        qi.id = q;
        auto& b = state_->bound[name];
        if (auto it = b.find(q); it != b.end()) qi.binding_id = it->second;
        d.queues.push_back(qi);
      }
      for (uint32_t q = 0; q < n; ++q) {
        QueueInfo qi;
        qi.id = q;
        qi.rx = false;
        d.queues.push_back(qi);
      }
      out.push_back(std::move(d));
    }
    return out;
  }

  absl::StatusOr<DmabufInfo> CheckDmabuf(BorrowedFd fd) override {
    return CheckDmabufFd(fd);
  }

  absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
      std::string_view device, absl::Span<const uint32_t> rx_queues) override {
    if (TakeFail(Fail::kPrepare)) {
      return ErrnoToStatus(EOPNOTSUPP, "fake: prepare");
    }
    class Prep : public DevicePreparation {
     public:
      explicit Prep(std::shared_ptr<State> s) : s_(std::move(s)) {
        ++s_->preparations;
      }
      ~Prep() override { --s_->preparations; }
      std::string Describe() const override { return "fake: hds on"; }

     private:
      std::shared_ptr<State> s_;
    };
    return std::unique_ptr<DevicePreparation>(new Prep(state_));
  }

  class Binding : public ProviderBinding {
   public:
    Binding(std::shared_ptr<State> s, uint32_t id, std::string dev, bool rx,
            std::vector<uint32_t> queues)
        : s_(std::move(s)),
          id_(id),
          dev_(std::move(dev)),
          rx_(rx),
          queues_(std::move(queues)) {
      ++s_->bindings;
      if (s_->regions && rx_) {
        memory_.resize(16 * 4096);
        absl::StatusOr<std::shared_ptr<Region>> r =
            Region::Create(RegionOptions{.size_bytes = memory_.size(),
                                         .chunk_size = 4096,
                                         .cpu_base = memory_.data(),
                                         .name = "fake"});
        if (r.ok()) region_ = *r;
        s_->last_region = region_;  // BindRx holds s_->mu
      }
      if (s_->data_paths) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
          own_end_ = UniqueFd(sv[0]);
          data_path_ = DataPath{UniqueFd(sv[1]), rx_ ? "127.0.0.1:9" : ""};
        }
      }
    }
    ~Binding() override {
      if (region_ != nullptr) {
        // As the sim: the memory goes when the last chunk is back.
        (void)region_->Retire([mem = std::make_shared<std::vector<std::byte>>(
                                   std::move(memory_))] {});
      }
      absl::MutexLock l(&s_->mu);
      for (uint32_t q : queues_) s_->bound[dev_].erase(q);
      --s_->bindings;
    }
    uint32_t id() const override { return id_; }
    bool rx() const override { return rx_; }
    const std::string& device() const override { return dev_; }
    const std::vector<uint32_t>& queue_ids() const override { return queues_; }
    absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(const Flow& f) override {
      {
        absl::MutexLock l(&s_->mu);
        if (s_->fail == Fail::kAddFlow) {
          s_->fail = Fail::kNone;
          return ErrnoToStatus(EINVAL, "fake: add flow");
        }
      }
      class Rule : public FlowRule {
       public:
        explicit Rule(std::shared_ptr<State> s) : s_(std::move(s)) {
          ++s_->flows;
        }
        ~Rule() override { --s_->flows; }
        uint32_t rule_id() const override { return 1; }

       private:
        std::shared_ptr<State> s_;
      };
      return std::unique_ptr<FlowRule>(new Rule(s_));
    }
    BindingStats Stats() const override {
      BindingStats s;
      s.id = id_;
      return s;
    }
    std::optional<DataPath> TakeDataPath() override {
      return std::exchange(data_path_, std::nullopt);
    }
    std::shared_ptr<Region> region() const override { return region_; }

   private:
    std::shared_ptr<State> s_;
    const uint32_t id_;
    const std::string dev_;
    const bool rx_;
    const std::vector<uint32_t> queues_;
    UniqueFd own_end_;
    std::optional<DataPath> data_path_;
    std::vector<std::byte> memory_;  // a region's chunks (kept by region_)
    std::shared_ptr<Region> region_;
  };

  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
      const RxBindSpec& spec) override {
    if (TakeFail(Fail::kBindRx)) return ErrnoToStatus(EBUSY, "fake: bind-rx");
    absl::MutexLock l(&state_->mu);
    auto dev = devices_.find(spec.device);
    if (dev == devices_.end()) return ErrnoToStatus(ENODEV, spec.device);
    auto& b = state_->bound[spec.device];
    for (uint32_t q : spec.queue_ids) {
      if (q >= dev->second) return ErrnoToStatus(EINVAL, "queue");
      if (b.count(q)) {
        return ErrnoToStatus(EEXIST, absl::StrCat(spec.device, " queue ", q));
      }
    }
    const uint32_t id = state_->next_id++;
    for (uint32_t q : spec.queue_ids) b[q] = id;
    return std::unique_ptr<ProviderBinding>(
        new Binding(state_, id, spec.device, true, spec.queue_ids));
  }

  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
      const TxBindSpec& spec) override {
    if (TakeFail(Fail::kBindTx)) return ErrnoToStatus(EBUSY, "fake: bind-tx");
    absl::MutexLock l(&state_->mu);
    if (!devices_.count(spec.device)) {
      return ErrnoToStatus(ENODEV, spec.device);
    }
    const uint32_t id = state_->next_id++;
    return std::unique_ptr<ProviderBinding>(
        new Binding(state_, id, spec.device, false, {}));
  }

  absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      std::string_view) override {
    return std::vector<QueueStats>{};
  }

  absl::StatusOr<uint64_t> ReleasedInflight(uint32_t id) override {
    absl::MutexLock l(&state_->mu);
    auto it = state_->inflight.find(id);
    return it == state_->inflight.end() ? 0 : it->second;
  }

 private:
  bool TakeFail(Fail f) {
    absl::MutexLock l(&state_->mu);
    if (state_->fail != f) return false;
    state_->fail = Fail::kNone;
    return true;
  }

  const std::map<std::string, uint32_t> devices_;
  std::shared_ptr<State> state_;
};

}  // namespace devmem::testing

#endif  // DEVMEM_TESTS_SERVER_FAKE_PROVIDER_H_
