// A GPU source for tests: no machine running the unit tests can be relied on
// to have GPUs, let alone ones whose memory the test controls.
#ifndef TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_GPU_SOURCE_H_
#define TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_GPU_SOURCE_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/pressure/gpu_source.h"

namespace tensorpager::server::testing {

// The test keeps a FakeGpuControl to change what the source (owned by the
// monitor) reports next.
class FakeGpuControl {
 public:
  void Set(std::vector<GpuMemory> gpus) {
    absl::MutexLock lock(&mu_);
    gpus_ = std::move(gpus);
    error_ = absl::OkStatus();
  }
  void Fail(absl::Status error) {
    absl::MutexLock lock(&mu_);
    error_ = std::move(error);
  }
  absl::StatusOr<std::vector<GpuMemory>> Get() {
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return error_;
    return gpus_;
  }

 private:
  absl::Mutex mu_;
  std::vector<GpuMemory> gpus_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
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
