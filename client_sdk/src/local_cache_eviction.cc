// LocalCache: making room in a pool (choosing victims, writing dirty ones
// back first), the end of a copy's life (dropped, abandoned, its memory
// kept as a spare or freed), explicit eviction and invalidation, and the
// pools' budgets under memory pressure.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client_sdk/src/local_cache.h"

namespace tensorpager::internal {
namespace {

// A new proto value fails the static_assert until it is given a share.
double BudgetShare(const CacheOptions& o, v1::PressureLevel level) {
  static_assert(v1::PressureLevel_ARRAYSIZE == 5, "give the new level a share");
  switch (level) {
    case v1::HIGH:
      return o.high_pressure_budget_share;
    case v1::CRITICAL:
      return o.critical_pressure_budget_share;
    default:
      return 1.0;
  }
}

std::string Bytes(uint64_t b) {
  if (b >= (1ull << 30) && b % (1ull << 20) == 0) {
    return absl::StrCat(b / double(1ull << 30), " GiB");
  }
  if (b >= (1ull << 20)) return absl::StrCat(b / double(1ull << 20), " MiB");
  return absl::StrCat(b, " bytes");
}

}  // namespace

absl::Status LocalCache::ReserveAndAllocate(Lock& lock, CachedCopy* c,
                                            uint64_t size) {
  const int pool = c->pool;
  const uint64_t bytes = BufferPool::ClassBytes(size);
  {
    const Pool& p = pools_[pool];
    if (bytes > p.effective_budget) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "block ", c->block->id.ToString(), " needs ", Bytes(bytes), " in ",
          Describe(pool), ", whose budget is ", Bytes(p.effective_budget),
          p.level >= v1::HIGH
              ? absl::StrCat(" while memory pressure is ",
                             v1::PressureLevel_Name(p.level), " (",
                             Bytes(p.budget), " otherwise)")
              : std::string(),
          "; raise CacheOptions budgets or access the block elsewhere"));
    }
  }
  if (absl::Status s = MakeRoom(lock, pool, bytes, false); !s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("no room for block ", c->block->id.ToString(),
                               ": ", s.message()));
  }
  Pool& p = pools_[pool];
  p.used += bytes;
  c->buffer.bytes = bytes;
  if (std::optional<RawBuffer> spare = p.buffers->TakeSpare(bytes)) {
    c->buffer = *spare;
    return absl::OkStatus();
  }
  // Keep used + spares within the budget: free spares of other classes.
  std::vector<RawBuffer> extra =
      p.buffers->TakeSparesAbove(p.budget > p.used ? p.budget - p.used : 0);
  lock.unlock();
  for (RawBuffer b : extra) p.buffers->Free(b);
  absl::StatusOr<RawBuffer> fresh = p.buffers->Allocate(bytes);
  lock.lock();
  if (!fresh.ok()) {
    pools_[pool].used -= bytes;
    c->buffer.bytes = 0;
    return fresh.status();
  }
  c->buffer = *fresh;
  return absl::OkStatus();
}

absl::Status LocalCache::MakeRoom(Lock& lock, int pool, uint64_t need,
                                  bool pressure) {
  for (;;) {
    Pool& p = pools_[pool];
    if (p.used + need <= p.effective_budget) return absl::OkStatus();
    const uint64_t excess = p.used + need - p.effective_budget;
    victims_.clear();
    p.policy->SelectVictims(
        excess,
        [this, pool](policy::Handle key) {
          CachedBlock* b = FindKey(key);
          // Pinned copies are out of the policy's reach already; checked
          // here too so no policy quirk can evict one.
          if (b == nullptr || b->pinned) return false;
          const CachedCopy* c = b->copies[pool].get();
          return c != nullptr && c->state == CopyState::kReady &&
                 c->handles == 0;
        },
        &victims_);
    if (victims_.empty()) {
      if (p.evicting > 0) {
        changed_.wait(lock);
        continue;
      }
      return absl::ResourceExhaustedError(absl::StrCat(
          Describe(pool), " is full: ", Bytes(p.used), " of ",
          Bytes(p.effective_budget),
          " are held by copies in use (open handles) or pinned; release "
          "handles or raise the budget"));
    }
    std::vector<CachedCopy*> write_back;
    const std::vector<policy::Handle> chosen = victims_;
    for (policy::Handle key : chosen) {
      CachedBlock* b = FindKey(key);
      CachedCopy* c = b->copies[pool].get();
      if (b->dirty && b->resident == 1) {
        c->state = CopyState::kEvicting;
        ++b->changing;
        p.evicting += c->buffer.bytes;
        p.policy->Remove(key, policy::RemoveReason::kEvicted);
        write_back.push_back(c);
      } else {
        DropCopy(c);
      }
      ++(pressure ? stats_.pressure_evictions : stats_.evictions);
    }
    if (!write_back.empty()) {
      if (absl::Status s = WriteBackAndDrop(lock, write_back); !s.ok())
        return s;
    }
  }
}

