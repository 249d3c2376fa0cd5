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
#include "storage/policy/node_links.h"

namespace tensorpager::policy {

class ShadowLru {
 public:
  // The bit of EntryNode::flags that marks members.
  static constexpr uint8_t kMember = 0x80;

  explicit ShadowLru(EntryTable* table) : table_(table), links_(table) {}
  ShadowLru(const ShadowLru&) = delete;
  ShadowLru& operator=(const ShadowLru&) = delete;

  bool Contains(NodeIndex i) const { return ((*table_)[i].flags & kMember); }
  uint64_t bytes() const { return bytes_; }
  bool empty() const { return links_.empty(); }
  NodeIndex back() const { return links_.back(); }
  // Towards the front (more recent), or kNoNode.
  NodeIndex newer(NodeIndex i) const { return (*table_)[i].shadow_prev; }

  // Links `i` (not a member) as the most recent, with its current bytes.
  void PushFront(NodeIndex i) {
    links_.PushFront(i);
    EntryNode& n = (*table_)[i];
    n.flags |= kMember;
    bytes_ += n.bytes;
  }

  // `i` must be a member.
  void Unlink(NodeIndex i) {
    links_.Unlink(i);
    EntryNode& n = (*table_)[i];
    n.flags &= static_cast<uint8_t>(~kMember);
    bytes_ -= n.bytes;
  }

  // Accounts for member `i` changing size to `bytes`; call it before the
  // node's size changes (the owning EntryList's SetBytes writes it).
  void Resize(NodeIndex i, uint64_t bytes) {
    bytes_ = bytes_ - (*table_)[i].bytes + bytes;
  }

  void MoveToFront(NodeIndex i) {
    if (links_.front() == i) return;
    Unlink(i);
    PushFront(i);
  }

 private:
  EntryTable* table_;
  NodeLinks<&EntryNode::shadow_prev, &EntryNode::shadow_next> links_;
  uint64_t bytes_ = 0;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_SHADOW_LRU_H_
