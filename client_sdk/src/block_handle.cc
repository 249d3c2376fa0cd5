#include "tensorpager/block_handle.h"

#include <utility>

#include "client_sdk/src/local_cache.h"

namespace tensorpager {

BlockHandle& BlockHandle::operator=(BlockHandle&& other) noexcept {
  if (this != &other) {
    Release();
    cache_ = std::exchange(other.cache_, nullptr);
    copy_ = std::exchange(other.copy_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    placement_ = other.placement_;
    mode_ = other.mode_;
    local_ = other.local_;
  }
  return *this;
}

absl::Status BlockHandle::MarkDirty() {
  if (cache_ == nullptr) {
    return absl::FailedPreconditionError("the handle was released");
  }
  if (mode_ != AccessMode::kRead) return absl::OkStatus();
  if (absl::Status s = cache_->MarkDirty(copy_); !s.ok()) return s;
  mode_ = AccessMode::kReadWrite;
  return absl::OkStatus();
}

void BlockHandle::Release() {
  if (cache_ == nullptr) return;
  cache_->Release(copy_, mode_);
  cache_ = nullptr;
  copy_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

}  // namespace tensorpager
