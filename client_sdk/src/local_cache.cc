// LocalCache: its pools, the index of blocks and copies, acquiring a copy
// (and taking a block for writing), pinning, statistics and access
// reports. Making room and dropping copies are in local_cache_eviction.cc,
// moving bytes in local_cache_transfers.cc.
#include "client_sdk/src/local_cache.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/block_name_key.h"

namespace tensorpager::internal {
namespace {

// By name: the proto's and the policies' names agree (proto_enums_test
// pins them). ALGORITHM_UNSPECIFIED and unknown numbers: LRU.
policy::Algorithm PolicyAlgorithm(v1::Algorithm a) {
  policy::Algorithm out = policy::Algorithm::kLru;
  policy::ParseAlgorithm(v1::Algorithm_Name(a), &out);
  return out;
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

CachedBlock* LocalCache::Find(storage::BlockKeyView id) {
  auto it = blocks_.find(id);
  return it == blocks_.end() ? nullptr : it->second.get();
}

CachedBlock* LocalCache::FindKey(policy::Handle key) {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second;
}

CachedBlock* LocalCache::FindSettled(Lock& lock, storage::BlockKeyView id) {
  for (;;) {
    CachedBlock* b = Find(id);
    if (b == nullptr || b->changing == 0) return b;
    changed_.wait(lock);
  }
}

CachedCopy* LocalCache::SourceCopy(CachedBlock* b) {
  CachedCopy* src = nullptr;
  for (std::unique_ptr<CachedCopy>& o : b->copies) {
    if (o != nullptr && (src == nullptr || o->pool == 0)) src = o.get();
  }
  return src;
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

absl::Status LocalCache::InUseError(const CachedCopy& c,
                                    absl::string_view then) const {
  return absl::FailedPreconditionError(
      absl::StrCat("block ", c.block->id.ToString(), " is in use on ",
                   pools_[c.pool].placement.ToString(), " (", c.handles,
                   " handle(s)); release them ", then));
}

absl::StatusOr<BlockHandle> LocalCache::Acquire(const BlockName& name,
                                                Placement where,
                                                AccessMode mode) {
  absl::StatusOr<int> pool = PoolIndex(where);
  if (!pool.ok()) return pool.status();
  absl::StatusOr<storage::BlockKeyView> key = CheckedKey(name);
  if (!key.ok()) return key.status();
  BlockHandle h;
  Lock lock(mu_);
  bool local = false;
  absl::StatusOr<CachedCopy*> c =
      AcquireCopy(lock, *key, *pool, mode, true, &local);
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
  absl::StatusOr<storage::BlockKeyView> key = CheckedKey(name);
  if (!key.ok()) return key.status();
  Lock lock(mu_);
  bool local = false;
  absl::StatusOr<CachedCopy*> c =
      AcquireCopy(lock, *key, *pool, AccessMode::kRead, false, &local);
  if (!c.ok()) return c.status();
  --(*c)->handles;
  ++stats_.prefetches;
  return absl::OkStatus();
}

absl::StatusOr<CachedCopy*> LocalCache::AcquireCopy(Lock& lock,
                                                    storage::BlockKeyView id,
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
    CachedCopy* src = SourceCopy(b);
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
      return InUseError(*o, absl::StrCat("before writing it on ",
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

void LocalCache::SetPinned(storage::BlockKeyView id, bool pinned) {
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

void LocalCache::TakeReports(absl::Duration max_wait,
                             std::vector<v1::AccessReport>* out) {
  Lock lock(mu_);
  reports_ready_.wait_for(lock, absl::ToChronoNanoseconds(max_wait), [this] {
    return pending_reports_ >= report_batch_ || stop_waiting_;
  });
  for (policy::Handle key : report_queue_) {
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

}  // namespace tensorpager::internal
