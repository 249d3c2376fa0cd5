// CLOCK (second chance): FIFO order with one reference bit per entry. A hit
// only sets the bit, so hits never reorder anything; the hand, at the oldest
// entry, clears a set bit and requeues the entry instead of choosing it.
// Every operation is O(1) amortised and allocation-free once the pool has
// grown.
//
// Priority: an entry of priority p gets p extra chances after its bit is
// spent, refilled on every hit. With every priority 0 this is the classic
// one-bit CLOCK (FIFO with reinsertion).
#ifndef TENSORPAGER_STORAGE_POLICY_CLOCK_POLICY_H_
#define TENSORPAGER_STORAGE_POLICY_CLOCK_POLICY_H_

#include "storage/policy/entry_list.h"
#include "storage/policy/entry_table.h"
#include "storage/policy/eviction_policy.h"

namespace tensorpager::policy {

class ClockPolicy final : public EvictionPolicy {
 public:
  ClockPolicy() = default;

  Algorithm algorithm() const override { return Algorithm::kClock; }
  std::string_view name() const override { return "CLOCK"; }
  void Insert(Handle key, uint64_t bytes, int priority) override;
  void Touch(Handle key) override;
  void Remove(Handle key, RemoveReason reason) override;
  void SetPinned(Handle key, bool pinned) override;
  bool Contains(Handle key) const override {
    return table_.Find(key) != kNoNode;
  }
  uint64_t SelectVictims(uint64_t bytes,
                         absl::FunctionRef<bool(Handle)> eligible,
                         std::vector<Handle>* out) override;
  size_t size() const override { return table_.size(); }
  void ForEachResident(absl::FunctionRef<void(Handle)> visit) const override {
    ring_.ForEachKey(visit);
    pinned_.ForEachKey(visit);
  }
  uint64_t resident_bytes() const override {
    return ring_.bytes() + pinned_.bytes();
  }

 private:
  enum : ListId { kRingList = 1, kPinnedList = 2 };
  static constexpr uint8_t kReferenced = 1;

  EntryList& ListOf(const EntryNode& n) {
    return n.list == kPinnedList ? pinned_ : ring_;
  }

  EntryTable table_;
  // Front = newest; the hand works from the back.
  EntryList ring_{&table_, kRingList};
  EntryList pinned_{&table_, kPinnedList};
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_CLOCK_POLICY_H_
