// Storage for the entries a policy tracks: a pool of fixed-size nodes
// addressed by 32-bit index plus a key -> index map. The map holds only
// the 4-byte indexes and compares keys in the nodes (a lookup that finds
// its key reads that node, which the caller reads next anyway), so it
// takes 5 bytes a key instead of 17: the server's RAM tier tracks
// millions of resident blocks, and ADAPTIVE's table, with ghosts and the
// shadow LRU, about three keys per resident entry. Freed nodes are reused
// through an intrusive free list, so once the pool has grown to the
// largest number of entries (resident plus remembered ghosts) it ever
// held, inserts and removes allocate nothing.
#ifndef TENSORPAGER_STORAGE_POLICY_ENTRY_TABLE_H_
#define TENSORPAGER_STORAGE_POLICY_ENTRY_TABLE_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "storage/policy/eviction_policy.h"

namespace tensorpager::policy {

using NodeIndex = uint32_t;
inline constexpr NodeIndex kNoNode = std::numeric_limits<NodeIndex>::max();

// Identifies the EntryList that links a node; kUnlinked when none does.
using ListId = uint8_t;
inline constexpr ListId kUnlinked = 0;

struct EntryNode {
  Handle key = 0;
  uint64_t bytes = 0;
  NodeIndex prev = kNoNode;
  NodeIndex next = kNoNode;
  // A second set of links, for ADAPTIVE's shadow LRU (shadow_lru.h), which
  // orders the same nodes by recency alone.
  NodeIndex shadow_prev = kNoNode;
  NodeIndex shadow_next = kNoNode;
  // ADAPTIVE's arrival clock at this entry's last access (modulo 2^32:
  // only differences shorter than that are used), and the smoothed gap
  // between the entry's accesses (0 until it has one).
  uint32_t last_access = 0;
  uint32_t gap = 0;
  ListId list = kUnlinked;
  // Region-type priority, clamped to [0, kMaxPriority].
  uint8_t priority = 0;
  // Extra trips past the eviction end the entry survives; refilled from
  // `priority` on every hit.
  uint8_t credits = 0;
  // Policy-specific bits (CLOCK's reference bit, ADAPTIVE's shadow-LRU
  // membership).
  uint8_t flags = 0;
  bool pinned = false;
};

// Priorities above this are treated as this; it bounds the work one entry
// can cause during victim selection.
inline constexpr int kMaxPriority = 15;

inline uint8_t ClampPriority(int priority) {
  if (priority < 0) return 0;
  if (priority > kMaxPriority) return kMaxPriority;
  return static_cast<uint8_t>(priority);
}

class EntryTable {
 public:
  EntryTable() = default;
  EntryTable(const EntryTable&) = delete;
  EntryTable& operator=(const EntryTable&) = delete;

  NodeIndex Find(Handle key) const {
    auto it = index_.find(KeyRef{key});
    return it == index_.end() ? kNoNode : *it;
  }

  // Creates an unlinked node for a key that is not in the table.
  NodeIndex Add(Handle key) {
    NodeIndex i;
    if (free_head_ != kNoNode) {
      i = free_head_;
      free_head_ = nodes_[i].next;
      nodes_[i] = EntryNode{};
    } else {
      i = static_cast<NodeIndex>(nodes_.size());
      nodes_.emplace_back();
    }
    nodes_[i].key = key;
    index_.insert(i);
    return i;
  }

  // Forgets the node's key and recycles the node. It must be unlinked.
  void Release(NodeIndex i) {
    index_.erase(i);
    nodes_[i].next = free_head_;
    free_head_ = i;
  }

  EntryNode& operator[](NodeIndex i) { return nodes_[i]; }
  const EntryNode& operator[](NodeIndex i) const { return nodes_[i]; }

  // Keys in the table, resident or remembered.
  size_t size() const { return index_.size(); }

 private:
  // A key to look up, told apart from a node index by its type.
  struct KeyRef {
    Handle key;
  };
  // Hash and equality of indexes by their nodes' keys, so that a lookup by
  // KeyRef finds the index of the node holding that key.
  struct IndexHash {
    using is_transparent = void;
    const std::vector<EntryNode>* nodes;
    size_t operator()(KeyRef k) const { return absl::Hash<Handle>{}(k.key); }
    size_t operator()(NodeIndex i) const {
      return (*this)(KeyRef{(*nodes)[i].key});
    }
  };
  struct IndexEq {
    using is_transparent = void;
    const std::vector<EntryNode>* nodes;
    bool operator()(NodeIndex a, NodeIndex b) const { return a == b; }
    bool operator()(NodeIndex a, KeyRef k) const {
      return (*nodes)[a].key == k.key;
    }
    bool operator()(KeyRef k, NodeIndex a) const { return (*this)(a, k); }
  };

  std::vector<EntryNode> nodes_;
  NodeIndex free_head_ = kNoNode;
  absl::flat_hash_set<NodeIndex, IndexHash, IndexEq> index_{
      0, IndexHash{&nodes_}, IndexEq{&nodes_}};
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_ENTRY_TABLE_H_
