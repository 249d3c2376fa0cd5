#include "client_sdk/src/stream_pool.h"

#include "absl/strings/str_cat.h"

namespace tensorpager::internal {

StagingStream::StagingStream(DeviceRuntime* runtime,
                             std::unique_ptr<DeviceStream> stream,
                             std::vector<void*> buffers, uint64_t buffer_bytes)
    : runtime_(runtime),
      stream_(std::move(stream)),
      buffers_(std::move(buffers)),
      buffer_bytes_(buffer_bytes) {}

StagingStream::~StagingStream() {
  // Copies may still read or write the staging buffers.
  static_cast<void>(stream_->Synchronize());
  for (void* b : buffers_) runtime_->FreePinned(b);
}

StreamPool::StreamPool(std::shared_ptr<DeviceRuntime> runtime, int per_device,
                       int buffers, uint64_t buffer_bytes)
    : runtime_(std::move(runtime)),
      per_device_(per_device),
      buffers_(buffers),
      buffer_bytes_(buffer_bytes),
      devices_(runtime_->device_count()) {}

absl::StatusOr<StreamPool::Lease> StreamPool::Acquire(int device) {
  if (device < 0 || device >= runtime_->device_count()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no CUDA device ", device, " (", runtime_->device_count(),
                     " present)"));
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    Device& d = devices_[device];
    returned_.wait(lock, [&d, this] {
      return !d.idle.empty() || d.created < per_device_;
    });
    if (!d.idle.empty()) {
      std::unique_ptr<StagingStream> s = std::move(d.idle.back());
      d.idle.pop_back();
      return Lease(this, std::move(s));
    }
    ++d.created;
  }
  absl::StatusOr<std::unique_ptr<StagingStream>> s = Create(device);
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --devices_[device].created;
    returned_.notify_one();
    return s.status();
  }
  return Lease(this, *std::move(s));
}

absl::StatusOr<std::unique_ptr<StagingStream>> StreamPool::Create(int device) {
  absl::StatusOr<std::unique_ptr<DeviceStream>> stream =
      runtime_->CreateStream(device, buffers_);
  if (!stream.ok()) return stream.status();
  std::vector<void*> buffers;
  for (int i = 0; i < buffers_; ++i) {
    absl::StatusOr<void*> b = runtime_->AllocPinned(buffer_bytes_);
    if (!b.ok()) {
      for (void* p : buffers) runtime_->FreePinned(p);
      return b.status();
    }
    buffers.push_back(*b);
  }
  return std::make_unique<StagingStream>(runtime_.get(), *std::move(stream),
                                         std::move(buffers), buffer_bytes_);
}

void StreamPool::Return(std::unique_ptr<StagingStream> s) {
  std::lock_guard<std::mutex> lock(mu_);
  devices_[s->device()].idle.push_back(std::move(s));
  returned_.notify_one();
}

}  // namespace tensorpager::internal
