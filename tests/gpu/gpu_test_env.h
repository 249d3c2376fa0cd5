// What the GPU tests and tp-gpu-bench share: whether a CUDA device is
// there (skip without one, unless TP_REQUIRE_GPU=1 makes that a failure),
// and checked CUDA runtime calls.
#ifndef TENSORPAGER_TESTS_GPU_GPU_TEST_ENV_H_
#define TENSORPAGER_TESTS_GPU_GPU_TEST_ENV_H_

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "tensorpager/device_runtime.h"

namespace tensorpager::testing {

// Empty when a device is usable; otherwise why not.
inline std::string NoGpuReason() {
  std::shared_ptr<DeviceRuntime> rt = DefaultDeviceRuntime();
  return rt->device_count() > 0 ? std::string() : rt->unavailable_reason();
}

inline bool GpuRequired() {
  const char* v = std::getenv("TP_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

inline std::string CudaText(cudaError_t e) {
  return absl::StrCat(cudaGetErrorName(e), ": ", cudaGetErrorString(e));
}

}  // namespace tensorpager::testing

// In a test: skips without a GPU (fails instead under TP_REQUIRE_GPU=1).
#define TP_REQUIRE_GPU_OR_SKIP()                                      \
  do {                                                                \
    const std::string reason = ::tensorpager::testing::NoGpuReason(); \
    if (!reason.empty()) {                                            \
      if (::tensorpager::testing::GpuRequired()) {                    \
        FAIL() << "TP_REQUIRE_GPU=1 but no CUDA device: " << reason;  \
      }                                                               \
      GTEST_SKIP() << "no CUDA device (" << reason << ")";            \
    }                                                                 \
  } while (0)

#define TP_CUDA_OK(call)                                                 \
  do {                                                                   \
    const cudaError_t tp_cuda_e = (call);                                \
    ASSERT_EQ(tp_cuda_e, cudaSuccess)                                    \
        << #call << ": " << ::tensorpager::testing::CudaText(tp_cuda_e); \
  } while (0)

#endif  // TENSORPAGER_TESTS_GPU_GPU_TEST_ENV_H_
