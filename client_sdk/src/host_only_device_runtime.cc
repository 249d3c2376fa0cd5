// The runtime of host mode: no devices; "pinned" host memory is ordinary
// page-aligned memory, since nothing needs it page-locked.
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "tensorpager/device_runtime.h"

namespace tensorpager {
namespace {

constexpr size_t kPage = 4096;

class HostOnlyRuntime final : public DeviceRuntime {
 public:
  explicit HostOnlyRuntime(std::string reason) : reason_(std::move(reason)) {}

  std::string name() const override { return "host mode"; }
  int device_count() const override { return 0; }
  std::string unavailable_reason() const override { return reason_; }

  absl::StatusOr<void*> AllocDevice(int device, size_t) override {
    return NoDevice(device);
  }
  void FreeDevice(int, void*) override {}
  absl::StatusOr<void*> AllocPinned(size_t bytes) override {
    void* p = std::aligned_alloc(kPage, (bytes + kPage - 1) / kPage * kPage);
    if (p == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("out of host memory allocating ", bytes, " bytes"));
    }
    return p;
  }
  void FreePinned(void* ptr) override { std::free(ptr); }
  absl::StatusOr<std::unique_ptr<DeviceStream>> CreateStream(int device,
                                                             int) override {
    return NoDevice(device);
  }
  absl::Status MemoryInfo(int device, uint64_t*, uint64_t*) override {
    return NoDevice(device);
  }
  absl::Status Zero(int device, void*, size_t) override {
    return NoDevice(device);
  }

 private:
  absl::Status NoDevice(int device) const {
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA device ", device, ": the SDK runs in host mode (",
                     reason_, "); use Placement::Host()"));
  }

  std::string reason_;
};

}  // namespace

std::shared_ptr<DeviceRuntime> HostOnlyDeviceRuntime(std::string reason) {
  return std::make_shared<HostOnlyRuntime>(std::move(reason));
}

}  // namespace tensorpager
