#include "storage/recent_on_disk.h"

#include <utility>

namespace tensorpager::storage {

void RecentOnDisk::Clear() {
  items_.clear();
  floor_unknown_ = false;
  floor_.reset();
}

void RecentOnDisk::Add(int64_t last_access_ms, absl::string_view encoded) {
  if (items_.size() >= capacity_ && !items_.empty() &&
      last_access_ms < items_.begin()->last_access_ms) {
    // Older than all the set holds, which is full: the common case of a
    // restart, which offers every block on disk. No copy of the name.
    RaiseFloor(Item{last_access_ms, std::string(encoded)});
    return;
  }
  items_.insert(Item{last_access_ms, std::string(encoded)});
  Trim();
}

void RecentOnDisk::Trim() {
  while (items_.size() > capacity_) {
    auto oldest = items_.begin();
    RaiseFloor(*oldest);
    items_.erase(oldest);
  }
}

void RecentOnDisk::RaiseFloor(const Item& dropped) {
  if (!floor_ || *floor_ < dropped) floor_ = dropped;
  if (scanning_ && (!dropped_during_scan_ || *dropped_during_scan_ < dropped)) {
    dropped_during_scan_ = dropped;
  }
}

bool RecentOnDisk::Walk(
    absl::FunctionRef<Step(int64_t, absl::string_view)> visit) {
  if (floor_unknown_) return false;
  auto it = items_.end();
  while (it != items_.begin()) {
    --it;
    if (floor_ && !(*floor_ < *it)) return false;
    switch (visit(it->last_access_ms, it->encoded)) {
      case Step::kStop:
        return true;
      case Step::kForget:
        it = items_.erase(it);  // the next newer; --it moves on
        break;
      case Step::kKeep:
        break;
    }
  }
  return !floor_.has_value();
}

void RecentOnDisk::BeginScan() {
  scanning_ = true;
  dropped_during_scan_.reset();
}

void RecentOnDisk::EndScan(std::vector<Item> newest,
                           std::optional<Item> newest_left_out) {
  // Blocks added during the pass stay: they went to disk (or were used)
  // after the pass may have looked at them. Stale ones among them are
  // forgotten by the next walk.
  for (Item& item : newest) items_.insert(std::move(item));
  floor_ = std::move(newest_left_out);
  if (dropped_during_scan_ && (!floor_ || *floor_ < *dropped_during_scan_)) {
    floor_ = dropped_during_scan_;
  }
  floor_unknown_ = false;
  scanning_ = false;
  dropped_during_scan_.reset();
}

}  // namespace tensorpager::storage
