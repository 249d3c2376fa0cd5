// BlockStore: Write and Read, the data path of a single block.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"
#include "storage/checksum.h"

namespace tensorpager::storage {

absl::StatusOr<WriteResult> BlockStore::Write(const BlockKey& key,
                                              uint64_t offset,
                                              base::AlignedBuffer data,
                                              const WriteOptions& options) {
  const uint64_t length = data.size();
  Entry* e;
  uint64_t size;
  bool durable;
  std::shared_ptr<const base::AlignedBuffer> current;
  std::optional<DiskCopy> old_copy;
  bool was_live;
  uint64_t old_checksum;
  uint32_t element_bytes;
  CompressionSettings compression;
  bool seal;
  {
    MutexLock lock(&mu_);
    absl::StatusOr<Entry*> found = FindIdle(key);
    if (!found.ok()) return found.status();
    e = *found;
    size = e->attrs.size_bytes;
    if (length == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("write to ", key.ToString(), " carries no data"));
    }
    if (offset > size || length > size - offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          "write of ", length, " bytes at offset ", offset,
          " does not fit block ", key.ToString(), " of ", size, " bytes"));
    }
    const bool whole = offset == 0 && length == size;
    if (!whole && (!e->written || !e->lost_reason().empty())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "block ", key.ToString(),
          " holds no data yet, so its first write must cover all ", size,
          " bytes (got ", length, " at offset ", offset, ")"));
    }
    durable = options.durable.value_or(DurableByDefault(e->attrs.region_type));
    if (durable) {
      const Entry* gets_a_copy = e;
      if (absl::Status s = DiskLimitAllows({&gets_a_copy, 1}); !s.ok()) {
        return s;
      }
    }
    current = e->ram();
    was_live = e->written && e->lost_reason().empty();
    if (e->disk) old_copy = e->disk->Unpack();
    old_checksum = e->checksum;
    element_bytes = ElementBytes(e->attrs.dtype);
    compression = CompressionFor(*e);
    seal = SealFor(*e);
    e->io = Io::kWriting;
  }
  auto abort = [&](absl::Status s) {
    MutexLock lock(&mu_);
    e->io = Io::kIdle;
    io_done_.SignalAll();
    return s;
  };
  // RAM the new copy adds: all of it unless it replaces a resident copy.
  const uint64_t reserve = current == nullptr ? size : 0;
  if (absl::Status s = ReserveRam(reserve, e); !s.ok()) return abort(s);
  auto release_and_abort = [&](absl::Status s) {
    ReleaseReservation(reserve);
    return abort(std::move(s));
  };

  std::shared_ptr<const base::AlignedBuffer> next;
  if (offset == 0 && length == size) {
    next = buffers_->Share(std::move(data));
  } else {
    base::AlignedBuffer merged = buffers_->Take(size);
    if (!merged.ok()) {
      return release_and_abort(absl::ResourceExhaustedError(
          absl::StrCat("out of host memory allocating ", size, " bytes")));
    }
    if (current != nullptr) {
      std::memcpy(merged.data(), current->data(), size);
    } else if (absl::Status s = disk_->ReadVerified(e->key(), *old_copy,
                                                    old_checksum, &merged);
               !s.ok()) {
      buffers_->Give(std::move(merged));
      return release_and_abort(s);
    }
    std::memcpy(merged.data() + offset, data.data(), length);
    buffers_->Give(std::move(data));
    next = buffers_->Share(std::move(merged));
  }
  const uint64_t checksum = Checksum(next->span());

  // Persist before publishing, so an acknowledged write never leaves a
  // record that would resurrect older bytes after a crash.
  std::optional<DiskCopy> new_copy;
  BlockRecordProto record;
  {
    ReaderMutexLock lock(&mu_);
    record = RecordOf(*e);
  }
  record.set_written(true);
  record.set_version(record.version() + 1);
  record.set_checksum(checksum);
  record.set_lost_reason("");
  DiskCopy::ClearRecord(&record);
  if (durable) {
    const DiskTier::Source source{next.get(), checksum, element_bytes,
                                  compression, seal};
    absl::StatusOr<DiskCopy> copy = absl::UnknownError("not written");
    disk_->Write({&source, 1}, {&copy, 1});
    if (!copy.ok()) return release_and_abort(copy.status());
    if (absl::Status s = disk_->Sync(); !s.ok()) {
      disk_->Free(copy->extent);
      return release_and_abort(s);
    }
    copy->ToRecord(&record);
    new_copy = *std::move(copy);
  }
  // A record that moves off an extent must be synced: unsynced, a power
  // loss could bring back the old record, and the block would read as its
  // older bytes instead of lost. A RAM-only record needs no sync (process
  // crashes keep it).
  const bool sync = durable || old_copy.has_value();
  // A rewrite of a block that lives only in RAM changes nothing a restart
  // could use (such a block comes back lost either way): its record stays
  // as it is, one RocksDB write less per update of a hot block.
  const bool persist = sync || !was_live;
  if (absl::Status s =
          persist ? meta_->Put(key, record, sync) : absl::OkStatus();
      !s.ok()) {
    if (new_copy) disk_->Free(new_copy->extent);
    return release_and_abort(s);
  }
  if (old_copy) disk_->Free(old_copy->extent);

  WriteResult result;
  {
    MutexLock lock(&mu_);
    Recount recount(this, *e);
    ram_reserved_ -= reserve;
    if (current == nullptr) {
      ram_used_ += size;
      UpdatePoolLimit();
      policy_->Insert(e->handle(), size, PriorityOf(e->attrs.region_type));
      if (e->attrs.pinned) policy_->SetPinned(e->handle(), true);
    } else {
      policy_->Touch(e->handle());
    }
    e->set_ram(std::move(next));
    if (new_copy) {
      e->disk.emplace(*new_copy);
    } else {
      e->disk.reset();
    }
    e->written = true;
    e->version = record.version();
    e->checksum = checksum;
    e->set_lost_reason("");
    e->io = Io::kIdle;
    io_done_.SignalAll();
    result.block = InfoOf(*e);
  }
  result.bytes_written = length;
  if (current == nullptr) buffers_->Trim();  // the RAM tier grew
  result.durable = durable;
  return result;
}

