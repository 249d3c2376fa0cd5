#include "storage/recent_on_disk.h"

#include <algorithm>
#include <utility>

namespace tensorpager::storage {
namespace {

// Sets `newest` to the block (`last_access_ms`, `name`) when that block
// is newer; its name is copied only then.
void KeepNewer(std::optional<RecentOnDisk::Item>& newest,
               int64_t last_access_ms, absl::string_view name) {
  if (!newest || RecentOnDisk::Older(newest->last_access_ms, newest->name,
                                     last_access_ms, name)) {
    newest = RecentOnDisk::Item{last_access_ms, std::string(name)};
  }
}

// For std::*_heap: the oldest on top.
template <typename C>
bool Newer(const C& a, const C& b) {
  return b.item < a.item;
}

}  // namespace

void RecentOnDisk::Add(int64_t last_access_ms, absl::string_view name) {
  if (items_.size() >= capacity_ && !items_.empty() &&
      Older(last_access_ms, name, items_.begin()->last_access_ms,
            items_.begin()->name)) {
    // Older than all the set holds, which is full: the common case of
    // swap-outs of blocks long unused.
    RaiseFloor(last_access_ms, name);
    return;
  }
  items_.insert(Item{last_access_ms, std::string(name)});
  Trim();
}

void RecentOnDisk::Trim() {
  while (items_.size() > capacity_) {
    auto oldest = items_.begin();
    RaiseFloor(oldest->last_access_ms, oldest->name);
    items_.erase(oldest);
  }
}

void RecentOnDisk::RaiseFloor(int64_t last_access_ms, absl::string_view name) {
  KeepNewer(floor_, last_access_ms, name);
  if (scanning_) KeepNewer(dropped_during_scan_, last_access_ms, name);
}

bool RecentOnDisk::Walk(
    absl::FunctionRef<Step(int64_t, absl::string_view)> visit) {
  if (floor_unknown_) return false;
  auto it = items_.end();
  while (it != items_.begin()) {
    --it;
    if (floor_ && !(*floor_ < *it)) return false;
    switch (visit(it->last_access_ms, it->name)) {
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

bool RecentOnDisk::Collector::Full() const {
  return heap_.size() >= capacity_ && takeable_ >= takeable_bytes_;
}

void RecentOnDisk::Collector::Offer(int64_t last_access_ms,
                                    absl::string_view name, uint64_t takeable) {
  if (Full() && !heap_.empty()) {
    const Item& oldest = heap_.front().item;
    if (Older(last_access_ms, name, oldest.last_access_ms, oldest.name)) {
      KeepNewer(left_out_, last_access_ms, name);  // older than all kept
      return;
    }
  }
  heap_.push_back({Item{last_access_ms, std::string(name)}, takeable});
  std::push_heap(heap_.begin(), heap_.end(), Newer<Candidate>);
  takeable_ += takeable;
  while (heap_.size() > capacity_ &&
         takeable_ - heap_.front().takeable >= takeable_bytes_) {
    takeable_ -= heap_.front().takeable;
    std::pop_heap(heap_.begin(), heap_.end(), Newer<Candidate>);
    KeepNewer(left_out_, heap_.back().item.last_access_ms,
              heap_.back().item.name);
    heap_.pop_back();
  }
}

void RecentOnDisk::Collector::EndScan(RecentOnDisk& set) && {
  std::vector<Item> newest;
  newest.reserve(heap_.size());
  for (Candidate& c : heap_) newest.push_back(std::move(c.item));
  set.EndScan(std::move(newest), std::move(left_out_));
}

}  // namespace tensorpager::storage
