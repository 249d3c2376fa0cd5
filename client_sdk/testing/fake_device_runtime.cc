#include "client_sdk/testing/fake_device_runtime.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tensorpager::testing {
namespace {

constexpr size_t kAlign = 256;  // cudaMalloc's alignment

void* AlignedAlloc(size_t bytes) {
  return std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
}

class FakeStream final : public DeviceStream {
 public:
  FakeStream(FakeDeviceRuntime* runtime, int device, int slots)
      : runtime_(runtime), device_(device), slots_(slots) {}

  int device() const override { return device_; }
  int slots() const override { return slots_; }
  absl::Status CopyAsync(void* dst, const void* src, size_t bytes,
                         CopyDirection direction) override {
    return runtime_->Copy(device_, dst, src, bytes, direction);
  }
  absl::Status Record(int slot) override { return CheckSlot(slot); }
  absl::Status Wait(int slot) override { return CheckSlot(slot); }
  absl::Status Synchronize() override { return absl::OkStatus(); }

 private:
  absl::Status CheckSlot(int slot) const {
    if (slot < 0 || slot >= slots_) {
      return absl::OutOfRangeError(
          absl::StrCat("marker ", slot, " of a stream with ", slots_));
    }
    return absl::OkStatus();
  }

  FakeDeviceRuntime* runtime_;
  int device_;
  int slots_;
};

}  // namespace

FakeDeviceRuntime::FakeDeviceRuntime(Options options)
    : options_(options),
      allocated_(options.devices, 0),
      external_(options.devices, 0) {}

FakeDeviceRuntime::~FakeDeviceRuntime() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [addr, a] : device_allocs_) {
    std::free(reinterpret_cast<void*>(addr));
  }
}

absl::Status FakeDeviceRuntime::CheckDevice(int device) const {
  if (device < 0 || device >= options_.devices) {
    return absl::InvalidArgumentError(
        absl::StrCat("fake device ", device, " does not exist"));
  }
  return absl::OkStatus();
}

void FakeDeviceRuntime::SetExternalUse(int device, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  external_[device] = bytes;
}

uint64_t FakeDeviceRuntime::allocated_bytes(int device) const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocated_[device];
}

uint64_t FakeDeviceRuntime::copied_bytes(CopyDirection direction) const {
  std::lock_guard<std::mutex> lock(mu_);
  return copied_[static_cast<int>(direction)];
}

bool FakeDeviceRuntime::InsideLocked(int device, const void* ptr,
                                     size_t bytes) const {
  const uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
  auto it = device_allocs_.upper_bound(p);
  if (it == device_allocs_.begin()) return false;
  --it;
  return it->second.device == device &&
         p + bytes <= it->first + it->second.bytes;
}

bool FakeDeviceRuntime::IsDeviceMemory(int device, const void* ptr) const {
  std::lock_guard<std::mutex> lock(mu_);
  return InsideLocked(device, ptr, 1);
}

absl::StatusOr<void*> FakeDeviceRuntime::AllocDevice(int device, size_t bytes) {
  if (absl::Status s = CheckDevice(device); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (allocated_[device] + external_[device] + bytes > options_.memory_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("fake device ", device, " is out of memory allocating ",
                     bytes, " bytes"));
  }
  void* p = AlignedAlloc(bytes);
  if (p == nullptr) return absl::ResourceExhaustedError("host out of memory");
  device_allocs_[reinterpret_cast<uintptr_t>(p)] = {device, bytes};
  allocated_[device] += bytes;
  return p;
}

void FakeDeviceRuntime::FreeDevice(int device, void* ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = device_allocs_.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == device_allocs_.end() || it->second.device != device) {
    std::abort();  // freeing what was never allocated: a bug in the SDK
  }
  allocated_[device] -= it->second.bytes;
  device_allocs_.erase(it);
  std::free(ptr);
}

absl::StatusOr<void*> FakeDeviceRuntime::AllocPinned(size_t bytes) {
  void* p = AlignedAlloc(bytes);
  if (p == nullptr) return absl::ResourceExhaustedError("host out of memory");
  return p;
}

void FakeDeviceRuntime::FreePinned(void* ptr) { std::free(ptr); }

absl::StatusOr<std::unique_ptr<DeviceStream>> FakeDeviceRuntime::CreateStream(
    int device, int slots) {
  if (absl::Status s = CheckDevice(device); !s.ok()) return s;
  return std::make_unique<FakeStream>(this, device, slots);
}

absl::Status FakeDeviceRuntime::MemoryInfo(int device, uint64_t* free_bytes,
                                           uint64_t* total_bytes) {
  if (absl::Status s = CheckDevice(device); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t used = allocated_[device] + external_[device];
  *total_bytes = options_.memory_bytes;
  *free_bytes =
      used >= options_.memory_bytes ? 0 : options_.memory_bytes - used;
  return absl::OkStatus();
}

absl::Status FakeDeviceRuntime::Zero(int device, void* ptr, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!InsideLocked(device, ptr, bytes)) {
      return absl::InvalidArgumentError("Zero: not device memory");
    }
  }
  std::memset(ptr, 0, bytes);
  return absl::OkStatus();
}

absl::Status FakeDeviceRuntime::Copy(int device, void* dst, const void* src,
                                     size_t bytes, CopyDirection direction) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool to_device = direction == CopyDirection::kHostToDevice;
    const void* device_side = to_device ? dst : src;
    const void* host_side = to_device ? src : dst;
    if (!InsideLocked(device, device_side, bytes)) {
      return absl::InvalidArgumentError(
          absl::StrCat("copy of ", bytes,
                       " bytes: the device side is not memory of fake "
                       "device ",
                       device));
    }
    for (int d = 0; d < options_.devices; ++d) {
      if (InsideLocked(d, host_side, 1)) {
        return absl::InvalidArgumentError(
            "copy: the host side is device memory");
      }
    }
    copied_[static_cast<int>(direction)] += bytes;
    const auto h = reinterpret_cast<uintptr_t>(host_side);
    auto it = registered_.upper_bound(h);
    if (it != registered_.begin() &&
        h + bytes <= std::prev(it)->first + std::prev(it)->second) {
      registered_copied_ += bytes;
    }
  }
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status FakeDeviceRuntime::RegisterHost(void* ptr, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  registered_[reinterpret_cast<uintptr_t>(ptr)] = bytes;
  return absl::OkStatus();
}

void FakeDeviceRuntime::UnregisterHost(void* ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  registered_.erase(reinterpret_cast<uintptr_t>(ptr));
}

uint64_t FakeDeviceRuntime::registered_copied_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registered_copied_;
}

}  // namespace tensorpager::testing
