// The most recently used of the blocks that live on disk only, kept so
// that a swap-in by bytes need not pass over every block to find them.
//
// The set holds at most `capacity` blocks, each as (last access, name: a
// string unique per block, the store's compact name), and a floor: every block
// on disk only that the set lacks is no newer than the floor. Dropping the
// oldest block to stay within the capacity raises the floor to it, so the floor
// stays true however many blocks go to disk. A walk from the newest block down
// is therefore exact until it reaches the floor; below it, only a pass over
// every block (BeginScan, EndScan) can tell, and that pass lowers the floor
// again.
//
// The set is told of every block that goes to disk only and of every new
// last access of such a block (Add). It is not told when a block leaves
// the disk (swapped in, unregistered, lost): the walk's visitor checks
// each block against the store and forgets the ones that no longer match.
// Not thread-safe; the store guards it with its lock.
#ifndef TENSORPAGER_STORAGE_RECENT_ON_DISK_H_
#define TENSORPAGER_STORAGE_RECENT_ON_DISK_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace tensorpager::storage {

class RecentOnDisk {
 public:
  // Whether a block last used at `a_ms`, named `a`, counts as older than
  // one at `b_ms` named `b`. Among blocks used in the same millisecond
  // (all blocks written and never read have 0) the smaller name is the
  // newer: passes over every block go in name order, so a later block of
  // a tie is older than those already kept and costs no copy of its name.
  static bool Older(int64_t a_ms, absl::string_view a, int64_t b_ms,
                    absl::string_view b) {
    return a_ms != b_ms ? a_ms < b_ms : a > b;
  }
  struct Item {
    int64_t last_access_ms = 0;
    std::string name;  // unique per block
    bool operator<(const Item& o) const {
      return Older(last_access_ms, name, o.last_access_ms, o.name);
    }
  };

  // Until a pass over every block has ended (EndScan), the set knows
  // nothing: a walk finds no block it can vouch for.
  explicit RecentOnDisk(size_t capacity) : capacity_(capacity) {}

  // The block `name` is on disk only and was last used at
  // `last_access_ms`.
  void Add(int64_t last_access_ms, absl::string_view name);

  enum class Step { kKeep, kForget, kStop };
  // Visits the blocks above the floor, newest first, until `visit` says
  // kStop; kForget drops the block visited. True when the walk saw every
  // block that could have come before the next: `visit` stopped it, or it
  // ran out of blocks with no floor under them.
  bool Walk(
      absl::FunctionRef<Step(int64_t last_access_ms, absl::string_view name)>
          visit);

  // A pass over every block begins; blocks dropped from now on count
  // against the floor EndScan sets.
  void BeginScan();
  // The pass found `newest` (the newest blocks on disk only, any number)
  // and left out others no newer than `newest_left_out` (nullopt: none).
  // The floor becomes the newest block left out by the pass or dropped
  // since BeginScan. One pass at a time.
  void EndScan(std::vector<Item> newest, std::optional<Item> newest_left_out);

  size_t size() const { return items_.size(); }

  // Finds the newest of blocks offered in any order, for EndScan: a
  // min-heap bounded by the capacity, which copies the name of a block
  // only when it is kept, so a pass over millions of blocks neither sorts
  // nor allocates per block.
  class Collector {
   public:
    // Keeps `capacity` blocks, and more while those that the caller could
    // take (Offer's `takeable`) make less than `takeable_bytes`.
    Collector(size_t capacity, uint64_t takeable_bytes)
        : capacity_(capacity), takeable_bytes_(takeable_bytes) {}
    void Offer(int64_t last_access_ms, absl::string_view name,
               uint64_t takeable);
    // Hands what was found to `set` (after its BeginScan).
    void EndScan(RecentOnDisk& set) &&;

   private:
    struct Candidate {
      Item item;
      uint64_t takeable;
    };
    bool Full() const;

    const size_t capacity_;
    const uint64_t takeable_bytes_;
    std::vector<Candidate> heap_;  // oldest on top
    uint64_t takeable_ = 0;
    std::optional<Item> left_out_;  // the newest block not kept
  };

 private:
  // Drops the oldest blocks beyond the capacity.
  void Trim();
  // The block (`last_access_ms`, `name`) left the set.
  void RaiseFloor(int64_t last_access_ms, absl::string_view name);

  const size_t capacity_;
  absl::btree_set<Item> items_;
  // True while the floor is unknown (nothing is vouched for).
  bool floor_unknown_ = true;
  // Every block on disk only that items_ lacks is no newer than this;
  // nullopt: there is no such block.
  std::optional<Item> floor_;
  bool scanning_ = false;
  std::optional<Item> dropped_during_scan_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_RECENT_ON_DISK_H_
