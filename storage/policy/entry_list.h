// An intrusive doubly linked list over EntryTable nodes that keeps its
// length and the bytes of its members. Front is the most recently queued
// end, back the oldest; every operation is O(1) and allocation-free.
#ifndef TENSORPAGER_STORAGE_POLICY_ENTRY_LIST_H_
#define TENSORPAGER_STORAGE_POLICY_ENTRY_LIST_H_

#include <cstddef>
#include <cstdint>

#include "storage/policy/entry_table.h"
#include "storage/policy/node_links.h"

namespace tensorpager::policy {

class EntryList {
 public:
  // `id` must be unique among the lists sharing `table` and not kUnlinked.
  EntryList(EntryTable* table, ListId id)
      : table_(table), links_(table), id_(id) {}
  EntryList(const EntryList&) = delete;
  EntryList& operator=(const EntryList&) = delete;

  ListId id() const { return id_; }
  bool empty() const { return links_.empty(); }
  size_t size() const { return size_; }
  uint64_t bytes() const { return bytes_; }
  NodeIndex front() const { return links_.front(); }
  NodeIndex back() const { return links_.back(); }
  // Towards the front (newer), or kNoNode.
  NodeIndex newer(NodeIndex i) const { return (*table_)[i].prev; }
  // Towards the back (older), or kNoNode.
  NodeIndex older(NodeIndex i) const { return (*table_)[i].next; }

  void PushFront(NodeIndex i) {
    links_.PushFront(i);
    Joined(i);
  }

  void PushBack(NodeIndex i) {
    links_.PushBack(i);
    Joined(i);
  }

  // `i` must be a member of this list.
  void Unlink(NodeIndex i) {
    links_.Unlink(i);
    EntryNode& n = (*table_)[i];
    n.list = kUnlinked;
    --size_;
    bytes_ -= n.bytes;
  }

  // Changes the size of member `i` in place.
  void SetBytes(NodeIndex i, uint64_t bytes) {
    EntryNode& n = (*table_)[i];
    bytes_ = bytes_ - n.bytes + bytes;
    n.bytes = bytes;
  }

  // Calls visit(key) for each member, newest first.
  template <typename Visit>
  void ForEachKey(Visit visit) const {
    for (NodeIndex i = front(); i != kNoNode; i = older(i)) {
      visit((*table_)[i].key);
    }
  }

  void MoveToFront(NodeIndex i) {
    if (links_.front() == i) return;
    Unlink(i);
    PushFront(i);
  }

 private:
  void Joined(NodeIndex i) {
    EntryNode& n = (*table_)[i];
    n.list = id_;
    ++size_;
    bytes_ += n.bytes;
  }

  EntryTable* table_;
  NodeLinks<&EntryNode::prev, &EntryNode::next> links_;
  ListId id_;
  size_t size_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_ENTRY_LIST_H_
