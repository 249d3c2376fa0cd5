#include "storage/policy/clock_policy.h"

namespace tensorpager::policy {

void ClockPolicy::Insert(Handle key, uint64_t bytes, int priority) {
  NodeIndex i = table_.Find(key);
  if (i != kNoNode) {
    // Already resident: a size change plus a hit; the position is kept.
    ListOf(table_[i]).SetBytes(i, bytes);
    table_[i].flags |= kReferenced;
  } else {
    i = table_.Add(key);
    table_[i].bytes = bytes;
    ring_.PushFront(i);
  }
  table_[i].priority = ClampPriority(priority);
  table_[i].credits = table_[i].priority;
}

void ClockPolicy::Touch(Handle key) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode) return;
  EntryNode& n = table_[i];
  n.flags |= kReferenced;
  n.credits = n.priority;
}

void ClockPolicy::Remove(Handle key, RemoveReason /*reason*/) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode) return;
  ListOf(table_[i]).Unlink(i);
  table_.Release(i);
}

void ClockPolicy::SetPinned(Handle key, bool pinned) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode || table_[i].pinned == pinned) return;
  EntryNode& n = table_[i];
  ListOf(n).Unlink(i);
  n.pinned = pinned;
  if (!pinned) {
    // It was in use while pinned: it rejoins as newest with its bit set.
    n.flags |= kReferenced;
    n.credits = n.priority;
  }
  (pinned ? pinned_ : ring_).PushFront(i);
}

uint64_t ClockPolicy::SelectVictims(uint64_t bytes,
                                    absl::FunctionRef<bool(Handle)> eligible,
                                    std::vector<Handle>* out) {
  uint64_t chosen = 0;
  // Requeued entries go to the front, ahead of the hand, so one sweep sees
  // each at most credits + 2 times. The front entry itself is simply
  // visited again.
  NodeIndex i = ring_.back();
  while (i != kNoNode && chosen < bytes) {
    NodeIndex next = ring_.newer(i);
    EntryNode& n = table_[i];
    if (eligible(n.key)) {
      bool requeue = true;
      if ((n.flags & kReferenced) != 0) {
        n.flags &= ~kReferenced;
      } else if (n.credits > 0) {
        --n.credits;
      } else {
        requeue = false;
      }
      if (requeue) {
        if (next == kNoNode) {
          next = i;
        } else {
          ring_.MoveToFront(i);
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
