// GPU memory through NVML, loaded at run time so tensorpagerd runs (without
// GPU figures) on hosts that lack the NVIDIA driver, and builds without the
// CUDA toolkit.
#ifndef TENSORPAGER_SERVER_PRESSURE_NVML_GPU_SOURCE_H_
#define TENSORPAGER_SERVER_PRESSURE_NVML_GPU_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/pressure/gpu_source.h"

namespace tensorpager::server {

class NvmlGpuSource final : public GpuSource {
 public:
  static constexpr absl::string_view kDefaultLibrary = "libnvidia-ml.so.1";

  // Loads `library`, initializes NVML and enumerates the devices.
  // NOT_FOUND when the library cannot be loaded (no NVIDIA driver),
  // FAILED_PRECONDITION when NVML does not initialize (driver/library
  // mismatch, no device nodes in the container), UNIMPLEMENTED when the
  // library lacks a required entry point.
  static absl::StatusOr<std::unique_ptr<NvmlGpuSource>> Open(
      absl::string_view library = kDefaultLibrary);

  ~NvmlGpuSource() override;
  NvmlGpuSource(const NvmlGpuSource&) = delete;
  NvmlGpuSource& operator=(const NvmlGpuSource&) = delete;

  absl::string_view name() const override { return "nvml"; }
  absl::StatusOr<std::vector<GpuMemory>> Sample() override;

  size_t device_count() const;

 private:
  struct Api;
  explicit NvmlGpuSource(std::unique_ptr<Api> api);

  std::unique_ptr<Api> api_;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_NVML_GPU_SOURCE_H_
