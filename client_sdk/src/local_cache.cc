#include "client_sdk/src/local_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client_sdk/src/device_pipeline.h"

namespace tensorpager::internal {
namespace {

policy::Algorithm PolicyAlgorithm(v1::Algorithm a) {
  switch (a) {
    case v1::CLOCK:
      return policy::Algorithm::kClock;
    case v1::ADAPTIVE:
      return policy::Algorithm::kAdaptive;
    default:
      return policy::Algorithm::kLru;
  }
}

double BudgetShare(const CacheOptions& o, v1::PressureLevel level) {
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

LocalCache::LocalCache(const CacheOptions& options, uint32_t report_batch,
                       std::shared_ptr<DeviceRuntime> runtime,
                       StreamPool* streams, CacheBackend* backend,
                       base::Logger* log)
    : options_(options),
      report_batch_(std::max<uint32_t>(report_batch, 1)),
      runtime_(std::move(runtime)),
      streams_(streams),
      backend_(backend),
      log_(log) {
  const int devices = runtime_->device_count();
  DeviceRuntime* rt = runtime_.get();
  const bool pinned_host = devices > 0 && options_.pin_host_memory;
  pools_.resize(1 + devices);
  for (int i = 0; i <= devices; ++i) {
    Pool& p = pools_[i];
    if (i == 0) {
      p.placement = Placement::Host();
      p.budget = options_.host_budget_bytes;
      if (pinned_host) {
        p.buffers = std::make_unique<BufferPool>(
            [rt](size_t n) { return rt->AllocPinned(n); },
            [rt](void* ptr) { rt->FreePinned(ptr); });
      } else {
        // Host mode, or pinning turned off: ordinary page-aligned memory.
        std::shared_ptr<DeviceRuntime> plain =
            HostOnlyDeviceRuntime("host cache");
        p.buffers = std::make_unique<BufferPool>(
            [plain](size_t n) { return plain->AllocPinned(n); },
            [plain](void* ptr) { plain->FreePinned(ptr); });
      }
    } else {
      const int d = i - 1;
      p.placement = Placement::Device(d);
      p.budget =
          static_cast<size_t>(d) < options_.gpu_budget_bytes_by_device.size()
              ? options_.gpu_budget_bytes_by_device[d]
              : options_.gpu_budget_bytes;
      p.buffers = std::make_unique<BufferPool>(
          [rt, d](size_t n) { return rt->AllocDevice(d, n); },
          [rt, d](void* ptr) { rt->FreeDevice(d, ptr); });
    }
    p.effective_budget = p.budget;
    p.policy = policy::MakePolicy(PolicyAlgorithm(options_.algorithm));
    p.policy->SetCapacity(p.budget);
  }
}

LocalCache::~LocalCache() {
  Lock lock(mu_);
  size_t held = 0;
  for (auto& [id, b] : blocks_) {
    for (std::unique_ptr<CachedCopy>& c : b->copies) {
      if (c == nullptr) continue;
      held += c->handles;
      pools_[c->pool].buffers->Free(c->buffer);
    }
  }
  if (held > 0) {
    log_->Warning(absl::StrCat(
        held,
        " block handle(s) outlived their Client; their pointers are "
        "now invalid"));
  }
  blocks_.clear();
}

Placement LocalCache::PlacementOf(int pool) {
  return pool == 0 ? Placement::Host() : Placement::Device(pool - 1);
}

absl::StatusOr<int> LocalCache::PoolIndex(Placement where) const {
  if (where.is_host()) return 0;
  if (runtime_->device_count() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot place a block on ", where.ToString(),
        ": the SDK runs in host mode (", runtime_->unavailable_reason(),
        "); use Placement::Host()"));
  }
  if (where.device() >= runtime_->device_count()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot place a block on ", where.ToString(), ": ",
                     runtime_->device_count(), " CUDA device(s) present"));
  }
  return where.device() + 1;
}

CachedBlock* LocalCache::Find(BlockIdView id) {
  auto it = blocks_.find(id);
  return it == blocks_.end() ? nullptr : it->second.get();
}

CachedBlock* LocalCache::FindKey(policy::Key key) {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second;
}

int LocalCache::PriorityOf(v1::RegionType type) const {
  const size_t i = static_cast<size_t>(type);
  return i < options_.region_priority.size() ? options_.region_priority[i] : 0;
}

