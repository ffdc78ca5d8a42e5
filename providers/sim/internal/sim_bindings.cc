#include "providers/sim/internal/sim_bindings.h"

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/mapping.h"
#include "base/status_macros.h"
#include "providers/flow.h"
#include "providers/sim/internal/rx_path.h"
#include "providers/sim/internal/tx_path.h"

namespace devmem::sim_internal {
namespace {

absl::Status ValidateFlow(const Flow& flow, const std::string& ctx) {
  absl::Status status = CheckFlow(flow);
  if (status.ok()) return status;
  return ErrnoToStatus(EINVAL, absl::StrCat(ctx, ": ", status.message()));
}

class SimFlowRule final : public FlowRule {
 public:
  SimFlowRule(std::shared_ptr<SimKernel> kernel, std::string device,
              uint32_t rule_id)
      : kernel_(std::move(kernel)),
        device_(std::move(device)),
        rule_id_(rule_id) {}
  ~SimFlowRule() override { kernel_->RemoveFlow(device_, rule_id_); }
  uint32_t rule_id() const override { return rule_id_; }

 private:
  std::shared_ptr<SimKernel> kernel_;
  const std::string device_;
  const uint32_t rule_id_;
};

class SimPreparation final : public DevicePreparation {
 public:
  SimPreparation(std::shared_ptr<SimKernel> kernel, std::string device,
                 uint64_t prep_id, std::string description)
      : kernel_(std::move(kernel)),
        device_(std::move(device)),
        prep_id_(prep_id),
        description_(std::move(description)) {}
  ~SimPreparation() override { kernel_->Unprepare(device_, prep_id_); }
  std::string Describe() const override { return description_; }

 private:
  std::shared_ptr<SimKernel> kernel_;
  const std::string device_;
  const uint64_t prep_id_;
  const std::string description_;
};

// What RX and TX bindings share.
class SimBindingBase : public ProviderBinding {
 public:
  SimBindingBase(std::shared_ptr<SimKernel> kernel, uint32_t id, bool rx,
                 std::string device, std::vector<uint32_t> queues)
      : kernel_(std::move(kernel)),
        id_(id),
        rx_(rx),
        device_(std::move(device)),
        queues_(std::move(queues)),
        name_(absl::StrCat(device_, " binding ", id_)) {}

  uint32_t id() const override { return id_; }
  bool rx() const override { return rx_; }
  const std::string& device() const override { return device_; }
  const std::vector<uint32_t>& queue_ids() const override { return queues_; }

 protected:
  absl::Status NotRx(const char* op) const {
    return absl::FailedPreconditionError(
        absl::StrCat(name_, ": ", op, ": a TX binding has no RX path"));
  }

  const std::shared_ptr<SimKernel> kernel_;
  const uint32_t id_;
  const bool rx_;
  const std::string device_;
  const std::vector<uint32_t> queues_;
  const std::string name_;
};

class SimRxBinding final : public SimBindingBase {
 public:
  SimRxBinding(std::shared_ptr<SimKernel> kernel, uint32_t id,
               std::string device, std::vector<uint32_t> queues,
               std::shared_ptr<Mapping> mapping, std::shared_ptr<Region> region,
               std::unique_ptr<RxPath> path)
      : SimBindingBase(std::move(kernel), id, /*rx=*/true, std::move(device),
                       std::move(queues)),
        mapping_(std::move(mapping)),
        region_(std::move(region)),
        path_(std::move(path)) {}

