// Spare buffers kept per size class, with a count of their bytes: the core
// of every pool that recycles memory which costs more to get than to keep
// (the RAM tier's block buffers, the SDK's pinned host and device memory).
// A caller takes a spare of exactly the class it needs, puts freed buffers
// back, and gives back the spares above a byte limit to free them.
//
// Not synchronised: the owner guards it with its lock and frees what
// TakeSparesAbove returns outside that lock (freeing may unmap memory or
// synchronise a device).
#ifndef TENSORPAGER_STORAGE_BASE_SPARE_LIST_H_
#define TENSORPAGER_STORAGE_BASE_SPARE_LIST_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tensorpager::base {

// `Buffer` is a movable handle to memory (an owning buffer or a raw one);
// the list never looks inside it.
template <typename Buffer>
class SpareList {
 public:
  SpareList() = default;
  SpareList(const SpareList&) = delete;
  SpareList& operator=(const SpareList&) = delete;

  // A spare of exactly `class_bytes`, if one is kept.
  std::optional<Buffer> TakeSpare(uint64_t class_bytes) {
    auto it = spares_.find(class_bytes);
    if (it == spares_.end() || it->second.empty()) return std::nullopt;
    std::optional<Buffer> b(std::move(it->second.back()));
    it->second.pop_back();
    spare_bytes_ -= class_bytes;
    return b;
  }

  // Keeps `buffer`, of size class `class_bytes`, for reuse.
  void PutSpare(uint64_t class_bytes, Buffer buffer) {
    spares_[class_bytes].push_back(std::move(buffer));
    spare_bytes_ += class_bytes;
  }

  // Removes spares until at most `keep_bytes` remain and returns them for
  // the caller to free.
  std::vector<Buffer> TakeSparesAbove(uint64_t keep_bytes) {
    std::vector<Buffer> out;
    for (auto it = spares_.begin();
         it != spares_.end() && spare_bytes_ > keep_bytes; ++it) {
      std::vector<Buffer>& list = it->second;
      while (spare_bytes_ > keep_bytes && !list.empty()) {
        out.push_back(std::move(list.back()));
        list.pop_back();
        spare_bytes_ -= it->first;
      }
    }
    return out;
  }

  uint64_t spare_bytes() const { return spare_bytes_; }

 private:
  // Size class -> spares of exactly that class.
  absl::flat_hash_map<uint64_t, std::vector<Buffer>> spares_;
  uint64_t spare_bytes_ = 0;
};

}  // namespace tensorpager::base

#endif  // TENSORPAGER_STORAGE_BASE_SPARE_LIST_H_
