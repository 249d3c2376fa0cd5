// Exact least-recently-used eviction over pooled intrusive lists, O(1) for
// every operation and allocation-free once the pool has grown.
//
// Priority: an entry of priority p survives p extra trips to the eviction
// end (each trip puts it back at the most-recent end), refilled on every
// hit. With every priority 0 this is textbook LRU.
#ifndef TENSORPAGER_STORAGE_POLICY_LRU_POLICY_H_
#define TENSORPAGER_STORAGE_POLICY_LRU_POLICY_H_

#include "storage/policy/entry_list.h"
#include "storage/policy/entry_table.h"
#include "storage/policy/eviction_policy.h"

namespace tensorpager::policy {

class LruPolicy final : public EvictionPolicy {
 public:
  LruPolicy() = default;

  Algorithm algorithm() const override { return Algorithm::kLru; }
  std::string_view name() const override { return "LRU"; }
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
    order_.ForEachKey(visit);
    pinned_.ForEachKey(visit);
  }
  uint64_t resident_bytes() const override {
    return order_.bytes() + pinned_.bytes();
  }

 private:
  enum : ListId { kOrderList = 1, kPinnedList = 2 };

  EntryList& ListOf(const EntryNode& n) {
    return n.list == kPinnedList ? pinned_ : order_;
  }

  EntryTable table_;
  // Front = most recently used.
  EntryList order_{&table_, kOrderList};
  // Pinned entries wait here, out of the victims' way.
  EntryList pinned_{&table_, kPinnedList};
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_LRU_POLICY_H_
