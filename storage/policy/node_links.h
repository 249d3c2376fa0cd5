// The linking of an intrusive doubly linked list over EntryTable nodes,
// through the pair of fields `Prev`/`Next` of EntryNode: one list shape
// for EntryList (prev/next) and ShadowLru (shadow_prev/shadow_next), which
// add their own bookkeeping. Front is the newest end, back the oldest.
#ifndef TENSORPAGER_STORAGE_POLICY_NODE_LINKS_H_
#define TENSORPAGER_STORAGE_POLICY_NODE_LINKS_H_

#include "storage/policy/entry_table.h"

namespace tensorpager::policy {

template <NodeIndex EntryNode::*Prev, NodeIndex EntryNode::*Next>
class NodeLinks {
 public:
  explicit NodeLinks(EntryTable* table) : table_(table) {}

  NodeIndex front() const { return front_; }
  NodeIndex back() const { return back_; }
  bool empty() const { return front_ == kNoNode; }
  EntryNode& node(NodeIndex i) const { return (*table_)[i]; }

  void PushFront(NodeIndex i) {
    EntryNode& n = node(i);
    n.*Prev = kNoNode;
    n.*Next = front_;
    if (front_ != kNoNode) {
      node(front_).*Prev = i;
    } else {
      back_ = i;
    }
    front_ = i;
  }

  void PushBack(NodeIndex i) {
    EntryNode& n = node(i);
    n.*Next = kNoNode;
    n.*Prev = back_;
    if (back_ != kNoNode) {
      node(back_).*Next = i;
    } else {
      front_ = i;
    }
    back_ = i;
  }

  // `i` must be linked here.
  void Unlink(NodeIndex i) {
    EntryNode& n = node(i);
    if (n.*Prev != kNoNode) {
      node(n.*Prev).*Next = n.*Next;
    } else {
      front_ = n.*Next;
    }
    if (n.*Next != kNoNode) {
      node(n.*Next).*Prev = n.*Prev;
    } else {
      back_ = n.*Prev;
    }
    n.*Prev = n.*Next = kNoNode;
  }

 private:
  EntryTable* table_;
  NodeIndex front_ = kNoNode;
  NodeIndex back_ = kNoNode;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_NODE_LINKS_H_
