// Where device-wide GPU memory figures come from. NVML on a machine with
// NVIDIA's driver; tests substitute a fake behind the same interface.
#ifndef TENSORPAGER_SERVER_PRESSURE_GPU_SOURCE_H_
#define TENSORPAGER_SERVER_PRESSURE_GPU_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::server {

struct GpuMemory {
  // The device index as the source numbers it (NVML index).
  uint32_t device = 0;
  std::string name;  // "NVIDIA H100 80GB HBM3"; may be empty
  uint64_t used_bytes = 0;
  uint64_t total_bytes = 0;
};

class GpuSource {
 public:
  virtual ~GpuSource() = default;

  // Short name used as the snapshot's source ("nvml").
  virtual absl::string_view name() const = 0;
  // One entry per device, in index order. Called from one thread at a time.
  virtual absl::StatusOr<std::vector<GpuMemory>> Sample() = 0;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_GPU_SOURCE_H_