std::string LocalCache::Describe(int pool) const {
  return pool == 0
             ? "the host cache"
             : absl::StrCat("the cache on ", pools_[pool].placement.ToString());
}

absl::StatusOr<BlockHandle> LocalCache::Acquire(const BlockName& name,
                                                Placement where,
                                                AccessMode mode) {
  absl::StatusOr<int> pool = PoolIndex(where);
  if (!pool.ok()) return pool.status();
  BlockHandle h;
  Lock lock(mu_);
  bool local = false;
  absl::StatusOr<CachedCopy*> c =
      AcquireCopy(lock, BlockIdView(name), *pool, mode, true, &local);
  if (!c.ok()) return c.status();
  h.cache_ = this;
  h.copy_ = *c;
  h.data_ = (*c)->buffer.ptr;
  h.size_ = (*c)->block->size;
  h.placement_ = where;
  h.mode_ = mode;
  h.local_ = local;
  return h;
}

absl::Status LocalCache::Load(const BlockName& name, Placement where) {
  absl::StatusOr<int> pool = PoolIndex(where);
  if (!pool.ok()) return pool.status();
  Lock lock(mu_);
  bool local = false;
  absl::StatusOr<CachedCopy*> c = AcquireCopy(lock, BlockIdView(name), *pool,
                                              AccessMode::kRead, false, &local);
  if (!c.ok()) return c.status();
  --(*c)->handles;
  ++stats_.prefetches;
  return absl::OkStatus();
}

absl::StatusOr<CachedCopy*> LocalCache::AcquireCopy(Lock& lock, BlockIdView id,
                                                    int pool, AccessMode mode,
                                                    bool count, bool* local) {
  for (;;) {
    CachedBlock* b = Find(id);
    if (b == nullptr) break;
    CachedCopy* c = b->copies[pool].get();
    if (c != nullptr && c->state == CopyState::kReady &&
        (mode == AccessMode::kRead || b->changing == 0)) {
      if (mode != AccessMode::kRead) {
        if (absl::Status s = MakeExclusive(b, pool); !s.ok()) return s;
        TakeForWriting(b);
      }
      ++c->handles;
      pools_[pool].policy->Touch(b->key);
      if (count) {
        ++stats_.hits;
        NoteAccess(b);
      }
      *local = true;
      return c;
    }
    if (b->changing > 0) {
      // A copy is loading (use it when it lands) or a dirty copy is being
      // written back (the server's bytes are stale until it is done).
      changed_.wait(lock);
      continue;
    }
    CachedCopy* src = nullptr;
    for (std::unique_ptr<CachedCopy>& o : b->copies) {
      if (o != nullptr && (src == nullptr || o->pool == 0)) src = o.get();
    }
    if (src == nullptr) break;  // cannot happen: a block has copies
    absl::StatusOr<CachedCopy*> copy = CopyFromLocal(lock, b, src, pool);
    if (!copy.ok()) return copy.status();
    if (mode != AccessMode::kRead) {
      if (absl::Status s = MakeExclusive(b, pool); !s.ok()) {
        --(*copy)->handles;
        return s;
      }
      TakeForWriting(b);
    }
    if (count) {
      ++stats_.local_transfers;
      NoteAccess(b);
    }
    *local = true;
    return copy;
  }
  absl::StatusOr<CachedCopy*> c = LoadFromServer(lock, id, pool, mode);
  if (c.ok() && count) ++stats_.misses;
  return c;
}

void LocalCache::TakeForWriting(CachedBlock* b) {
  b->dirty = true;
  ++b->write_handles;
  ++b->version;
}

void LocalCache::NoteAccess(CachedBlock* b) {
  if (b->unreported++ == 0) report_queue_.push_back(b->key);
  if (b->unreported == std::numeric_limits<uint32_t>::max()) {
    // Hand the full count over and start again.
    orphan_reports_.emplace_back();
    orphan_reports_.back().set_namespace_(b->id.ns);
    orphan_reports_.back().set_id(b->id.id);
    orphan_reports_.back().set_count(b->unreported);
    b->unreported = 0;
  }
  // Only the access that completes a batch wakes the reporter.
  if (++pending_reports_ == report_batch_) reports_ready_.notify_one();
}