  ~SimRxBinding() override {
    // The kernel's unbind: stop steering link events here, stop the queue
    // (our thread), drop every token the user still holds, and let the
    // pool drain; the mapping goes when the last chunk is back.
    kernel_->DetachPath(device_, id_);
    path_->Stop();
    const RxPathCounters counters = path_->Counters();
    const BorrowerId borrower = path_->borrower();
    path_.reset();
    const uint64_t tokens = region_->ReleaseAllTokens(borrower);
    absl::StatusOr<RetireReport> report = region_->Retire(
        [mapping = std::move(mapping_)]() mutable { mapping.reset(); });
    kernel_->ReleaseBinding(device_, id_, /*rx=*/true, counters, 0);
    LogLine line(LogLevel::kInfo, "sim_unbind");
    line.Kv("binding", absl::StrCat(id_))
        .Kv("device", device_)
        .Kv("tokens_released", absl::StrCat(tokens));
    if (report.ok()) {
      line.Kv("outstanding_chunks", absl::StrCat(report->outstanding_chunks))
          .Kv("released", std::string(report->released ? "true" : "false"));
    } else {
      line.Kv("retire_error", report.status().ToString());
    }
  }

  absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(const Flow& flow) override {
    const std::string ctx = absl::StrCat(name_, ": add-flow");
    RETURN_IF_ERROR(ValidateFlow(flow, ctx));
    ASSIGN_OR_RETURN(
        uint32_t rule_id,
        kernel_->AddFlow(device_, id_, queues_.front(), flow, ctx));
    return std::unique_ptr<FlowRule>(
        new SimFlowRule(kernel_, device_, rule_id));
  }

  BindingStats Stats() const override {
    const RxPathCounters c = path_->Counters();
    BindingStats s;
    s.id = id_;
    s.bytes_received = c.bytes;
    s.frags = c.frags;
    s.alloc_fail = c.alloc_fail;
    s.pool = region_->Stats();
    return s;
  }

  std::optional<DataPath> TakeDataPath() override {
    UniqueFd job_end = path_->TakeJobEnd();
    if (!job_end.ok()) return std::nullopt;
    return DataPath{std::move(job_end), path_->endpoint()};
  }
  std::shared_ptr<Region> region() const override { return region_; }

  RxPath* path() const { return path_.get(); }

 private:
  std::shared_ptr<Mapping> mapping_;  // moved into the retire callback
  const std::shared_ptr<Region> region_;
  std::unique_ptr<RxPath> path_;
};

class SimTxBinding final : public SimBindingBase {
 public:
  SimTxBinding(std::shared_ptr<SimKernel> kernel, uint32_t id,
               std::string device, std::shared_ptr<Mapping> mapping,
               std::unique_ptr<TxPath> path)
      : SimBindingBase(std::move(kernel), id, /*rx=*/false, std::move(device),
                       {}),
        mapping_(std::move(mapping)),
        path_(std::move(path)) {}

  ~SimTxBinding() override {
    kernel_->DetachPath(device_, id_);
    path_->Stop();
    const uint64_t sent = path_->bytes_sent();
    path_.reset();
    kernel_->ReleaseBinding(device_, id_, /*rx=*/false, {}, sent);
    DEVMEM_LOG(kInfo, "sim_unbind")
        .Kv("binding", absl::StrCat(id_))
        .Kv("device", device_);
  }

  absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(const Flow&) override {
    return NotRx("add-flow");
  }
  BindingStats Stats() const override {
    BindingStats s;
    s.id = id_;
    s.bytes_sent = path_->bytes_sent();
    return s;
  }
  std::optional<DataPath> TakeDataPath() override {
    UniqueFd job_end = path_->TakeJobEnd();
    if (!job_end.ok()) return std::nullopt;
    return DataPath{std::move(job_end), ""};
  }
  std::shared_ptr<Region> region() const override { return nullptr; }

  TxPath* path() const { return path_.get(); }

