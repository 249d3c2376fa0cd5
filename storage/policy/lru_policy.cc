#include "storage/policy/lru_policy.h"

namespace tensorpager::policy {

void LruPolicy::Insert(Handle key, uint64_t bytes, int priority) {
  NodeIndex i = table_.Find(key);
  if (i != kNoNode) {
    // Already resident: a size change plus a use.
    EntryList& list = ListOf(table_[i]);
    list.SetBytes(i, bytes);
    list.MoveToFront(i);
  } else {
    i = table_.Add(key);
    table_[i].bytes = bytes;
    order_.PushFront(i);
  }
  table_[i].priority = ClampPriority(priority);
  table_[i].credits = table_[i].priority;
}

void LruPolicy::Touch(Handle key) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode) return;
  EntryNode& n = table_[i];
  n.credits = n.priority;
  ListOf(n).MoveToFront(i);
}

void LruPolicy::Remove(Handle key, RemoveReason /*reason*/) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode) return;
  ListOf(table_[i]).Unlink(i);
  table_.Release(i);
}

void LruPolicy::SetPinned(Handle key, bool pinned) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode || table_[i].pinned == pinned) return;
  EntryNode& n = table_[i];
  ListOf(n).Unlink(i);
  n.pinned = pinned;
  // An entry leaving the pin was just in use: it rejoins as most recent.
  n.credits = n.priority;
  (pinned ? pinned_ : order_).PushFront(i);
}

uint64_t LruPolicy::SelectVictims(uint64_t bytes,
                                  absl::FunctionRef<bool(Handle)> eligible,
                                  std::vector<Handle>* out) {
  uint64_t chosen = 0;
  // Entries requeued for their priority go to the front, ahead of the
  // cursor, so one pass visits each at most credits + 1 times; the front
  // entry itself is simply visited again. A high-priority entry is thus
  // chosen once its credits run out, never skipped.
  NodeIndex i = order_.back();
  while (i != kNoNode && chosen < bytes) {
    NodeIndex next = order_.newer(i);
    EntryNode& n = table_[i];
    if (eligible(n.key)) {
      if (n.credits > 0) {
        --n.credits;
        if (next == kNoNode) {
          next = i;
        } else {
          order_.MoveToFront(i);
        }
      } else {
        out->push_back(n.key);
        chosen += n.bytes;
      }
    }
    i = next;
  }
  return chosen;
}

}  // namespace tensorpager::policy
