// Exact least-recently-used eviction: an intrusive doubly linked list over a
// hash map, O(1) for every operation.
#ifndef TENSORPAGER_STORAGE_POLICY_LRU_POLICY_H_
#define TENSORPAGER_STORAGE_POLICY_LRU_POLICY_H_

#include <list>

#include "absl/container/flat_hash_map.h"
#include "storage/policy/eviction_policy.h"

namespace tensorpager::policy {

class LruPolicy final : public EvictionPolicy {
 public:
  Algorithm algorithm() const override { return Algorithm::kLru; }
  std::string_view name() const override { return "LRU"; }
  void Insert(Key key, uint64_t bytes, int priority) override;
  void Touch(Key key) override;
  void Remove(Key key, RemoveReason reason) override;
  void SetPinned(Key key, bool pinned) override;
  bool Contains(Key key) const override { return index_.contains(key); }
  uint64_t SelectVictims(uint64_t bytes, absl::FunctionRef<bool(Key)> eligible,
                         std::vector<Key>* out) override;
  size_t size() const override { return index_.size(); }
  uint64_t resident_bytes() const override { return resident_bytes_; }

 private:
  struct Entry {
    Key key;
    uint64_t bytes;
    bool pinned;
  };
  // Front = most recently used. std::list::splice keeps touches
  // allocation-free.
  std::list<Entry> order_;
  absl::flat_hash_map<Key, std::list<Entry>::iterator> index_;
  uint64_t resident_bytes_ = 0;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_LRU_POLICY_H_
