// Space management of the NVMe data file: aligned extents carved from a
// fixed capacity (--max_swap_size). Best fit over a free map that coalesces
// neighbours, so long-running churn of mixed sizes stays compact.
#ifndef TENSORPAGER_STORAGE_EXTENT_ALLOCATOR_H_
#define TENSORPAGER_STORAGE_EXTENT_ALLOCATOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/base/shared_mutex.h"

namespace tensorpager::storage {

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  friend bool operator==(const Extent&, const Extent&) = default;
};

struct AllocatorStats {
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t extents = 0;
  uint64_t free_ranges = 0;
  uint64_t largest_free_bytes = 0;
  // Highest allocated byte: how large the data file must be.
  uint64_t high_water_bytes = 0;
  // 1 - largest free range / free bytes: 0 when free space is one piece.
  double fragmentation = 0;
};

class ExtentAllocator {
 public:
  // `alignment` must be a power of two; capacity is rounded down to it.
  ExtentAllocator(uint64_t capacity_bytes, uint64_t alignment);

  // An extent of at least `bytes` (rounded up to the alignment).
  // RESOURCE_EXHAUSTED when no free range is large enough.
  absl::StatusOr<Extent> Allocate(uint64_t bytes);
  // Returns an extent; INTERNAL if it overlaps free space (a double free).
  absl::Status Free(const Extent& extent);
  // Claims a specific extent during recovery; ALREADY_EXISTS when it
  // overlaps one already claimed, OUT_OF_RANGE past the capacity.
  absl::Status MarkUsed(const Extent& extent);
  // MarkUsed of each extent, in one pass over the free map after sorting
  // them by offset: recovery claims millions of extents in key order,
  // which is random in the file, and one search per extent in a free map
  // that splits into as many pieces costs a cache miss per tree level.
  // One status per extent, in order; of two that overlap, the one at the
  // lower offset is kept (at equal offsets, the earlier one).
  std::vector<absl::Status> MarkUsedMany(absl::Span<const Extent> extents);

  AllocatorStats Stats() const;
  uint64_t alignment() const { return alignment_; }

 private:
  void InsertFree(uint64_t offset, uint64_t length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when `extent` is aligned and within the capacity.
  absl::Status CheckBounds(const Extent& extent) const;

  const uint64_t alignment_;
  const uint64_t capacity_;
  mutable SharedMutex mu_;
  std::map<uint64_t, uint64_t> free_by_offset_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_ ABSL_GUARDED_BY(mu_);
  // Allocated extents are known by their owners (the block records), not
  // kept here: a map of them would cost 64 bytes per block on disk. A
  // double free is still caught, as a range that overlaps free space.
  uint64_t used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t used_extents_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_EXTENT_ALLOCATOR_H_
