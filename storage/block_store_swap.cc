// BlockStore: making room in the RAM tier and the Swap calls (by name and by
// bytes).
#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {

absl::Status BlockStore::ReserveRam(uint64_t bytes, const Entry* block) {
  if (bytes == 0) return absl::OkStatus();
  absl::Status last_error = absl::OkStatus();
  for (;;) {
    std::vector<Entry*> marked;
    {
      MutexLock lock(&mu_);
      if (bytes > ram_budget_) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "block needs ", bytes, " bytes but the RAM tier's budget is ",
            ram_budget_, " bytes; raise --ram_budget"));
      }
      // The group's own limit first: a tenant at its RAM quota makes
      // room from its own blocks, whatever room the tier has. A block
      // with a copy on disk comes in even when none can leave (its group
      // at its disk limit too): otherwise such a tenant could not read
      // its blocks on disk. It passes the limit by that block only until
      // the next reservation, as a block with a disk copy is a victim
      // that needs no disk room.
      if (absl::Status s = MarkGroupVictims(*block, bytes, &marked);
          !s.ok() && !block->disk.has_value()) {
        if (swaps_in_flight_ == 0) return s;
        io_done_.Wait(&mu_);
        continue;
      }
      if (marked.empty()) {
        if (ram_used_ + ram_reserved_ + bytes <= ram_budget_) {
          ram_reserved_ += bytes;
          if (high_water_wake_ &&
              static_cast<double>(ram_used_ + ram_reserved_) >
                  high_water_ * static_cast<double>(ram_budget_)) {
            high_water_wake_();
          }
          return absl::OkStatus();
        }
        const uint64_t need =
            std::max(ram_used_ + ram_reserved_ + bytes - ram_budget_,
                     std::min(options_.eviction_batch_bytes, ram_budget_ / 16));
        SelectVictimsFairly(need, [&](const Entry& v) {
          return &v != block && v.io == Io::kIdle && v.ram() != nullptr &&
                 !v.attrs.pinned;
        });
        for (policy::Handle k : victims_) {
          Entry* v = Entry::Of(k);
          v->io = Io::kSwappingOut;
          marked.push_back(v);
        }
      }
      if (marked.empty()) {
        if (swaps_in_flight_ > 0) {
          // Someone else's swap will free RAM or fail; look again then.
          io_done_.Wait(&mu_);
          continue;
        }
        if (!last_error.ok()) return last_error;
        return absl::ResourceExhaustedError(absl::StrCat(
            "RAM tier full: ", ram_used_ + ram_reserved_, " of ", ram_budget_,
            " bytes are held by pinned or busy blocks and ", bytes,
            " more are needed; unpin blocks, unregister blocks or raise "
            "--ram_budget"));
      }
    }
    SwapResult ignored;
    last_error = SwapOutMarked(marked, &ignored);
    if (!last_error.ok() && ignored.moved.empty()) return last_error;
  }
}

void BlockStore::SetRamHighWater(double fraction, std::function<void()> wake) {
  MutexLock lock(&mu_);
  high_water_ = fraction;
  high_water_wake_ = std::move(wake);
}

void BlockStore::ReleaseReservation(uint64_t bytes) {
  MutexLock lock(&mu_);
  ram_reserved_ -= bytes;
  io_done_.SignalAll();
}

absl::StatusOr<SwapResult> BlockStore::SwapOut(
    const std::vector<BlockKey>& keys) {
  const absl::Time start = absl::Now();
  SwapResult result;
  std::vector<Entry*> marked;
  {
    MutexLock lock(&mu_);
    absl::StatusOr<std::vector<Entry*>> found = FindAllIdle(keys);
    if (!found.ok()) return found.status();
    const std::vector<Entry*>& entries = *found;
    // Check everything before moving anything.
    for (Entry* e : entries) {
      if (e->attrs.pinned) {
        return absl::FailedPreconditionError(
            absl::StrCat("block ", e->key().ToString(),
                         " is pinned and never leaves RAM; unpin it first"));
      }
      if (!e->lost_reason().empty() || !e->written) {
        return absl::FailedPreconditionError(absl::StrCat(
            "block ", e->key().ToString(), " holds no data to swap out (",
            TierName(TierOf(*e)), ")"));
      }
    }
    if (absl::Status s = DiskLimitAllows(entries); !s.ok()) return s;
    for (Entry* e : entries) {
      if (e->ram() == nullptr || e->io != Io::kIdle) {
        if (e->ram() == nullptr) result.already_there.emplace_back(e->key());
        continue;
      }
      e->io = Io::kSwappingOut;
      marked.push_back(e);
    }
  }
  absl::Status s = SwapOutMarked(marked, &result);
  if (!s.ok()) return s;
  result.duration = absl::Now() - start;
  return result;
}

