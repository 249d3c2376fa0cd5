#include "storage/policy/lru_policy.h"

namespace tensorpager::policy {

void LruPolicy::Insert(Key key, uint64_t bytes, int /*priority*/) {
  if (auto it = index_.find(key); it != index_.end()) {
    resident_bytes_ -= it->second->bytes;
    it->second->bytes = bytes;
    resident_bytes_ += bytes;
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  order_.push_front(Entry{key, bytes, false});
  index_.emplace(key, order_.begin());
  resident_bytes_ += bytes;
}

void LruPolicy::Touch(Key key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  order_.splice(order_.begin(), order_, it->second);
}

void LruPolicy::Remove(Key key, RemoveReason /*reason*/) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  resident_bytes_ -= it->second->bytes;
  order_.erase(it->second);
  index_.erase(it);
}

void LruPolicy::SetPinned(Key key, bool pinned) {
  auto it = index_.find(key);
  if (it != index_.end()) it->second->pinned = pinned;
}

uint64_t LruPolicy::SelectVictims(uint64_t bytes,
                                  absl::FunctionRef<bool(Key)> eligible,
                                  std::vector<Key>* out) {
  uint64_t chosen = 0;
  for (auto it = order_.rbegin(); it != order_.rend() && chosen < bytes; ++it) {
    if (it->pinned || !eligible(it->key)) continue;
    out->push_back(it->key);
    chosen += it->bytes;
  }
  return chosen;
}

}  // namespace tensorpager::policy
