// An intrusive doubly linked list over EntryTable nodes that keeps its
// length and the bytes of its members. Front is the most recently queued
// end, back the oldest; every operation is O(1) and allocation-free.
#ifndef TENSORPAGER_STORAGE_POLICY_ENTRY_LIST_H_
#define TENSORPAGER_STORAGE_POLICY_ENTRY_LIST_H_

#include <cstddef>
#include <cstdint>

#include "storage/policy/entry_table.h"

namespace tensorpager::policy {

class EntryList {
 public:
  // `id` must be unique among the lists sharing `table` and not kUnlinked.
  EntryList(EntryTable* table, ListId id) : table_(table), id_(id) {}
  EntryList(const EntryList&) = delete;
  EntryList& operator=(const EntryList&) = delete;

  ListId id() const { return id_; }
  bool empty() const { return front_ == kNoNode; }
  size_t size() const { return size_; }
  uint64_t bytes() const { return bytes_; }
  NodeIndex front() const { return front_; }
  NodeIndex back() const { return back_; }
  // Towards the front (newer), or kNoNode.
  NodeIndex newer(NodeIndex i) const { return (*table_)[i].prev; }
  // Towards the back (older), or kNoNode.
  NodeIndex older(NodeIndex i) const { return (*table_)[i].next; }

  void PushFront(NodeIndex i) {
    EntryNode& n = (*table_)[i];
    n.list = id_;
    n.prev = kNoNode;
    n.next = front_;
    if (front_ != kNoNode) {
      (*table_)[front_].prev = i;
    } else {
      back_ = i;
    }
    front_ = i;
    ++size_;
    bytes_ += n.bytes;
  }

  void PushBack(NodeIndex i) {
    EntryNode& n = (*table_)[i];
    n.list = id_;
    n.next = kNoNode;
    n.prev = back_;
    if (back_ != kNoNode) {
      (*table_)[back_].next = i;
    } else {
      front_ = i;
    }
    back_ = i;
    ++size_;
    bytes_ += n.bytes;
  }

  // `i` must be a member of this list.
  void Unlink(NodeIndex i) {
    EntryNode& n = (*table_)[i];
    if (n.prev != kNoNode) {
      (*table_)[n.prev].next = n.next;
    } else {
      front_ = n.next;
    }
    if (n.next != kNoNode) {
      (*table_)[n.next].prev = n.prev;
    } else {
      back_ = n.prev;
    }
    n.prev = n.next = kNoNode;
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

  void MoveToFront(NodeIndex i) {
    if (front_ == i) return;
    Unlink(i);
    PushFront(i);
  }

 private:
  EntryTable* table_;
  ListId id_;
  NodeIndex front_ = kNoNode;
  NodeIndex back_ = kNoNode;
  size_t size_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_ENTRY_LIST_H_
