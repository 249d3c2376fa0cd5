// A key-only LRU over EntryTable nodes, linked through their shadow_prev /
// shadow_next fields so that it shares the table (and its one hash lookup
// per request) with the policy that owns it. ADAPTIVE keeps one sized to
// its byte budget to learn, request by request, whether plain LRU would
// have hit: its referee (adaptive_policy.h). Every operation is O(1) and
// allocation-free.
#ifndef TENSORPAGER_STORAGE_POLICY_SHADOW_LRU_H_
#define TENSORPAGER_STORAGE_POLICY_SHADOW_LRU_H_

#include <cstdint>

#include "storage/policy/entry_table.h"

namespace tensorpager::policy {

class ShadowLru {
 public:
  // The bit of EntryNode::flags that marks members.
  static constexpr uint8_t kMember = 0x80;

  explicit ShadowLru(EntryTable* table) : table_(table) {}
  ShadowLru(const ShadowLru&) = delete;
  ShadowLru& operator=(const ShadowLru&) = delete;

  bool Contains(NodeIndex i) const { return ((*table_)[i].flags & kMember); }
  uint64_t bytes() const { return bytes_; }
  bool empty() const { return back_ == kNoNode; }
  NodeIndex back() const { return back_; }

  // Links `i` (not a member) as the most recent, with its current bytes.
  void PushFront(NodeIndex i) {
    EntryNode& n = (*table_)[i];
    n.flags |= kMember;
    n.shadow_prev = kNoNode;
    n.shadow_next = front_;
    if (front_ != kNoNode) {
      (*table_)[front_].shadow_prev = i;
    } else {
      back_ = i;
    }
    front_ = i;
    bytes_ += n.bytes;
  }

  // `i` must be a member.
  void Unlink(NodeIndex i) {
    EntryNode& n = (*table_)[i];
    if (n.shadow_prev != kNoNode) {
      (*table_)[n.shadow_prev].shadow_next = n.shadow_next;
    } else {
      front_ = n.shadow_next;
    }
    if (n.shadow_next != kNoNode) {
      (*table_)[n.shadow_next].shadow_prev = n.shadow_prev;
    } else {
      back_ = n.shadow_prev;
    }
    n.shadow_prev = n.shadow_next = kNoNode;
    n.flags &= static_cast<uint8_t>(~kMember);
    bytes_ -= n.bytes;
  }

  // Accounts for member `i` changing size to `bytes`; call it before the
  // node's size changes (the owning EntryList's SetBytes writes it).
  void Resize(NodeIndex i, uint64_t bytes) {
    bytes_ = bytes_ - (*table_)[i].bytes + bytes;
  }

  void MoveToFront(NodeIndex i) {
    if (front_ == i) return;
    Unlink(i);
    PushFront(i);
  }

 private:
  EntryTable* table_;
  NodeIndex front_ = kNoNode;
  NodeIndex back_ = kNoNode;
  uint64_t bytes_ = 0;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_SHADOW_LRU_H_
