// LocalCache: moving a block's bytes: in from the server, between two
// local copies (host and devices), zero-filled for write-only access, and
// back to the server when dirty (flush).
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/device_pipeline.h"
#include "client_sdk/src/local_cache.h"

namespace tensorpager::internal {

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
                                                       storage::BlockKeyView id,
                                                       int pool,
                                                       AccessMode mode) {
  auto [it, inserted] = blocks_.try_emplace(storage::BlockKey(id), nullptr);
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

absl::Status LocalCache::FlushKey(Lock& lock, policy::Handle key) {
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
    CachedCopy* c = SourceCopy(b);
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
  std::vector<policy::Handle> dirty;
  for (auto& [id, b] : blocks_) {
    if (b->dirty) dirty.push_back(b->key);
  }
  absl::Status first;
  for (policy::Handle key : dirty) {
    absl::Status s = FlushKey(lock, key);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

absl::Status LocalCache::Flush(storage::BlockKeyView id) {
  Lock lock(mu_);
  CachedBlock* b = Find(id);
  if (b == nullptr) return absl::OkStatus();
  return FlushKey(lock, b->key);
}

bool LocalCache::IsDirty(storage::BlockKeyView id) {
  Lock lock(mu_);
  CachedBlock* b = Find(id);
  return b != nullptr && b->dirty;
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
