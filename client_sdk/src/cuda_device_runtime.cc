#include "client_sdk/src/cuda_device_runtime.h"

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tensorpager::internal {
namespace {

absl::Status CudaError(cudaError_t e, absl::string_view what) {
  const absl::StatusCode code = e == cudaErrorMemoryAllocation
                                    ? absl::StatusCode::kResourceExhausted
                                    : absl::StatusCode::kInternal;
  return absl::Status(code, absl::StrCat(what, ": ", cudaGetErrorName(e), " (",
                                         cudaGetErrorString(e), ")"));
}

// Makes `device` current for the scope and restores the caller's device:
// the SDK runs on the application's threads and must not move their work
// to another GPU.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    error_ = previous_ == device ? cudaSuccess : cudaSetDevice(device);
    if (error_ != cudaSuccess || previous_ == device) previous_ = -1;
  }
  ~ScopedDevice() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

  absl::Status status(int device) const {
    if (error_ == cudaSuccess) return absl::OkStatus();
    return CudaError(error_, absl::StrCat("cudaSetDevice(", device, ")"));
  }

 private:
  int previous_ = -1;
  cudaError_t error_ = cudaSuccess;
};

std::string VersionText(int v) {
  return absl::StrCat(v / 1000, ".", v % 1000 / 10);
}

class CudaStream final : public DeviceStream {
 public:
  static absl::StatusOr<std::unique_ptr<DeviceStream>> Create(int device,
                                                              int slots) {
    std::unique_ptr<CudaStream> s(new CudaStream(device));
    ScopedDevice on(device);
    if (absl::Status st = on.status(device); !st.ok()) return st;
    if (cudaError_t e =
            cudaStreamCreateWithFlags(&s->stream_, cudaStreamNonBlocking);
        e != cudaSuccess) {
      return CudaError(e, "cudaStreamCreateWithFlags");
    }
    s->events_.resize(slots, nullptr);
    for (cudaEvent_t& ev : s->events_) {
      if (cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
          e != cudaSuccess) {
        return CudaError(e, "cudaEventCreateWithFlags");
      }
    }
    return std::unique_ptr<DeviceStream>(std::move(s));
  }

  ~CudaStream() override {
    ScopedDevice on(device_);
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    for (cudaEvent_t ev : events_) {
      if (ev != nullptr) cudaEventDestroy(ev);
    }
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  int device() const override { return device_; }
  int slots() const override { return static_cast<int>(events_.size()); }

  absl::Status CopyAsync(void* dst, const void* src, size_t bytes,
                         CopyDirection direction) override {
    ScopedDevice on(device_);
    if (absl::Status st = on.status(device_); !st.ok()) return st;
    const cudaMemcpyKind kind = direction == CopyDirection::kHostToDevice
                                    ? cudaMemcpyHostToDevice
                                    : cudaMemcpyDeviceToHost;
    if (cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, stream_);
        e != cudaSuccess) {
      return CudaError(e, "cudaMemcpyAsync");
    }
    return absl::OkStatus();
  }

  absl::Status Record(int slot) override {
    ScopedDevice on(device_);
    if (absl::Status st = on.status(device_); !st.ok()) return st;
    if (cudaError_t e = cudaEventRecord(events_[slot], stream_);
        e != cudaSuccess) {
      return CudaError(e, "cudaEventRecord");
    }
    return absl::OkStatus();
  }

  absl::Status Wait(int slot) override {
    if (cudaError_t e = cudaEventSynchronize(events_[slot]); e != cudaSuccess) {
      return CudaError(e, "cudaEventSynchronize");
    }
    return absl::OkStatus();
  }

  absl::Status Synchronize() override {
    if (cudaError_t e = cudaStreamSynchronize(stream_); e != cudaSuccess) {
      return CudaError(e, "cudaStreamSynchronize");
    }
    return absl::OkStatus();
  }

 private:
  explicit CudaStream(int device) : device_(device) {}

  int device_;
  cudaStream_t stream_ = nullptr;
  std::vector<cudaEvent_t> events_;
};

class CudaRuntime final : public DeviceRuntime {
 public:
  CudaRuntime(int devices, std::string name)
      : devices_(devices), name_(std::move(name)) {}

  std::string name() const override { return name_; }
  int device_count() const override { return devices_; }
  std::string unavailable_reason() const override { return ""; }

  absl::StatusOr<void*> AllocDevice(int device, size_t bytes) override {
    ScopedDevice on(device);
    if (absl::Status st = on.status(device); !st.ok()) return st;
    void* p = nullptr;
    if (cudaError_t e = cudaMalloc(&p, bytes); e != cudaSuccess) {
      return CudaError(
          e, absl::StrCat("cudaMalloc(", bytes, ") on device ", device));
    }
    return p;
  }

  void FreeDevice(int device, void* ptr) override {
    ScopedDevice on(device);
    cudaFree(ptr);
  }

  absl::StatusOr<void*> AllocPinned(size_t bytes) override {
    void* p = nullptr;
    // Portable: usable for copies to every device, not only the current one.
    if (cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
        e != cudaSuccess) {
      return CudaError(e, absl::StrCat("cudaHostAlloc(", bytes, ")"));
    }
    return p;
  }

  void FreePinned(void* ptr) override { cudaFreeHost(ptr); }

  absl::StatusOr<std::unique_ptr<DeviceStream>> CreateStream(
      int device, int slots) override {
    return CudaStream::Create(device, slots);
  }

  absl::Status MemoryInfo(int device, uint64_t* free_bytes,
                          uint64_t* total_bytes) override {
    ScopedDevice on(device);
    if (absl::Status st = on.status(device); !st.ok()) return st;
    size_t f = 0, t = 0;
    if (cudaError_t e = cudaMemGetInfo(&f, &t); e != cudaSuccess) {
      return CudaError(e, "cudaMemGetInfo");
    }
    *free_bytes = f;
    *total_bytes = t;
    return absl::OkStatus();
  }

  absl::Status RegisterHost(void* ptr, size_t bytes) override {
    // Portable: every device copies to and from it directly.
    if (cudaError_t e = cudaHostRegister(ptr, bytes, cudaHostRegisterPortable);
        e != cudaSuccess) {
      return CudaError(e, absl::StrCat("cudaHostRegister(", bytes, ")"));
    }
    return absl::OkStatus();
  }

  void UnregisterHost(void* ptr) override { cudaHostUnregister(ptr); }

  absl::Status Zero(int device, void* ptr, size_t bytes) override {
    ScopedDevice on(device);
    if (absl::Status st = on.status(device); !st.ok()) return st;
    if (cudaError_t e = cudaMemset(ptr, 0, bytes); e != cudaSuccess) {
      return CudaError(e, "cudaMemset");
    }
    return absl::OkStatus();
  }

 private:
  int devices_;
  std::string name_;
};

}  // namespace

std::shared_ptr<DeviceRuntime> OpenCudaRuntime() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    // The error is not sticky; clear it so later calls do not report it.
    cudaGetLastError();
    return HostOnlyDeviceRuntime(
        e != cudaSuccess ? absl::StrCat("CUDA reports ", cudaGetErrorName(e),
                                        ": ", cudaGetErrorString(e))
                         : std::string("CUDA found no device"));
  }
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  return std::make_shared<CudaRuntime>(
      count, absl::StrCat("cuda runtime ", VersionText(runtime), ", driver ",
                          VersionText(driver), ", ", count, " device(s)"));
}

}  // namespace tensorpager::internal
