// BlockStore: the group-committed swap-out and the batched swap-in of marked
// entries (their bytes move through the DiskTier).
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {

CompressionSettings BlockStore::CompressionFor(const Entry& e) const {
  CompressionSettings settings = options_.compression;
  const auto& by_region =
      options_.codec_by_region[static_cast<int>(e.attrs.region_type)];
  settings.codec = e.attrs.codec.value_or(by_region.value_or(settings.codec));
  return settings;
}

absl::Status BlockStore::SwapOutMarked(const std::vector<Entry*>& entries,
                                       SwapResult* result) {
  if (entries.empty()) return absl::OkStatus();
  const absl::Time start = absl::Now();
  struct Job {
    Entry* e;
    std::shared_ptr<const base::AlignedBuffer> data;  // keeps source.data alive
    DiskTier::Source source;
    bool clean = false;  // already had a durable copy
    absl::StatusOr<DiskCopy> copy = absl::UnknownError("not written");
  };
  std::vector<Job> jobs(entries.size());
  {
    MutexLock lock(&mu_);
    swaps_in_flight_ += static_cast<int>(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      Entry* e = entries[i];
      Job& job = jobs[i];
      job.e = e;
      job.data = e->ram();
      job.source = DiskTier::Source{job.data.get(), e->checksum,
                                    ElementBytes(e->attrs.dtype),
                                    CompressionFor(*e), SealFor(*e)};
      job.clean = e->disk.has_value();
    }
  }
  // Victims of an I/O unit or more are compressed and written side by
  // side, a thread each. Smaller ones go in batches from this thread (their
  // compression still side by side): one thread keeps the queue full
  // without a thread hop per block. The sync and the metadata commit below
  // are shared by all of them (group commit).
  std::vector<size_t> large;
  std::vector<size_t> small;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].clean) continue;
    (jobs[i].data->size() >= options_.io.io_unit_bytes ? large : small)
        .push_back(i);
  }
  swap_pool_->ParallelFor(large.size(), [&](size_t k) {
    Job& job = jobs[large[k]];
    disk_->Write({&job.source, 1}, {&job.copy, 1});
  });
  std::vector<uint64_t> small_sizes;
  for (size_t i : small) small_sizes.push_back(jobs[i].data->size());
  for (const auto& [begin, end] : BatchRanges(small_sizes, kBatchBytes)) {
    std::vector<DiskTier::Source> sources;
    std::vector<absl::StatusOr<DiskCopy>> copies(
        end - begin, absl::UnknownError("not written"));
    for (size_t k = begin; k < end; ++k) {
      sources.push_back(jobs[small[k]].source);
    }
    disk_->Write(sources, absl::MakeSpan(copies));
    for (size_t k = begin; k < end; ++k) {
      jobs[small[k]].copy = std::move(copies[k - begin]);
    }
  }
  absl::Status first_error = absl::OkStatus();
  bool any_written = false;
  for (Job& job : jobs) {
    if (job.clean) continue;
    if (job.copy.ok()) {
      any_written = true;
    } else if (first_error.ok()) {
      first_error = job.copy.status();
    }
  }
  auto written = [](const Job& job) { return !job.clean && job.copy.ok(); };
  if (any_written) {
    absl::Status s = disk_->Sync();
    if (s.ok()) {
      std::vector<std::pair<BlockKey, BlockRecordProto>> records;
      {
        ReaderMutexLock lock(&mu_);
        for (Job& job : jobs) {
          if (!written(job)) continue;
          BlockRecordProto r = RecordOf(*job.e);
          job.copy->ToRecord(&r);
          records.emplace_back(BlockKey(job.e->key()), std::move(r));
        }
      }
      s = meta_->PutBatch(records, /*sync=*/true);
    }
    if (!s.ok()) {
      if (first_error.ok()) first_error = s;
      for (Job& job : jobs) {
        if (!written(job)) continue;
        disk_->Free(job.copy->extent);
        job.copy = s;
      }
    }
  }
  const absl::Duration elapsed = absl::Now() - start;
  uint64_t moved_bytes = 0;
  {
    MutexLock lock(&mu_);
    for (Job& job : jobs) {
      Entry* e = job.e;
      if (job.clean || job.copy.ok()) {
        Recount recount(this, *e);
        if (!job.clean) e->disk.emplace(*job.copy);
        NoteLeavingRam(*e);
        ram_used_ -= e->attrs.size_bytes;
        UpdatePoolLimit();
        e->set_ram(nullptr);
        policy_->Remove(e->handle(), policy::RemoveReason::kEvicted);
        NoteIfOnDiskOnly(*e);
        result->moved.emplace_back(e->key());
        result->bytes_moved += e->attrs.size_bytes;
        moved_bytes += e->attrs.size_bytes;
        ++counters_.swap_outs;
        counters_.bytes_out += e->attrs.size_bytes;
      }
      e->io = Io::kIdle;
    }
    counters_.out_time += elapsed;
    swaps_in_flight_ -= static_cast<int>(jobs.size());
    io_done_.SignalAll();
  }
  if (options_.observer != nullptr && moved_bytes > 0) {
    options_.observer->OnSwapOut(moved_bytes, elapsed);
  }
  return first_error;
}