 private:
  const std::shared_ptr<Mapping> mapping_;
  std::unique_ptr<TxPath> path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
    std::shared_ptr<SimKernel> kernel, const std::string& device,
    absl::Span<const uint32_t> rx_queues) {
  ASSIGN_OR_RETURN(SimKernel::Prepared p, kernel->Prepare(device, rx_queues));
  return std::unique_ptr<DevicePreparation>(new SimPreparation(
      std::move(kernel), device, p.id, std::move(p.description)));
}

absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
    std::shared_ptr<SimKernel> kernel, const RxBindSpec& spec) {
  const std::string ctx = absl::StrCat(spec.device, ": bind-rx");
  ASSIGN_OR_RETURN(SimKernel::Reserved r, kernel->ReserveRx(spec));
  const uint32_t id = r.id;
  const uint32_t cs = spec.chunk_size;
  const std::vector<uint32_t>& queues = r.queues;
  const DmabufInfo& info = r.info;
  const bool link_up = r.link_up;
  // From here a failure undoes the reservation.
  auto undo = absl::MakeCleanup(
      [&] { kernel->ReleaseBinding(spec.device, id, /*rx=*/true, {}, 0); });
  const std::string name = absl::StrCat(spec.device, " binding ", id);
  ASSIGN_OR_RETURN(Mapping mapped,
                   Mapping::Map(spec.dmabuf, info.size_bytes,
                                Mapping::Access::kReadWrite, name));
  auto mapping = std::make_shared<Mapping>(std::move(mapped));
  absl::StatusOr<std::shared_ptr<Region>> region =
      Region::Create(RegionOptions{.size_bytes = info.size_bytes,
                                   .chunk_size = cs,
                                   .cpu_base = mapping->data(),
                                   .name = name});
  if (!region.ok()) return WithContext(region.status(), ctx);
  ASSIGN_OR_RETURN(
      std::unique_ptr<RxPath> path,
      RxPath::Create(sim_internal::RxPathOptions{.name = name,
                                                 .binding_id = id,
                                                 .region = *region,
                                                 .cpu_base = mapping->data(),
                                                 .link_up = link_up}));
  std::unique_ptr<SimRxBinding> binding(
      new SimRxBinding(kernel, id, spec.device, queues, std::move(mapping),
                       std::move(*region), std::move(path)));
  std::move(undo).Cancel();
  kernel->AttachPath(spec.device, id, binding->path(), nullptr);
  DEVMEM_LOG(kInfo, "sim_bind_rx")
      .Kv("binding", absl::StrCat(id))
      .Kv("device", spec.device)
      .Kv("queues", absl::StrJoin(queues, ","))
      .Kv("bytes", absl::StrCat(info.size_bytes))
      .Kv("chunk_size", absl::StrCat(cs))
      .Kv("exporter", info.exporter);
  return std::unique_ptr<ProviderBinding>(std::move(binding));
}

absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
    std::shared_ptr<SimKernel> kernel, const TxBindSpec& spec) {
  ASSIGN_OR_RETURN(SimKernel::Reserved r, kernel->ReserveTx(spec));
  const uint32_t id = r.id;
  const DmabufInfo& info = r.info;
  const bool link_up = r.link_up;
  auto undo = absl::MakeCleanup(
      [&] { kernel->ReleaseBinding(spec.device, id, /*rx=*/false, {}, 0); });
  const std::string name = absl::StrCat(spec.device, " binding ", id);
  ASSIGN_OR_RETURN(Mapping mapped,
                   Mapping::Map(spec.dmabuf, info.size_bytes,
                                Mapping::Access::kReadWrite, name));
  auto mapping = std::make_shared<Mapping>(std::move(mapped));
  ASSIGN_OR_RETURN(
      std::unique_ptr<TxPath> path,
      TxPath::Create(sim_internal::TxPathOptions{.name = name,
                                                 .cpu_base = mapping->data(),
                                                 .size = mapping->size(),
                                                 .link_up = link_up}));
  std::unique_ptr<SimTxBinding> binding(new SimTxBinding(
      kernel, id, spec.device, std::move(mapping), std::move(path)));
  std::move(undo).Cancel();
  kernel->AttachPath(spec.device, id, nullptr, binding->path());
  DEVMEM_LOG(kInfo, "sim_bind_tx")
      .Kv("binding", absl::StrCat(id))
      .Kv("device", spec.device)
      .Kv("bytes", absl::StrCat(info.size_bytes));
  return std::unique_ptr<ProviderBinding>(std::move(binding));
}

}  // namespace devmem::sim_internal
