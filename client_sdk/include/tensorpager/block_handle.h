// RAII access to a block's bytes on one placement. The pointer is valid
// while the handle lives: the local copy it points to cannot be evicted,
// written back or dropped under pressure until the handle is released.
// Handles must be released before the Client that made them is destroyed.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_HANDLE_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_HANDLE_H_

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "tensorpager/placement.h"

namespace tensorpager {
namespace internal {
class LocalCache;
struct CachedCopy;
}  // namespace internal

class BlockHandle {
 public:
  BlockHandle() = default;
  BlockHandle(BlockHandle&& other) noexcept { *this = std::move(other); }
  BlockHandle& operator=(BlockHandle&& other) noexcept;
  BlockHandle(const BlockHandle&) = delete;
  BlockHandle& operator=(const BlockHandle&) = delete;
  ~BlockHandle() { Release(); }

  bool valid() const { return cache_ != nullptr; }
  // Host pointer, or device pointer for device placements.
  void* data() const { return data_; }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }
  uint64_t size() const { return size_; }
  Placement placement() const { return placement_; }
  AccessMode mode() const { return mode_; }
  // The access needed no RPC (a local copy served it).
  bool local() const { return local_; }

  // For a kRead handle whose bytes the caller changed after all: marks the
  // block dirty as kReadWrite would have. FAILED_PRECONDITION when another
  // placement holds a copy in use (it would go stale under its reader).
  absl::Status MarkDirty();
  // Gives the copy back to the cache (the destructor does the same).
  void Release();

 private:
  friend class internal::LocalCache;

  internal::LocalCache* cache_ = nullptr;
  internal::CachedCopy* copy_ = nullptr;
  void* data_ = nullptr;
  uint64_t size_ = 0;
  Placement placement_ = Placement::Host();
  AccessMode mode_ = AccessMode::kRead;
  bool local_ = false;
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_HANDLE_H_
