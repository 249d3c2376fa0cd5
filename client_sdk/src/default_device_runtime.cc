#include <memory>

#include "tensorpager/device_runtime.h"

#ifdef TP_SDK_WITH_CUDA
#include "client_sdk/src/cuda_device_runtime.h"
#endif

namespace tensorpager {

std::shared_ptr<DeviceRuntime> DefaultDeviceRuntime() {
#ifdef TP_SDK_WITH_CUDA
  return internal::OpenCudaRuntime();
#else
  return HostOnlyDeviceRuntime(
      "the SDK was built without CUDA (toolkit not found or TP_WITH_CUDA=OFF)");
#endif
}

}  // namespace tensorpager