absl::Status LocalCache::MakeExclusive(CachedBlock* b, int pool) {
  for (std::unique_ptr<CachedCopy>& o : b->copies) {
    if (o == nullptr || o->pool == pool) continue;
    if (o->handles > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("block ", b->id.ToString(), " is in use on ",
                       pools_[o->pool].placement.ToString(), " (", o->handles,
                       " handle(s)); release them before writing it on ",
                       pools_[pool].placement.ToString()));
    }
  }
  for (std::unique_ptr<CachedCopy>& o : b->copies) {
    if (o != nullptr && o->pool != pool) DropCopy(o.get());
  }
  return absl::OkStatus();
}

CachedCopy* LocalCache::NewCopy(CachedBlock* b, int pool) {
  b->copies[pool] = std::make_unique<CachedCopy>();
  CachedCopy* c = b->copies[pool].get();
  c->block = b;
  c->pool = pool;
  c->state = CopyState::kLoading;
  ++b->resident;
  ++b->changing;
  return c;
}

absl::StatusOr<CachedCopy*> LocalCache::CopyFromLocal(Lock& lock,
                                                      CachedBlock* b,
                                                      CachedCopy* src,
                                                      int pool) {
  ++src->handles;  // keeps the source in place while the lock is released
  CachedCopy* c = NewCopy(b, pool);
  absl::Status s = ReserveAndAllocate(lock, c, b->size);
  if (s.ok()) {
    lock.unlock();
    s = CopyBytes(*c, *src, b->size);
    lock.lock();
  }
  --src->handles;
  if (!s.ok()) {
    AbandonCopy(c);
    return s;
  }
  if (pool == 0) {
    stats_.bytes_device_to_host += b->size;
  } else {
    stats_.bytes_host_to_device += b->size;
  }
  FinishLoad(c);
  ++c->handles;
  return c;
}

absl::StatusOr<CachedCopy*> LocalCache::LoadFromServer(Lock& lock,
                                                       BlockIdView id, int pool,
                                                       AccessMode mode) {
  auto [it, inserted] = blocks_.try_emplace(BlockId(id), nullptr);
  if (inserted) {
    it->second = std::make_unique<CachedBlock>(id, next_key_++, pools_.size());
    by_key_[it->second->key] = it->second.get();
  }
  CachedBlock* b = it->second.get();
  CachedCopy* c = NewCopy(b, pool);
  const Placement where = pools_[pool].placement;
  absl::StatusOr<v1::BlockInfo> info;
  if (mode == AccessMode::kWriteOnly) {
    lock.unlock();
    info = backend_->DescribeBlock(b->id.view());
    lock.lock();
    absl::Status s = info.status();
    if (s.ok()) s = ReserveAndAllocate(lock, c, info->size_bytes());
    if (s.ok()) {
      lock.unlock();
      s = ZeroFill(*c, info->size_bytes());
      lock.lock();
    }
    if (!s.ok()) info = s;
  } else {
    lock.unlock();
    info = backend_->FetchBlock(
        b->id.view(), where,
        [&](const v1::BlockInfo& block) -> absl::StatusOr<void*> {
          lock.lock();
          absl::Status s = ReserveAndAllocate(lock, c, block.size_bytes());
          lock.unlock();
          if (!s.ok()) return s;
          return c->buffer.ptr;
        });
    lock.lock();
  }
  if (!info.ok()) {
    AbandonCopy(c);
    return info.status();
  }
  b->size = info->size_bytes();
  b->priority = PriorityOf(info->region_type());
  b->pinned = info->pinned();
  if (mode == AccessMode::kWriteOnly) {
    TakeForWriting(b);
  } else {
    stats_.bytes_fetched += b->size;
    if (mode == AccessMode::kReadWrite) TakeForWriting(b);
  }
  FinishLoad(c);
  ++c->handles;
  return c;
}

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
        [this, pool](policy::Key key) {
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
    const std::vector<policy::Key> chosen = victims_;
    for (policy::Key key : chosen) {
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

void LocalCache::Release(CachedCopy* copy, AccessMode mode) {
  Lock lock(mu_);
  --copy->handles;
  if (mode != AccessMode::kRead) --copy->block->write_handles;
}

absl::Status LocalCache::MarkDirty(CachedCopy* copy) {
  Lock lock(mu_);
  CachedBlock* b = copy->block;
  if (absl::Status s = MakeExclusive(b, copy->pool); !s.ok()) return s;
  TakeForWriting(b);
  return absl::OkStatus();
}

absl::Status LocalCache::FlushKey(Lock& lock, policy::Key key) {
  for (;;) {
    CachedBlock* b = FindKey(key);
    if (b == nullptr || !b->dirty) return absl::OkStatus();
    if (b->write_handles > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "block ", b->id.ToString(), " is open for writing (",
          b->write_handles, " handle(s)); release them before flushing"));
    }
    if (b->changing > 0) {
      changed_.wait(lock);
      continue;
    }
    CachedCopy* c = nullptr;
    for (std::unique_ptr<CachedCopy>& o : b->copies) {
      if (o != nullptr && (c == nullptr || o->pool == 0)) c = o.get();
    }
    ++c->handles;  // no eviction, no writer while the lock is released
    const uint64_t version = b->version;
    const Placement where = pools_[c->pool].placement;
    lock.unlock();
    absl::Status s =
        backend_->StoreBlock(b->id.view(), where, c->buffer.ptr, b->size);
    lock.lock();
    --c->handles;
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("writing back dirty block ", b->id.ToString(),
                                 " failed: ", s.message()));
    }
    ++stats_.write_backs;
    stats_.bytes_written_back += b->size;
    if (b->version == version) b->dirty = false;
    return absl::OkStatus();
  }
}