absl::Status LocalCache::WriteBackAndDrop(
    Lock& lock, const std::vector<CachedCopy*>& copies) {
  absl::Status first;
  for (CachedCopy* c : copies) {
    CachedBlock* b = c->block;
    const Placement where = pools_[c->pool].placement;
    lock.unlock();
    absl::Status s =
        backend_->StoreBlock(b->id.view(), where, c->buffer.ptr, b->size);
    lock.lock();
    Pool& p = pools_[c->pool];
    p.evicting -= c->buffer.bytes;
    --b->changing;
    if (s.ok()) {
      b->dirty = false;
      ++stats_.write_backs;
      stats_.bytes_written_back += b->size;
      DropCopy(c);
    } else {
      c->state = CopyState::kReady;
      p.policy->Insert(b->key, c->buffer.bytes, b->priority);
      if (b->pinned) p.policy->SetPinned(b->key, true);
      if (first.ok()) {
        first = absl::Status(
            s.code(), absl::StrCat("writing back dirty block ",
                                   b->id.ToString(), " failed: ", s.message()));
      }
    }
    changed_.notify_all();
  }
  return first;
}

void LocalCache::FinishLoad(CachedCopy* c) {
  CachedBlock* b = c->block;
  Pool& p = pools_[c->pool];
  c->state = CopyState::kReady;
  --b->changing;
  ++p.blocks;
  p.policy->Insert(b->key, c->buffer.bytes, b->priority);
  if (b->pinned) p.policy->SetPinned(b->key, true);
  changed_.notify_all();
}

void LocalCache::AbandonCopy(CachedCopy* c) {
  --c->block->changing;
  RemoveCopy(c);
}

void LocalCache::DropCopy(CachedCopy* c) {
  Pool& p = pools_[c->pool];
  // A copy being written back left the policy when it was chosen.
  if (c->state == CopyState::kReady) {
    p.policy->Remove(c->block->key, policy::RemoveReason::kEvicted);
  }
  --p.blocks;
  RemoveCopy(c);
}

void LocalCache::RemoveCopy(CachedCopy* c) {
  CachedBlock* b = c->block;
  Pool& p = pools_[c->pool];
  p.used -= c->buffer.bytes;
  if (c->buffer.ptr != nullptr) p.buffers->PutSpare(c->buffer.bytes, c->buffer);
  --b->resident;
  b->copies[c->pool].reset();
  if (b->resident == 0) {
    by_key_.erase(b->key);
    if (b->unreported > 0) {
      v1::AccessReport& r = orphan_reports_.emplace_back();
      r.set_namespace_(b->id.ns);
      r.set_id(b->id.id);
      r.set_count(b->unreported);
    }
    blocks_.erase(b->id.view());
  }
  changed_.notify_all();
}

void LocalCache::TrimSpares(Lock& lock, int pool) {
  Pool& p = pools_[pool];
  std::vector<RawBuffer> extra = p.buffers->TakeSparesAbove(
      p.effective_budget > p.used ? p.effective_budget - p.used : 0);
  if (extra.empty()) return;
  BufferPool* buffers = p.buffers.get();
  lock.unlock();
  for (RawBuffer b : extra) buffers->Free(b);
  lock.lock();
}

