// Per-device pool of transfer contexts: a DeviceStream plus a ring of
// pinned staging buffers, created on first use and reused, so a transfer
// never pays for stream, event or page-locked allocation.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_STREAM_POOL_H_
#define TENSORPAGER_CLIENT_SDK_SRC_STREAM_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "tensorpager/device_runtime.h"

namespace tensorpager::internal {

class StagingStream {
 public:
  StagingStream(DeviceRuntime* runtime, std::unique_ptr<DeviceStream> stream,
                std::vector<void*> buffers, uint64_t buffer_bytes);
  StagingStream(const StagingStream&) = delete;
  StagingStream& operator=(const StagingStream&) = delete;
  ~StagingStream();

  DeviceStream& stream() { return *stream_; }
  int device() const { return stream_->device(); }
  // Staging buffers; buffer(i) pairs with the stream's marker i.
  int buffers() const { return static_cast<int>(buffers_.size()); }
  char* buffer(int i) const { return static_cast<char*>(buffers_[i]); }
  uint64_t buffer_bytes() const { return buffer_bytes_; }

 private:
  DeviceRuntime* runtime_;
  std::unique_ptr<DeviceStream> stream_;
  std::vector<void*> buffers_;
  uint64_t buffer_bytes_;
};

class StreamPool {
 public:
  class Lease {
   public:
    Lease(StreamPool* pool, std::unique_ptr<StagingStream> s)
        : pool_(pool), stream_(std::move(s)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease() {
      if (stream_ != nullptr) pool_->Return(std::move(stream_));
    }
    StagingStream* operator->() const { return stream_.get(); }
    StagingStream& operator*() const { return *stream_; }

   private:
    StreamPool* pool_;
    std::unique_ptr<StagingStream> stream_;
  };

  // `per_device`: contexts per device; a transfer beyond them waits.
  StreamPool(std::shared_ptr<DeviceRuntime> runtime, int per_device,
             int buffers, uint64_t buffer_bytes);

  absl::StatusOr<Lease> Acquire(int device);

 private:
  struct Device {
    std::vector<std::unique_ptr<StagingStream>> idle;
    int created = 0;
  };

  absl::StatusOr<std::unique_ptr<StagingStream>> Create(int device);
  void Return(std::unique_ptr<StagingStream> s);

  const std::shared_ptr<DeviceRuntime> runtime_;
  const int per_device_;
  const int buffers_;
  const uint64_t buffer_bytes_;
  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<Device> devices_;  // guarded by mu_
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_STREAM_POOL_H_
