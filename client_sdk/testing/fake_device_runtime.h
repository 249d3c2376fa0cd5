// A simulated CUDA runtime for tests on machines without a GPU: "device
// memory" is host memory the fake keeps track of, copies are memcpy done at
// once, and MemoryInfo reports the fake's allocations plus a use the test
// sets (another process on the GPU). Copies check that their device side
// lies inside an allocation of the stream's device and their host side
// does not, so the SDK's use of pointers is verified as on a real GPU.
#ifndef TENSORPAGER_CLIENT_SDK_TESTING_FAKE_DEVICE_RUNTIME_H_
#define TENSORPAGER_CLIENT_SDK_TESTING_FAKE_DEVICE_RUNTIME_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tensorpager/device_runtime.h"

namespace tensorpager::testing {

class FakeDeviceRuntime final : public DeviceRuntime {
 public:
  struct Options {
    int devices = 1;
    uint64_t memory_bytes = 1ull << 30;  // per device
  };

  explicit FakeDeviceRuntime(Options options);
  ~FakeDeviceRuntime() override;

  // Memory something else holds on `device` (shows in MemoryInfo and
  // limits AllocDevice).
  void SetExternalUse(int device, uint64_t bytes);
  uint64_t allocated_bytes(int device) const;
  uint64_t copied_bytes(CopyDirection direction) const;
  // Whether `ptr` lies inside a live allocation on `device`.
  bool IsDeviceMemory(int device, const void* ptr) const;

  std::string name() const override { return "fake"; }
  int device_count() const override { return options_.devices; }
  std::string unavailable_reason() const override { return ""; }
  absl::StatusOr<void*> AllocDevice(int device, size_t bytes) override;
  void FreeDevice(int device, void* ptr) override;
  absl::StatusOr<void*> AllocPinned(size_t bytes) override;
  void FreePinned(void* ptr) override;
  absl::StatusOr<std::unique_ptr<DeviceStream>> CreateStream(
      int device, int slots) override;
  absl::Status MemoryInfo(int device, uint64_t* free_bytes,
                          uint64_t* total_bytes) override;
  absl::Status Zero(int device, void* ptr, size_t bytes) override;
  // Records the range: copies whose host side lies in it count as direct.
  absl::Status RegisterHost(void* ptr, size_t bytes) override;
  void UnregisterHost(void* ptr) override;
  // Bytes copied between a device and registered host memory.
  uint64_t registered_copied_bytes() const;

  // For the fake stream: checks and performs one copy.
  absl::Status Copy(int device, void* dst, const void* src, size_t bytes,
                    CopyDirection direction);

 private:
  struct Allocation {
    int device;
    size_t bytes;
  };

  // Requires mu_.
  bool InsideLocked(int device, const void* ptr, size_t bytes) const;
  absl::Status CheckDevice(int device) const;

  const Options options_;
  // mu_ guards the rest.
  mutable std::mutex mu_;
  std::map<uintptr_t, Allocation> device_allocs_;
  std::vector<uint64_t> allocated_;
  std::vector<uint64_t> external_;
  uint64_t copied_[2] = {0, 0};
  std::map<uintptr_t, size_t> registered_;  // host start -> bytes
  uint64_t registered_copied_ = 0;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_CLIENT_SDK_TESTING_FAKE_DEVICE_RUNTIME_H_