absl::Status LocalCache::FlushAll() {
  Lock lock(mu_);
  std::vector<policy::Key> dirty;
  for (auto& [id, b] : blocks_) {
    if (b->dirty) dirty.push_back(b->key);
  }
  absl::Status first;
  for (policy::Key key : dirty) {
    absl::Status s = FlushKey(lock, key);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

absl::Status LocalCache::Flush(BlockIdView id) {
  Lock lock(mu_);
  CachedBlock* b = Find(id);
  if (b == nullptr) return absl::OkStatus();
  return FlushKey(lock, b->key);
}

bool LocalCache::IsDirty(BlockIdView id) {
  Lock lock(mu_);
  CachedBlock* b = Find(id);
  return b != nullptr && b->dirty;
}

absl::Status LocalCache::Evict(BlockIdView id, std::optional<Placement> where) {
  std::optional<int> only;
  if (where) {
    absl::StatusOr<int> pool = PoolIndex(*where);
    if (!pool.ok()) return pool.status();
    only = *pool;
  }
  Lock lock(mu_);
  for (;;) {
    CachedBlock* b = Find(id);
    if (b == nullptr) return absl::OkStatus();
    if (b->changing > 0) {
      changed_.wait(lock);
      continue;
    }
    std::vector<CachedCopy*> targets;
    for (std::unique_ptr<CachedCopy>& c : b->copies) {
      if (c == nullptr || (only && c->pool != *only)) continue;
      if (c->handles > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("block ", b->id.ToString(), " is in use on ",
                         pools_[c->pool].placement.ToString(), " (", c->handles,
                         " handle(s)); release them before evicting it"));
      }
      targets.push_back(c.get());
    }
    if (targets.empty()) return absl::OkStatus();
    if (b->dirty && static_cast<int>(targets.size()) == b->resident) {
      // The last copy goes: the server must have the bytes first.
      const policy::Key key = b->key;
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

absl::Status LocalCache::Invalidate(BlockIdView id) {
  Lock lock(mu_);
  for (;;) {
    CachedBlock* b = Find(id);
    if (b == nullptr) return absl::OkStatus();
    if (b->changing > 0) {
      changed_.wait(lock);
      continue;
    }
    for (std::unique_ptr<CachedCopy>& c : b->copies) {
      if (c != nullptr && c->handles > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("block ", b->id.ToString(), " is in use on ",
                         pools_[c->pool].placement.ToString(), " (", c->handles,
                         " handle(s)); release them first"));
      }
    }
    std::vector<CachedCopy*> all;
    for (std::unique_ptr<CachedCopy>& c : b->copies) {
      if (c != nullptr) all.push_back(c.get());
    }
    for (CachedCopy* c : all) DropCopy(c);  // the last one erases b
    return absl::OkStatus();
  }
}

void LocalCache::SetPinned(BlockIdView id, bool pinned) {
  Lock lock(mu_);
  CachedBlock* b = Find(id);
  if (b == nullptr) return;
  b->pinned = pinned;
  for (std::unique_ptr<CachedCopy>& c : b->copies) {
    if (c != nullptr && c->state == CopyState::kReady) {
      pools_[c->pool].policy->SetPinned(b->key, pinned);
    }
  }
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

void LocalCache::TakeReports(absl::Duration max_wait,
                             std::vector<v1::AccessReport>* out) {
  Lock lock(mu_);
  reports_ready_.wait_for(lock, absl::ToChronoNanoseconds(max_wait), [this] {
    return pending_reports_ >= report_batch_ || stop_waiting_;
  });
  for (policy::Key key : report_queue_) {
    CachedBlock* b = FindKey(key);
    if (b == nullptr || b->unreported == 0) continue;
    v1::AccessReport& r = out->emplace_back();
    r.set_namespace_(b->id.ns);
    r.set_id(b->id.id);
    r.set_count(b->unreported);
    b->unreported = 0;
  }
  for (v1::AccessReport& r : orphan_reports_) out->push_back(std::move(r));
  report_queue_.clear();
  orphan_reports_.clear();
  pending_reports_ = 0;
}

void LocalCache::StopWaiting() {
  Lock lock(mu_);
  stop_waiting_ = true;
  reports_ready_.notify_all();
}

void LocalCache::CountReported(uint64_t accesses) {
  Lock lock(mu_);
  stats_.accesses_reported += accesses;
}

CacheStats LocalCache::Stats() const {
  Lock lock(mu_);
  CacheStats s = stats_;
  for (const Pool& p : pools_) {
    PoolStats& ps = s.pools.emplace_back();
    ps.placement = p.placement;
    ps.budget_bytes = p.budget;
    ps.effective_budget_bytes = p.effective_budget;
    ps.resident_bytes = p.used;
    ps.spare_bytes = p.buffers->spare_bytes();
    ps.blocks = p.blocks;
    ps.pressure = p.level;
  }
  return s;
}

uint64_t LocalCache::HeldBytes(Placement where) const {
  absl::StatusOr<int> pool = PoolIndex(where);
  if (!pool.ok()) return 0;
  Lock lock(mu_);
  const Pool& p = pools_[*pool];
  return p.used + p.buffers->spare_bytes();
}

absl::Status LocalCache::CopyBytes(const CachedCopy& dst, const CachedCopy& src,
                                   uint64_t size) {
  const Placement to = PlacementOf(dst.pool);
  const Placement from = PlacementOf(src.pool);
  if (to.is_device() && from.is_device()) {
    // Between two GPUs: through the host, pipelined on both sides.
    absl::StatusOr<StreamPool::Lease> out = streams_->Acquire(from.device());
    if (!out.ok()) return out.status();
    absl::StatusOr<StreamPool::Lease> in = streams_->Acquire(to.device());
    if (!in.ok()) return in.status();
    DeviceDownload download(&**out, src.buffer.ptr, size);
    DeviceUpload upload(&**in, dst.buffer.ptr);
    uint64_t offset = 0;
    for (;;) {
      absl::StatusOr<absl::string_view> chunk = download.Next();
      if (!chunk.ok()) return chunk.status();
      if (chunk->empty()) break;
      if (absl::Status s = upload.Add(offset, *chunk); !s.ok()) return s;
      offset += chunk->size();
    }
    return upload.Finish();
  }
  const int device = to.is_device() ? to.device() : from.device();
  absl::StatusOr<StreamPool::Lease> lease = streams_->Acquire(device);
  if (!lease.ok()) return lease.status();
  DeviceStream& stream = (*lease)->stream();
  if (absl::Status s =
          stream.CopyAsync(dst.buffer.ptr, src.buffer.ptr, size,
                           to.is_device() ? CopyDirection::kHostToDevice
                                          : CopyDirection::kDeviceToHost);
      !s.ok()) {
    return s;
  }
  return stream.Synchronize();
}

absl::Status LocalCache::ZeroFill(const CachedCopy& c, uint64_t size) {
  const Placement where = PlacementOf(c.pool);
  if (where.is_host()) {
    std::memset(c.buffer.ptr, 0, size);
    return absl::OkStatus();
  }
  return runtime_->Zero(where.device(), c.buffer.ptr, size);
}

}  // namespace tensorpager::internal
