// BlockStore: sequences and the prefetcher.

#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {

void BlockStore::IndexSequence(Entry* e) {
  const std::optional<SequenceRef> seq = e->attrs.sequence();
  if (!seq) return;
  sequences_[seq->group][seq->index] = e;
}

void BlockStore::UnindexSequence(const Entry& e) {
  const std::optional<SequenceRef> seq = e.attrs.sequence();
  if (!seq) return;
  auto group = sequences_.find(seq->group);
  if (group == sequences_.end()) return;
  auto member = group->second.find(seq->index);
  if (member != group->second.end() && member->second == &e) {
    group->second.erase(member);
  }
  if (group->second.empty()) sequences_.erase(group);
}

void BlockStore::NoteLeavingRam(Entry& e) {
  if (e.prefetched) {
    e.prefetched = false;
    ++counters_.prefetch_wasted;
  }
}

void BlockStore::SchedulePrefetch(const Entry& e) {
  const std::optional<SequenceRef> seq = e.attrs.sequence();
  if (!seq) return;
  auto group = sequences_.find(seq->group);
  if (group == sequences_.end()) return;
  const uint32_t first = seq->index;
  for (auto it = group->second.upper_bound(first);
       it != group->second.end() &&
       it->first - first <= options_.prefetch_depth;
       ++it) {
    const Entry* next = it->second;
    if (next->ram() == nullptr && next->disk && next->io == Io::kIdle &&
        next->lost_reason().empty()) {
      prefetch_queue_.emplace_back(next->key());
    }
  }
  if (!prefetch_queue_.empty()) prefetch_wanted_.Signal();
}

void BlockStore::PrefetchLoop() {
  for (;;) {
    Entry* e = nullptr;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && prefetch_queue_.empty()) prefetch_wanted_.Wait(&mu_);
      if (stopping_) return;
      const BlockKey key = std::move(prefetch_queue_.front());
      prefetch_queue_.pop_front();
      e = Find(key);
      // Prefetch only into free room: never evict for a guess.
      if (e == nullptr || !e->OnDiskOnly() || e->io != Io::kIdle ||
          e->attrs.size_bytes > RamRoom()) {
        continue;
      }
      e->io = Io::kSwappingIn;
    }
    // Marks the block as prefetched under the lock that makes it idle:
    // once idle, a concurrent Unregister may free it.
    SwapInMarked({&e, 1}, /*prefetch=*/true);
  }
}

}  // namespace tensorpager::storage