absl::Status LocalCache::Evict(storage::BlockKeyView id,
                               std::optional<Placement> where) {
  std::optional<int> only;
  if (where) {
    absl::StatusOr<int> pool = PoolIndex(*where);
    if (!pool.ok()) return pool.status();
    only = *pool;
  }
  Lock lock(mu_);
  for (;;) {
    CachedBlock* b = FindSettled(lock, id);
    if (b == nullptr) return absl::OkStatus();
    std::vector<CachedCopy*> targets;
    for (std::unique_ptr<CachedCopy>& c : b->copies) {
      if (c == nullptr || (only && c->pool != *only)) continue;
      if (c->handles > 0) return InUseError(*c, "before evicting it");
      targets.push_back(c.get());
    }
    if (targets.empty()) return absl::OkStatus();
    if (b->dirty && static_cast<int>(targets.size()) == b->resident) {
      // The last copy goes: the server must have the bytes first.
      const policy::Handle key = b->key;
      if (absl::Status s = FlushKey(lock, key); !s.ok()) return s;
      continue;  // re-check: the block may have changed meanwhile
    }
    for (CachedCopy* c : targets) {
      DropCopy(c);
      ++stats_.evictions;
    }
    return absl::OkStatus();
  }
}

absl::Status LocalCache::Invalidate(storage::BlockKeyView id) {
  Lock lock(mu_);
  CachedBlock* b = FindSettled(lock, id);
  if (b == nullptr) return absl::OkStatus();
  for (std::unique_ptr<CachedCopy>& c : b->copies) {
    if (c != nullptr && c->handles > 0) return InUseError(*c, "first");
  }
  std::vector<CachedCopy*> all;
  for (std::unique_ptr<CachedCopy>& c : b->copies) {
    if (c != nullptr) all.push_back(c.get());
  }
  for (CachedCopy* c : all) DropCopy(c);  // the last one erases b
  return absl::OkStatus();
}

absl::Status LocalCache::InvalidatePrefix(absl::string_view ns,
                                          absl::string_view prefix) {
  Lock lock(mu_);
  std::vector<CachedCopy*> all;
  for (bool settled = false; !settled;) {
    // As FindSettled: a block whose copies are loading or being written
    // back is waited for, then everything is looked at again.
    settled = true;
    all.clear();
    for (auto& [key, b] : blocks_) {
      if (key.ns != ns || !absl::StartsWith(key.id, prefix)) continue;
      if (b->changing > 0) {
        settled = false;
        break;
      }
      for (std::unique_ptr<CachedCopy>& c : b->copies) {
        if (c == nullptr) continue;
        if (c->handles > 0) return InUseError(*c, "first");
        all.push_back(c.get());
      }
    }
    if (!settled) changed_.wait(lock);
  }
  for (CachedCopy* c : all) DropCopy(c);  // the last of a block erases it
  return absl::OkStatus();
}

void LocalCache::ApplyPressure(absl::string_view resource,
                               v1::PressureLevel level) {
  int pool = -1;
  if (resource == "host_ram") {
    pool = 0;
  } else if (absl::ConsumePrefix(&resource, "gpu")) {
    int device = 0;
    if (absl::SimpleAtoi(resource, &device) && device >= 0 &&
        device < runtime_->device_count()) {
      pool = device + 1;
    }
  }
  if (pool < 0) return;
  Lock lock(mu_);
  Pool& p = pools_[pool];
  if (p.level == level) return;
  const v1::PressureLevel previous = p.level;
  p.level = level;
  const double share = std::clamp(BudgetShare(options_, level), 0.0, 1.0);
  p.effective_budget = static_cast<uint64_t>(p.budget * share);
  p.policy->SetCapacity(std::max<uint64_t>(p.effective_budget, 1));
  if (p.effective_budget >= p.used) {
    TrimSpares(lock, pool);
    return;
  }
  const uint64_t before = p.used;
  const uint64_t evicted_before = stats_.pressure_evictions;
  absl::Status s = MakeRoom(lock, pool, 0, true);
  TrimSpares(lock, pool);
  Pool& after = pools_[pool];
  log_->Info(absl::StrCat(
      resource == "host_ram" ? "host RAM" : p.placement.ToString(),
      " pressure ", v1::PressureLevel_Name(previous), " -> ",
      v1::PressureLevel_Name(level), ": local cache shrunk from ",
      Bytes(before), " to ", Bytes(after.used), " (",
      stats_.pressure_evictions - evicted_before, " copies dropped; budget ",
      Bytes(after.effective_budget), " until the level drops)",
      s.ok() ? std::string() : absl::StrCat("; ", s.message())));
}

}  // namespace tensorpager::internal