absl::StatusOr<ReadResult> BlockStore::Read(const BlockKey& key,
                                            const ReadOptions& options) {
  StoreObserver* observer = options_.observer;
  auto miss = [&](absl::Status s, AccessResult r) {
    if (observer != nullptr) observer->OnAccess(r);
    return s;
  };
  bool swapped_in = false;
  MutexLock lock(&mu_);
  for (;;) {
    Entry* e = Find(key);
    if (e == nullptr) {
      ++counters_.misses;
      return miss(absl::NotFoundError(absl::StrCat("block ", key.ToString(),
                                                   " is not registered")),
                  AccessResult::kMiss);
    }
    if (!e->lost_reason().empty()) {
      ++counters_.misses;
      return miss(
          absl::DataLossError(absl::StrCat("block ", key.ToString(),
                                           " is lost: ", e->lost_reason())),
          AccessResult::kLost);
    }
    if (!e->written && e->io == Io::kIdle) {
      return absl::FailedPreconditionError(
          absl::StrCat("block ", key.ToString(),
                       " was registered but never written; write it first"));
    }
    const uint64_t size = e->attrs.size_bytes;
    if (options.offset > size ||
        (options.length > 0 && options.length > size - options.offset)) {
      return absl::OutOfRangeError(
          absl::StrCat("range [", options.offset, ", +", options.length,
                       ") lies outside "
                       "block ",
                       key.ToString(), " of ", size, " bytes"));
    }
    if (e->ram() != nullptr && e->io != Io::kWriting) {
      swapped_in = swapped_in || options.swapped_in_for_read;
      ReadResult r;
      r.hit = !swapped_in;
      if (e->prefetched) {
        e->prefetched = false;
        ++counters_.prefetch_hits;
      }
      Touch(*e);
      if (e->attrs.has_sequence && options_.prefetch_depth > 0) {
        SchedulePrefetch(*e);
      }
      r.block = InfoOf(*e);
      if (!options.touch_only) r.data = e->ram();
      r.offset = options.offset;
      r.length = options.length == 0 ? size - options.offset : options.length;
      if (swapped_in) {
        ++counters_.disk_hits;
      } else {
        ++counters_.ram_hits;
      }
      if (observer != nullptr) {
        observer->OnAccess(swapped_in ? AccessResult::kDiskHit
                                      : AccessResult::kRamHit);
      }
      return r;
    }
    if (e->io != Io::kIdle) {
      // Being written, swapped in or out by someone else: take the result.
      swapped_in = swapped_in || e->io == Io::kSwappingIn;
      io_done_.Wait(&mu_);
      continue;
    }
    e->io = Io::kSwappingIn;
    swapped_in = true;
    mu_.Unlock();
    absl::Status s = SwapInMarked(e);
    mu_.Lock();
    if (!s.ok()) {
      ++counters_.misses;
      return miss(s, s.code() == absl::StatusCode::kDataLoss
                         ? AccessResult::kLost
                         : AccessResult::kMiss);
    }
  }
}

}  // namespace tensorpager::storage
