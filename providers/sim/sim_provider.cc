#include "providers/sim/sim_provider.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "providers/common/dmabuf_check.h"
#include "providers/sim/internal/sim_bindings.h"
#include "providers/sim/internal/sim_kernel.h"
#include "providers/sim/sim_spec.h"

namespace devmem {
namespace {

using sim_internal::SimKernel;

// The Provider over one simulated kernel: device changes go to SimKernel,
// bindings and preparations are made by sim_bindings.
class SimProvider final : public Provider {
 public:
  explicit SimProvider(std::vector<SimDeviceSpec> specs)
      : kernel_(std::make_shared<SimKernel>(std::move(specs))), nic_(kernel_) {}

  std::string_view name() const override { return "sim"; }
  SimNic* nic() { return &nic_; }

  absl::StatusOr<std::vector<DeviceInfo>> ListDevices() override {
    return kernel_->ListDevices();
  }

  absl::StatusOr<DmabufInfo> CheckDmabuf(BorrowedFd fd) override {
    return CheckDmabufFd(fd);
  }

  absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
      std::string_view device, absl::Span<const uint32_t> rx_queues) override {
    return sim_internal::PrepareDevice(kernel_, std::string(device), rx_queues);
  }

  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
      const RxBindSpec& spec) override {
    return sim_internal::BindRx(kernel_, spec);
  }

  absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
      const TxBindSpec& spec) override {
    return sim_internal::BindTx(kernel_, spec);
  }

  absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      std::string_view device) override {
    return kernel_->GetQueueStats(std::string(device));
  }

 private:
  std::shared_ptr<SimKernel> kernel_;
  SimNic nic_;
};

}  // namespace

// ---- SimNic: the controls, each one call into the simulated kernel --------

SimNic::SimNic(std::shared_ptr<sim_internal::SimKernel> kernel)
    : kernel_(std::move(kernel)) {}

absl::Status SimNic::SetLinkUp(std::string_view device, bool up) {
  return kernel_->SetLinkUp(std::string(device), up);
}

absl::Status SimNic::SetHeaderSplit(std::string_view device,
                                    HeaderSplit value) {
  return kernel_->SetHeaderSplit(std::string(device), value);
}

absl::Status SimNic::SetHdsThresh(std::string_view device, uint32_t bytes) {
  return kernel_->SetHdsThresh(std::string(device), bytes);
}

absl::Status SimNic::SetHeaderSplitSupported(std::string_view device,
                                             bool supported) {
  return kernel_->SetHeaderSplitSupported(std::string(device), supported);
}

absl::StatusOr<std::vector<uint32_t>> SimNic::RssQueues(
    std::string_view device) const {
  return kernel_->RssQueues(std::string(device));
}

absl::StatusOr<std::vector<SimFlowRuleInfo>> SimNic::FlowRules(
    std::string_view device) const {
  return kernel_->FlowRules(std::string(device));
}

absl::StatusOr<uint32_t> SimNic::Preparations(std::string_view device) const {
  return kernel_->Preparations(std::string(device));
}

// ---- Factory ---------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Provider>> CreateSimProvider(
    const SimOptions& options) {
  ASSIGN_OR_RETURN(std::vector<SimDeviceSpec> specs,
                   ParseSimSpec(options.spec));
  return std::unique_ptr<Provider>(new SimProvider(std::move(specs)));
}

SimNic* GetSimNic(Provider* provider) {
  auto* sim = dynamic_cast<SimProvider*>(provider);
  return sim == nullptr ? nullptr : sim->nic();
}

}  // namespace devmem