absl::StatusOr<SwapResult> BlockStore::SwapIn(
    const std::vector<BlockKey>& keys) {
  const absl::Time start = absl::Now();
  SwapResult result;
  {
    MutexLock lock(&mu_);
    for (const BlockKey& key : keys) {
      absl::StatusOr<Entry*> e = FindIdle(key);
      if (!e.ok()) return e.status();
      if (!(*e)->lost_reason().empty()) {
        return absl::DataLossError(absl::StrCat(
            "block ", key.ToString(), " is lost: ", (*e)->lost_reason()));
      }
      if (!(*e)->written) {
        return absl::FailedPreconditionError(
            absl::StrCat("block ", key.ToString(), " was never written"));
      }
    }
  }
  // Idle blocks are read side by side. Busy ones are taken one at a time
  // afterwards: waiting for them while holding marks on others could
  // deadlock against a caller marking the same blocks in another order.
  // Sizes are taken while the blocks are marked: once a swap-in finishes,
  // a concurrent Unregister may free its entry.
  struct Marked {
    Entry* e;
    uint64_t size;
  };
  std::vector<Marked> marked;
  std::vector<BlockKey> keys_of_marked;
  std::vector<BlockKey> busy;
  {
    MutexLock lock(&mu_);
    absl::flat_hash_set<const Entry*> seen;
    for (const BlockKey& key : keys) {
      Entry* e = Find(key);
      if (e != nullptr && !seen.insert(e).second) continue;
      if (e == nullptr || e->io != Io::kIdle) {
        busy.push_back(key);
      } else if (e->ram() != nullptr) {
        result.already_there.push_back(key);
      } else {
        e->io = Io::kSwappingIn;
        marked.push_back({e, e->attrs.size_bytes});
        keys_of_marked.push_back(key);
      }
    }
  }
  // Blocks of an I/O unit or more are read side by side, a thread each;
  // smaller ones in batches from this thread.
  std::vector<absl::Status> statuses(marked.size());
  std::vector<size_t> large;
  std::vector<size_t> small;
  for (size_t i = 0; i < marked.size(); ++i) {
    (marked[i].size >= options_.io.io_unit_bytes ? large : small).push_back(i);
  }
  swap_pool_->ParallelFor(large.size(), [&](size_t k) {
    statuses[large[k]] = SwapInMarked(marked[large[k]].e);
  });
  // A batch reserves its RAM before reading: keep it to a share of the
  // budget.
  uint64_t max_batch_bytes;
  {
    ReaderMutexLock lock(&mu_);
    max_batch_bytes = std::min(kBatchBytes, ram_budget_ / 4);
  }
  std::vector<uint64_t> small_sizes;
  for (size_t i : small) small_sizes.push_back(marked[i].size);
  for (const auto& [begin, end] : BatchRanges(small_sizes, max_batch_bytes)) {
    std::vector<Entry*> batch;
    for (size_t k = begin; k < end; ++k) batch.push_back(marked[small[k]].e);
    std::vector<absl::Status> done = SwapInMarked(batch);
    for (size_t k = begin; k < end; ++k) {
      statuses[small[k]] = std::move(done[k - begin]);
    }
  }
  absl::Status first_error = absl::OkStatus();
  for (size_t i = 0; i < marked.size(); ++i) {
    if (!statuses[i].ok()) {
      if (first_error.ok()) first_error = statuses[i];
      continue;
    }
    result.moved.push_back(keys_of_marked[i]);
    result.bytes_moved += marked[i].size;
  }
  if (!first_error.ok()) return first_error;
  for (const BlockKey& key : busy) {
    Entry* e;
    uint64_t size;
    {
      MutexLock lock(&mu_);
      absl::StatusOr<Entry*> found = FindIdle(key);
      if (!found.ok()) return found.status();
      e = *found;
      if (e->ram() != nullptr) {
        result.already_there.push_back(key);
        continue;
      }
      e->io = Io::kSwappingIn;
      size = e->attrs.size_bytes;
    }
    if (absl::Status s = SwapInMarked(e); !s.ok()) return s;
    result.moved.push_back(key);
    result.bytes_moved += size;
  }
  result.duration = absl::Now() - start;
  return result;
}

