// A GPU source for tests: no machine running the unit tests can be relied on
// to have GPUs, let alone ones whose memory the test controls.
#ifndef TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_GPU_SOURCE_H_
#define TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_GPU_SOURCE_H_

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/pressure/gpu_source.h"

namespace tensorpager::server::testing {

// The test keeps a FakeGpuControl to change what the source (owned by the
// monitor) reports next.
class FakeGpuControl {
 public:
  void Set(std::vector<GpuMemory> gpus) {
    std::lock_guard lock(mu_);
    gpus_ = std::move(gpus);
    error_ = absl::OkStatus();
  }
  void Fail(absl::Status error) {
    std::lock_guard lock(mu_);
    error_ = std::move(error);
  }
  absl::StatusOr<std::vector<GpuMemory>> Get() {
    std::lock_guard lock(mu_);
    if (!error_.ok()) return error_;
    return gpus_;
  }

 private:
  std::mutex mu_;  // guards gpus_ and error_
  std::vector<GpuMemory> gpus_;
  absl::Status error_;
};

class FakeGpuSource final : public GpuSource {
 public:
  explicit FakeGpuSource(std::shared_ptr<FakeGpuControl> control)
      : control_(std::move(control)) {}
  absl::string_view name() const override { return "fake"; }
  absl::StatusOr<std::vector<GpuMemory>> Sample() override {
    return control_->Get();
  }

 private:
  std::shared_ptr<FakeGpuControl> control_;
};

}  // namespace tensorpager::server::testing

#endif  // TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_GPU_SOURCE_H_
