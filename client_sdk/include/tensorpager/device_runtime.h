// The GPU operations the SDK needs, behind an interface: the CUDA runtime
// implements it when the SDK is built with CUDA and a device is present;
// without one the SDK runs in host mode. Tests substitute a simulated device
// (client_sdk/testing/fake_device_runtime.h) to exercise GPU placements on a
// machine without a GPU.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_DEVICE_RUNTIME_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_DEVICE_RUNTIME_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tensorpager {

enum class CopyDirection { kHostToDevice, kDeviceToHost };

// An ordered queue of copies on one device (a CUDA stream) with a fixed set
// of completion markers (CUDA events) the caller reuses in a ring.
class DeviceStream {
 public:
  virtual ~DeviceStream() = default;

  virtual int device() const = 0;
  // Number of markers, fixed at creation.
  virtual int slots() const = 0;
  // Queues a copy. It is asynchronous when the host side is pinned memory
  // from DeviceRuntime::AllocPinned; the memory must stay valid until a
  // marker recorded after the copy has completed.
  virtual absl::Status CopyAsync(void* dst, const void* src, size_t bytes,
                                 CopyDirection direction) = 0;
  // Marks the end of the copies queued so far as marker `slot`.
  virtual absl::Status Record(int slot) = 0;
  // Blocks until the copies queued before Record(slot) are done.
  virtual absl::Status Wait(int slot) = 0;
  // Blocks until every queued copy is done.
  virtual absl::Status Synchronize() = 0;
};

class DeviceRuntime {
 public:
  virtual ~DeviceRuntime() = default;

  // "cuda 13.0 (driver 13.0)", "host mode", "fake".
  virtual std::string name() const = 0;
  virtual int device_count() const = 0;
  // Why there is no device (driver missing, no GPU, built without CUDA);
  // empty when device_count() > 0.
  virtual std::string unavailable_reason() const = 0;

  virtual absl::StatusOr<void*> AllocDevice(int device, size_t bytes) = 0;
  virtual void FreeDevice(int device, void* ptr) = 0;
  // Page-locked host memory, so copies to and from devices run at full
  // speed and asynchronously.
  virtual absl::StatusOr<void*> AllocPinned(size_t bytes) = 0;
  virtual void FreePinned(void* ptr) = 0;
  virtual absl::StatusOr<std::unique_ptr<DeviceStream>> CreateStream(
      int device, int slots) = 0;
  // cudaMemGetInfo.
  virtual absl::Status MemoryInfo(int device, uint64_t* free_bytes,
                                  uint64_t* total_bytes) = 0;
  // Fills device memory with zero bytes (used for kWriteOnly handles, whose
  // bytes must not leak another block's).
  virtual absl::Status Zero(int device, void* ptr, size_t bytes) = 0;
  // Page-locks host memory the SDK did not allocate (cudaHostRegister):
  // the shared-memory arena, so that device transfers through it copy
  // straight between the arena and the GPU. A runtime that cannot (host
  // mode, or one written before this existed) keeps this default and
  // answers FAILED_PRECONDITION; the SDK then stages device transfers
  // through AllocPinned buffers, as it always could.
  virtual absl::Status RegisterHost(void* ptr, size_t bytes) {
    (void)ptr;
    (void)bytes;
    return absl::FailedPreconditionError(
        "this device runtime cannot page-lock host memory; device transfers "
        "stage through pinned buffers");
  }
  // Undoes RegisterHost; nothing to undo in the default.
  virtual void UnregisterHost(void* ptr) { (void)ptr; }
};

// The CUDA runtime when the SDK was built with CUDA and a device answers;
// otherwise a runtime with no devices whose unavailable_reason() says why.
std::shared_ptr<DeviceRuntime> DefaultDeviceRuntime();

// A runtime without devices (host mode); `reason` is reported as
// unavailable_reason().
std::shared_ptr<DeviceRuntime> HostOnlyDeviceRuntime(std::string reason);

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_DEVICE_RUNTIME_H_