absl::StatusOr<SwapResult> BlockStore::SwapOutBytes(uint64_t bytes) {
  return SwapOutVictims(bytes, /*ahead_of_need=*/false);
}

absl::StatusOr<SwapResult> BlockStore::SwapOutVictims(uint64_t bytes,
                                                      bool ahead_of_need) {
  const absl::Time start = absl::Now();
  SwapResult result;
  std::vector<Entry*> marked;
  {
    MutexLock lock(&mu_);
    SelectVictimsFairly(
        bytes,
        [](const Entry& v) {
          return v.io == Io::kIdle && v.ram() != nullptr && !v.attrs.pinned;
        },
        ahead_of_need);
    for (policy::Handle k : victims_) {
      Entry* v = Entry::Of(k);
      v->io = Io::kSwappingOut;
      marked.push_back(v);
    }
  }
  absl::Status s = SwapOutMarked(marked, &result);
  if (!s.ok() && result.moved.empty()) return s;
  result.duration = absl::Now() - start;
  return result;
}

absl::StatusOr<SwapResult> BlockStore::SwapInBytes(uint64_t bytes) {
  // The most recently used blocks on disk, up to `bytes` that fit in the
  // RAM budget's room: from recent_on_disk_, which vouches for them
  // without a pass over every block unless the blocks asked for reach
  // below its floor (it forgot some, or the server just started with more
  // blocks on disk than it holds).
  std::vector<BlockKey> keys;
  if (!PickRecentOnDisk(bytes, &keys)) {
    MutexLock scan_lock(&swap_in_scan_mu_);
    // Another call's pass may have rebuilt it meanwhile.
    if (!PickRecentOnDisk(bytes, &keys)) {
      RescanOnDisk(bytes);
      // Exact, unless blocks moved since the pass; take what it finds.
      (void)PickRecentOnDisk(bytes, &keys);
    }
  }
  return SwapIn(keys);
}

uint64_t BlockStore::RamRoom() const {
  return ram_budget_ > ram_used_ + ram_reserved_
             ? ram_budget_ - ram_used_ - ram_reserved_
             : 0;
}

bool BlockStore::PickRecentOnDisk(uint64_t bytes, std::vector<BlockKey>* keys) {
  keys->clear();
  MutexLock lock(&mu_);
  uint64_t room = RamRoom();
  uint64_t total = 0;
  return recent_on_disk_.Walk(
      [&](int64_t last_access_ms, absl::string_view name) {
        if (total >= bytes) return RecentOnDisk::Step::kStop;
        const Entry* e = FindCompact(name);
        if (e == nullptr || !e->OnDiskOnly() ||
            e->last_access_ms != last_access_ms) {
          return RecentOnDisk::Step::kForget;  // no longer what was noted
        }
        if (e->io != Io::kIdle || e->attrs.size_bytes > room) {
          return RecentOnDisk::Step::kKeep;
        }
        room -= e->attrs.size_bytes;
        total += e->attrs.size_bytes;
        keys->emplace_back(e->key());
        return total >= bytes ? RecentOnDisk::Step::kStop
                              : RecentOnDisk::Step::kKeep;
      });
}

void BlockStore::RescanOnDisk(uint64_t bytes) {
  // One pass over every block (ScanEntries, which lets writers in between
  // chunks) finds the newest blocks on disk only: as many as
  // recent_on_disk_ holds, and at least `bytes` of ones PickRecentOnDisk
  // could take now.
  uint64_t room;
  {
    MutexLock lock(&mu_);
    ++counters_.swap_in_scans;
    recent_on_disk_.BeginScan();
    room = RamRoom();
  }
  RecentOnDisk::Collector newest(options_.recent_on_disk_blocks, bytes);
  ScanEntries("", /*past=*/false, [&](const Entry& e) {
    if (e.OnDiskOnly()) {
      const bool takeable = e.io == Io::kIdle && e.attrs.size_bytes <= room;
      newest.Offer(e.last_access_ms, e.compact(),
                   takeable ? e.attrs.size_bytes : 0);
    }
    return true;
  });
  MutexLock lock(&mu_);
  std::move(newest).EndScan(recent_on_disk_);
}

absl::StatusOr<SwapResult> BlockStore::ShrinkRamTo(uint64_t target_bytes) {
  uint64_t excess;
  {
    ReaderMutexLock lock(&mu_);
    if (ram_used_ <= target_bytes) return SwapResult{};
    excess = ram_used_ - target_bytes;
  }
  return SwapOutVictims(excess, /*ahead_of_need=*/true);
}

}  // namespace tensorpager::storage
