// DeviceRuntime over the CUDA runtime API (cudart); built only when the
// CUDA toolkit was found.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_CUDA_DEVICE_RUNTIME_H_
#define TENSORPAGER_CLIENT_SDK_SRC_CUDA_DEVICE_RUNTIME_H_

#include <memory>

#include "tensorpager/device_runtime.h"

namespace tensorpager::internal {

// The CUDA runtime when a device answers, else a host-only runtime whose
// unavailable_reason() carries CUDA's error.
std::shared_ptr<DeviceRuntime> OpenCudaRuntime();

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_CUDA_DEVICE_RUNTIME_H_
