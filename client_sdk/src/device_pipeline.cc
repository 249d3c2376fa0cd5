#include "client_sdk/src/device_pipeline.h"

#include <algorithm>
#include <cstring>

namespace tensorpager::internal {

DeviceUpload::~DeviceUpload() {
  if (!finished_) static_cast<void>(staging_->stream().Synchronize());
}

absl::Status DeviceUpload::Add(uint64_t offset, absl::string_view chunk) {
  DeviceStream& stream = staging_->stream();
  const int n = staging_->buffers();
  while (!chunk.empty()) {
    const int slot = static_cast<int>(queued_ % n);
    // The buffer's previous copy must be done before it is overwritten.
    if (queued_ >= static_cast<uint64_t>(n)) {
      if (absl::Status s = stream.Wait(slot); !s.ok()) return s;
    }
    const uint64_t len =
        std::min<uint64_t>(chunk.size(), staging_->buffer_bytes());
    std::memcpy(staging_->buffer(slot), chunk.data(), len);
    if (absl::Status s =
            stream.CopyAsync(base_ + offset, staging_->buffer(slot), len,
                             CopyDirection::kHostToDevice);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = stream.Record(slot); !s.ok()) return s;
    ++queued_;
    offset += len;
    chunk.remove_prefix(len);
  }
  return absl::OkStatus();
}

absl::Status DeviceUpload::Finish() {
  finished_ = true;
  return staging_->stream().Synchronize();
}

DeviceDownload::~DeviceDownload() {
  if (started_) static_cast<void>(staging_->stream().Synchronize());
}

absl::Status DeviceDownload::Queue(uint64_t chunk) {
  const uint64_t bytes = staging_->buffer_bytes();
  const int slot = static_cast<int>(chunk % staging_->buffers());
  const uint64_t offset = chunk * bytes;
  const uint64_t len = std::min(bytes, size_ - offset);
  DeviceStream& stream = staging_->stream();
  if (absl::Status s = stream.CopyAsync(staging_->buffer(slot), base_ + offset,
                                        len, CopyDirection::kDeviceToHost);
      !s.ok()) {
    return s;
  }
  return stream.Record(slot);
}

absl::StatusOr<absl::string_view> DeviceDownload::Next() {
  const uint64_t total = chunks();
  const uint64_t depth = staging_->buffers();
  if (!started_) {
    started_ = true;
    for (uint64_t c = 0; c < std::min(depth, total); ++c) {
      if (absl::Status s = Queue(c); !s.ok()) return s;
    }
  } else if (next_ > 0 && next_ - 1 + depth < total) {
    // The caller is done with the previous chunk: refill its buffer.
    if (absl::Status s = Queue(next_ - 1 + depth); !s.ok()) return s;
  }
  if (next_ >= total) return absl::string_view();
  const int slot = static_cast<int>(next_ % depth);
  if (absl::Status s = staging_->stream().Wait(slot); !s.ok()) return s;
  const uint64_t offset = next_ * staging_->buffer_bytes();
  const uint64_t len = std::min(staging_->buffer_bytes(), size_ - offset);
  ++next_;
  return absl::string_view(staging_->buffer(slot), len);
}

}  // namespace tensorpager::internal
