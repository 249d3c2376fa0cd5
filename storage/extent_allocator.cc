#include "storage/extent_allocator.h"

#include "absl/strings/str_cat.h"

namespace tensorpager::storage {

ExtentAllocator::ExtentAllocator(uint64_t capacity_bytes, uint64_t alignment)
    : alignment_(alignment), capacity_(capacity_bytes / alignment * alignment) {
  MutexLock lock(&mu_);
  if (capacity_ > 0) InsertFree(0, capacity_);
}

void ExtentAllocator::InsertFree(uint64_t offset, uint64_t length) {
  free_by_offset_.emplace(offset, length);
  free_by_size_.emplace(length, offset);
}

void ExtentAllocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

absl::StatusOr<Extent> ExtentAllocator::Allocate(uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("extent of 0 bytes");
  const uint64_t length = (bytes + alignment_ - 1) / alignment_ * alignment_;
  MutexLock lock(&mu_);
  // Best fit; among equal sizes the lowest offset, which keeps the file's
  // high-water mark (and so its size) down.
  auto fit = free_by_size_.lower_bound({length, 0});
  if (fit == free_by_size_.end()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "swap space full: need ", length, " bytes, ", capacity_ - used_bytes_,
        " of ", capacity_, " bytes free (largest free range ",
        free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first,
        "); raise --max_swap_size or unregister blocks"));
  }
  const uint64_t offset = fit->second;
  const uint64_t range = fit->first;
  EraseFree(free_by_offset_.find(offset));
  if (range > length) InsertFree(offset + length, range - length);
  used_by_offset_.emplace(offset, length);
  used_bytes_ += length;
  return Extent{offset, length};
}

absl::Status ExtentAllocator::Free(const Extent& extent) {
  MutexLock lock(&mu_);
  auto used = used_by_offset_.find(extent.offset);
  if (used == used_by_offset_.end() || used->second != extent.length) {
    return absl::InternalError(absl::StrCat("freeing extent [", extent.offset,
                                            ", +", extent.length,
                                            ") that is not allocated"));
  }
  used_by_offset_.erase(used);
  used_bytes_ -= extent.length;
  uint64_t offset = extent.offset;
  uint64_t length = extent.length;
  auto next = free_by_offset_.lower_bound(offset);
  if (next != free_by_offset_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      offset = prev->first;
      length += prev->second;
      EraseFree(prev);
    }
  }
  next = free_by_offset_.lower_bound(offset + length);
  if (next != free_by_offset_.end() && next->first == offset + length) {
    length += next->second;
    EraseFree(next);
  }
  InsertFree(offset, length);
  return absl::OkStatus();
}

absl::Status ExtentAllocator::MarkUsed(const Extent& extent) {
  if (extent.length == 0 || extent.offset % alignment_ != 0 ||
      extent.length % alignment_ != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("extent [", extent.offset, ", +", extent.length,
                     ") is not aligned to ", alignment_));
  }
  if (extent.end() > capacity_) {
    return absl::OutOfRangeError(
        absl::StrCat("extent [", extent.offset, ", +", extent.length,
                     ") lies past the swap capacity of ", capacity_, " bytes"));
  }
  MutexLock lock(&mu_);
  auto it = free_by_offset_.upper_bound(extent.offset);
  if (it == free_by_offset_.begin()) {
    return absl::AlreadyExistsError("extent overlaps an allocated one");
  }
  --it;
  const uint64_t free_offset = it->first;
  const uint64_t free_length = it->second;
  if (free_offset + free_length < extent.end()) {
    return absl::AlreadyExistsError(
        absl::StrCat("extent [", extent.offset, ", +", extent.length,
                     ") overlaps an allocated one"));
  }
  EraseFree(it);
  if (extent.offset > free_offset) {
    InsertFree(free_offset, extent.offset - free_offset);
  }
  if (free_offset + free_length > extent.end()) {
    InsertFree(extent.end(), free_offset + free_length - extent.end());
  }
  used_by_offset_.emplace(extent.offset, extent.length);
  used_bytes_ += extent.length;
  return absl::OkStatus();
}

AllocatorStats ExtentAllocator::Stats() const {
  MutexLock lock(&mu_);
  AllocatorStats s;
  s.capacity_bytes = capacity_;
  s.used_bytes = used_bytes_;
  s.free_bytes = capacity_ - used_bytes_;
  s.extents = used_by_offset_.size();
  s.free_ranges = free_by_offset_.size();
  s.largest_free_bytes =
      free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
  s.high_water_bytes =
      used_by_offset_.empty()
          ? 0
          : used_by_offset_.rbegin()->first + used_by_offset_.rbegin()->second;
  s.fragmentation =
      s.free_bytes == 0
          ? 0
          : 1.0 - static_cast<double>(s.largest_free_bytes) / s.free_bytes;
  return s;
}

}  // namespace tensorpager::storage
