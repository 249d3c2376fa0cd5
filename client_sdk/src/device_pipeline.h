// Pipelined copies between a byte stream and device memory through a
// StagingStream's ring of pinned buffers. Upload: while chunk i is copied to
// the device, the caller already receives chunk i+1 (up to `buffers` chunks
// in flight). Download: the device copies chunks ahead of the caller, which
// sends chunk i while chunks i+1.. come off the device.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_DEVICE_PIPELINE_H_
#define TENSORPAGER_CLIENT_SDK_SRC_DEVICE_PIPELINE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client_sdk/src/stream_pool.h"

namespace tensorpager::internal {

class DeviceUpload {
 public:
  // Copies to device memory starting at `device_base`.
  DeviceUpload(StagingStream* staging, void* device_base)
      : staging_(staging), base_(static_cast<char*>(device_base)) {}
  DeviceUpload(const DeviceUpload&) = delete;
  DeviceUpload& operator=(const DeviceUpload&) = delete;
  // Waits for the copies in flight, so the staging ring can be reused.
  ~DeviceUpload();

  // Queues `chunk` for device_base + offset. The chunk's memory may be
  // reused as soon as this returns.
  absl::Status Add(uint64_t offset, absl::string_view chunk);
  // Blocks until every byte is on the device.
  absl::Status Finish();

 private:
  StagingStream* staging_;
  char* base_;
  uint64_t queued_ = 0;  // staging buffers used so far
  bool finished_ = false;
};

class DeviceDownload {
 public:
  DeviceDownload(StagingStream* staging, const void* device_base, uint64_t size)
      : staging_(staging),
        base_(static_cast<const char*>(device_base)),
        size_(size) {}
  DeviceDownload(const DeviceDownload&) = delete;
  DeviceDownload& operator=(const DeviceDownload&) = delete;
  ~DeviceDownload();

  // The next chunk in order, in host memory valid until the next call; an
  // empty view after the last byte.
  absl::StatusOr<absl::string_view> Next();

 private:
  absl::Status Queue(uint64_t chunk);
  uint64_t chunks() const {
    return (size_ + staging_->buffer_bytes() - 1) / staging_->buffer_bytes();
  }

  StagingStream* staging_;
  const char* base_;
  uint64_t size_;
  uint64_t next_ = 0;  // next chunk to hand out
  bool started_ = false;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_DEVICE_PIPELINE_H_