absl::Status BlockStore::SwapInMarked(Entry* e) {
  std::vector<absl::Status> statuses = SwapInMarked({&e, 1});
  return statuses[0];
}

std::vector<absl::Status> BlockStore::SwapInMarked(
    absl::Span<Entry* const> entries, bool prefetch) {
  const absl::Time start = absl::Now();
  struct Job {
    Entry* e = nullptr;
    uint64_t size = 0;
    bool reserved = false;
    base::AlignedBuffer buf;
    BlockKey key;  // what read.key views: an entry keeps no key to view
    DiskTier::Read read;
    absl::Status status;
  };
  std::vector<Job> jobs(entries.size());
  {
    ReaderMutexLock lock(&mu_);
    for (size_t i = 0; i < entries.size(); ++i) {
      Job& job = jobs[i];
      job.e = entries[i];
      job.size = job.e->attrs.size_bytes;
      job.key = job.e->key();
      job.read.key = job.key;
      job.read.copy = job.e->disk->Unpack();
      job.read.checksum = job.e->checksum;
      job.read.out = &job.buf;
    }
  }
  // Room and buffers first, then the reads in one engine batch.
  std::vector<IoRequest> reads;
  std::vector<size_t> reader;
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& job = jobs[i];
    job.status = ReserveRam(job.size, job.e);
    if (!job.status.ok()) continue;
    job.reserved = true;
    job.buf = buffers_->Take(job.size);
    if (!job.buf.ok()) {
      job.status = absl::ResourceExhaustedError(
          absl::StrCat("out of host memory allocating ", job.size, " bytes"));
      continue;
    }
    job.status = disk_->Prepare(&job.read);
    if (!job.status.ok()) continue;
    reads.push_back(job.read.request);
    reader.push_back(i);
  }
  disk_->Transfer(absl::MakeSpan(reads));
  for (size_t r = 0; r < reads.size(); ++r) {
    if (!reads[r].status.ok()) jobs[reader[r]].status = reads[r].status;
  }
  // Checksums and decompression are CPU work: side by side.
  auto check = [&](size_t i) {
    Job& job = jobs[i];
    job.status = disk_->Finish(&job.read, job.status);
  };
  if (jobs.size() > 1) {
    swap_pool_->ParallelFor(jobs.size(), check);
  } else {
    check(0);
  }

  std::vector<absl::Status> statuses;
  statuses.reserve(jobs.size());
  uint64_t bytes_in = 0;
  const absl::Duration elapsed = absl::Now() - start;
  {
    MutexLock lock(&mu_);
    for (Job& job : jobs) {
      Entry* e = job.e;
      Recount recount(this, *e);
      if (job.reserved) ram_reserved_ -= job.size;
      if (job.status.ok()) {
        e->set_ram(buffers_->Share(std::move(job.buf)));
        ram_used_ += job.size;
        policy_->Insert(e->handle(), job.size,
                        PriorityOf(e->attrs.region_type));
        if (e->attrs.pinned) policy_->SetPinned(e->handle(), true);
        ++counters_.swap_ins;
        counters_.bytes_in += job.size;
        bytes_in += job.size;
        if (prefetch) {
          e->prefetched = true;
          ++counters_.prefetched;
        }
      } else if (job.status.code() == absl::StatusCode::kDataLoss) {
        e->set_lost_reason(std::string(job.status.message()));
        meta_->Put(e->key(), RecordOf(*e), /*sync=*/false).IgnoreError();
      }
      e->io = Io::kIdle;
      statuses.push_back(job.status);
    }
    // As for swap-outs: one batch, its time once (an average per block).
    if (bytes_in > 0) counters_.in_time += elapsed;
    UpdatePoolLimit();
    io_done_.SignalAll();
  }
  for (Job& job : jobs) {
    if (job.buf.ok()) buffers_->Give(std::move(job.buf));
  }
  buffers_->Trim();  // the RAM tier grew: less room for free buffers
  if (options_.observer != nullptr && bytes_in > 0) {
    options_.observer->OnSwapIn(bytes_in, elapsed);
  }
  return statuses;
}

}  // namespace tensorpager::storage
