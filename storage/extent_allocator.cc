#include "storage/extent_allocator.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

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
  used_bytes_ += length;
  ++used_extents_;
  return Extent{offset, length};
}

absl::Status ExtentAllocator::Free(const Extent& extent) {
  MutexLock lock(&mu_);
  // Not allocated when it overlaps free space: the free range before it
  // reaches into it, or the one after starts inside it.
  auto next = free_by_offset_.lower_bound(extent.offset);
  const bool overlaps_prev =
      next != free_by_offset_.begin() &&
      std::prev(next)->first + std::prev(next)->second > extent.offset;
  const bool overlaps_next =
      next != free_by_offset_.end() && next->first < extent.end();
  if (extent.length == 0 || extent.end() > capacity_ || overlaps_prev ||
      overlaps_next || used_extents_ == 0) {
    return absl::InternalError(absl::StrCat("freeing extent [", extent.offset,
                                            ", +", extent.length,
                                            ") that is not allocated"));
  }
  used_bytes_ -= extent.length;
  --used_extents_;
  uint64_t offset = extent.offset;
  uint64_t length = extent.length;
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

absl::Status ExtentAllocator::CheckBounds(const Extent& extent) const {
  if (extent.length == 0 || extent.offset % alignment_ != 0 ||
      extent.length % alignment_ != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("extent [", extent.offset, ", +", extent.length,
                     ") is not aligned to ", alignment_));
  }
  if (extent.end() > capacity_ || extent.end() < extent.offset) {
    return absl::OutOfRangeError(
        absl::StrCat("extent [", extent.offset, ", +", extent.length,
                     ") lies past the swap capacity of ", capacity_, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ExtentAllocator::MarkUsed(const Extent& extent) {
  if (absl::Status s = CheckBounds(extent); !s.ok()) return s;
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
  used_bytes_ += extent.length;
  ++used_extents_;
  return absl::OkStatus();
}

std::vector<absl::Status> ExtentAllocator::MarkUsedMany(
    absl::Span<const Extent> extents) {
  std::vector<absl::Status> results(extents.size());
  // (offset, index): sorting these pairs, not indices into `extents`,
  // keeps the comparisons in cache; the index breaks ties as a stable
  // sort would.
  std::vector<std::pair<uint64_t, size_t>> order;
  order.reserve(extents.size());
  for (size_t i = 0; i < extents.size(); ++i) {
    results[i] = CheckBounds(extents[i]);
    if (results[i].ok()) order.emplace_back(extents[i].offset, i);
  }
  std::sort(order.begin(), order.end());
  MutexLock lock(&mu_);
  // One walk over the free ranges in offset order, carving the extents
  // out of them; what is left becomes the new free map.
  std::vector<std::pair<uint64_t, uint64_t>> left;  // offset, length
  auto range = free_by_offset_.begin();
  uint64_t begin = 0;  // the unclaimed part [begin, end) of *range
  uint64_t end = 0;
  if (range != free_by_offset_.end()) {
    begin = range->first;
    end = range->first + range->second;
  }
  for (const auto& [offset, i] : order) {
    const Extent& e = extents[i];
    while (range != free_by_offset_.end() && end <= e.offset) {
      if (end > begin) left.emplace_back(begin, end - begin);
      if (++range != free_by_offset_.end()) {
        begin = range->first;
        end = range->first + range->second;
      }
    }
    if (range == free_by_offset_.end() || e.offset < begin || e.end() > end) {
      results[i] = absl::AlreadyExistsError(
          absl::StrCat("extent [", e.offset, ", +", e.length,
                       ") overlaps an allocated one"));
      continue;
    }
    if (e.offset > begin) left.emplace_back(begin, e.offset - begin);
    begin = e.end();
    used_bytes_ += e.length;
    ++used_extents_;
  }
  if (range != free_by_offset_.end()) {
    if (end > begin) left.emplace_back(begin, end - begin);
    for (++range; range != free_by_offset_.end(); ++range) {
      left.emplace_back(range->first, range->second);
    }
  }
  free_by_offset_.clear();
  free_by_size_.clear();
  for (const auto& [offset, length] : left) {
    free_by_offset_.emplace_hint(free_by_offset_.end(), offset, length);
  }
  std::vector<std::pair<uint64_t, uint64_t>> by_size;  // length, offset
  by_size.reserve(left.size());
  for (const auto& [offset, length] : left)
    by_size.emplace_back(length, offset);
  std::sort(by_size.begin(), by_size.end());
  for (const auto& p : by_size)
    free_by_size_.emplace_hint(free_by_size_.end(), p);
  return results;
}

AllocatorStats ExtentAllocator::Stats() const {
  MutexLock lock(&mu_);
  AllocatorStats s;
  s.capacity_bytes = capacity_;
  s.used_bytes = used_bytes_;
  s.free_bytes = capacity_ - used_bytes_;
  s.extents = used_extents_;
  s.free_ranges = free_by_offset_.size();
  s.largest_free_bytes =
      free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
  // Everything past the last allocated byte is one free range that ends at
  // the capacity.
  if (used_extents_ == 0) {
    s.high_water_bytes = 0;
  } else if (!free_by_offset_.empty() &&
             free_by_offset_.rbegin()->first +
                     free_by_offset_.rbegin()->second ==
                 capacity_) {
    s.high_water_bytes = free_by_offset_.rbegin()->first;
  } else {
    s.high_water_bytes = capacity_;
  }
  s.fragmentation =
      s.free_bytes == 0
          ? 0
          : 1.0 - static_cast<double>(s.largest_free_bytes) / s.free_bytes;
  return s;
}

}  // namespace tensorpager::storage
