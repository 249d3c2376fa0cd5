// BlockStore: disk copies (extents, compression, checksums, engine batches) and
// the group-committed swap-out and batched swap-in of marked entries.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/base/log.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"
#include "storage/checksum.h"
#include "storage/private_dir.h"

namespace tensorpager::storage {

absl::StatusOr<Extent> BlockStore::AllocateExtent(uint64_t capacity) {
  absl::StatusOr<Extent> extent = allocator_->Allocate(capacity);
  if (!extent.ok()) return extent.status();
  {
    MutexLock lock(&file_mu_);
    if (extent->end() > file_bytes_) {
      uint64_t grow = std::min(
          options_.max_swap_bytes,
          std::max(extent->end(),
                   base::AlignUp(file_bytes_ + options_.file_growth_bytes)));
      absl::Status s = io_->Reserve(grow);
      if (!s.ok() && grow > extent->end()) {
        // The growth step does not fit the filesystem; the extent may.
        grow = extent->end();
        s = io_->Reserve(grow);
      }
      if (!s.ok()) {
        FreeExtent(*extent);
        return s;
      }
      file_bytes_ = grow;
    }
  }
  return extent;
}

std::optional<CompressedImage> BlockStore::CompressForDisk(
    const CopySource& source) {
  if (source.compression.codec == Codec::kNone) return std::nullopt;
  compress_attempts_.fetch_add(1, std::memory_order_relaxed);
  std::optional<CompressedImage> image =
      Compress(source.data->span(), source.element_bytes, source.compression,
               buffers_.get());
  if (!image) compress_skipped_.fetch_add(1, std::memory_order_relaxed);
  return image;
}

void BlockStore::WriteDiskCopies(absl::Span<const CopySource> sources,
                                 absl::Span<absl::StatusOr<DiskCopy>> copies) {
  // Compression is CPU work: side by side when there are several.
  std::vector<std::optional<CompressedImage>> images(sources.size());
  const bool any_codec = std::any_of(
      sources.begin(), sources.end(),
      [](const CopySource& s) { return s.compression.codec != Codec::kNone; });
  if (any_codec && sources.size() > 1) {
    swap_pool_->ParallelFor(sources.size(), [&](size_t i) {
      images[i] = CompressForDisk(sources[i]);
    });
  } else if (any_codec) {
    images[0] = CompressForDisk(sources[0]);
  }
  // Then one batch of writes: the engine keeps its queue full from this
  // thread, with no thread hop or wake-up per block.
  std::vector<IoRequest> writes;
  std::vector<size_t> writer;
  for (size_t i = 0; i < sources.size(); ++i) {
    const base::AlignedBuffer& stored =
        images[i] ? images[i]->bytes : *sources[i].data;
    absl::StatusOr<Extent> extent = AllocateExtent(stored.capacity());
    if (!extent.ok()) {
      copies[i] = extent.status();
      continue;
    }
    DiskCopy copy;
    copy.extent = *extent;
    copy.stored_bytes = stored.size();
    if (images[i]) {
      copy.codec = std::move(images[i]->codec);
      copy.stored_checksum = Checksum(stored.span());
    } else {
      copy.stored_checksum = sources[i].checksum;
    }
    copies[i] = std::move(copy);
    IoRequest write;
    write.op = IoOp::kWrite;
    write.offset = extent->offset;
    // The engine only reads the buffer of a write.
    const absl::Span<const std::byte> padded = stored.padded();
    write.data = {const_cast<std::byte*>(padded.data()), padded.size()};
    writes.push_back(write);
    writer.push_back(i);
  }
  io_in_flight_ += static_cast<int>(writes.size());
  io_->TransferBatch(absl::MakeSpan(writes));
  io_in_flight_ -= static_cast<int>(writes.size());
  for (size_t w = 0; w < writes.size(); ++w) {
    if (writes[w].status.ok()) continue;
    FreeExtent(copies[writer[w]]->extent);
    copies[writer[w]] = writes[w].status;
  }
  for (std::optional<CompressedImage>& image : images) {
    if (image) buffers_->Give(std::move(image->bytes));
  }
}

CompressionSettings BlockStore::CompressionFor(const Entry& e) const {
  CompressionSettings settings = options_.compression;
  const auto& by_region =
      options_.codec_by_region[static_cast<int>(e.attrs.region_type)];
  settings.codec = e.attrs.codec.value_or(by_region.value_or(settings.codec));
  return settings;
}

void BlockStore::FreeExtent(const Extent& extent) {
  if (absl::Status s = allocator_->Free(extent); !s.ok()) {
    TP_LOG(ERROR) << "extent accounting error: " << s.message();
  }
}

absl::Status BlockStore::CorruptCopy(const Entry& e, const DiskCopy& copy,
                                     absl::string_view what) const {
  return absl::DataLossError(absl::StrCat(
      "block ", e.key.ToString(), " failed its checksum on swap-in (", what,
      " at offset ", copy.extent.offset,
      "); its bytes are lost: unregister it or write it again"));
}

absl::Status BlockStore::PrepareRead(const Entry& e, const DiskCopy& copy,
                                     base::AlignedBuffer* out,
                                     base::AlignedBuffer* staging,
                                     IoRequest* read) {
  // A raw copy is read straight into the block's buffer; a compressed one
  // into a staging buffer first, of the block's size (a stored image is
  // never larger) so that it comes warm from the pool: images vary in
  // size, and a fresh buffer's first touch costs more than the read.
  if (copy.compressed()) {
    *staging = buffers_->Take(std::max(out->size(), copy.extent.length));
    if (!staging->ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "out of host memory allocating ", copy.extent.length, " bytes"));
    }
  } else if (out->capacity() < copy.extent.length) {
    return CorruptCopy(e, copy, "its extent is larger than the block");
  }
  base::AlignedBuffer& target = copy.compressed() ? *staging : *out;
  read->op = IoOp::kRead;
  read->offset = copy.extent.offset;
  read->data = target.padded().subspan(0, copy.extent.length);
  return absl::OkStatus();
}

absl::Status BlockStore::FinishRead(const Entry& e, const DiskCopy& copy,
                                    uint64_t checksum,
                                    base::AlignedBuffer* staging,
                                    base::AlignedBuffer* out) {
  if (copy.compressed()) {
    const auto image = staging->span().subspan(0, copy.stored_bytes);
    absl::Status decoded = Checksum(image) == copy.stored_checksum
                               ? Decompress(copy.codec, image, out->span())
                               : absl::DataLossError(
                                     "compressed image corrupted in the data "
                                     "file");
    buffers_->Give(std::move(*staging));
    if (!decoded.ok()) return CorruptCopy(e, copy, decoded.message());
  }
  if (Checksum(out->span()) != checksum) {
    return CorruptCopy(e, copy, "data file corrupted");
  }
  return absl::OkStatus();
}

absl::Status BlockStore::ReadVerified(const Entry& e, const DiskCopy& copy,
                                      uint64_t checksum,
                                      base::AlignedBuffer* out) {
  base::AlignedBuffer staging;
  IoRequest read;
  if (absl::Status s = PrepareRead(e, copy, out, &staging, &read); !s.ok()) {
    return s;
  }
  ++io_in_flight_;
  io_->TransferBatch({&read, 1});
  --io_in_flight_;
  if (!read.status.ok()) {
    if (staging.ok()) buffers_->Give(std::move(staging));
    return read.status;
  }
  return FinishRead(e, copy, checksum, &staging, out);
}

absl::Status BlockStore::SwapOutMarked(const std::vector<Entry*>& entries,
                                       SwapResult* result) {
  if (entries.empty()) return absl::OkStatus();
  const absl::Time start = absl::Now();
  struct Job {
    Entry* e;
    std::shared_ptr<const base::AlignedBuffer> data;  // keeps source.data alive
    CopySource source;
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
      job.data = e->ram;
      job.source = CopySource{job.data.get(), e->checksum,
                              ElementBytes(e->attrs.dtype), CompressionFor(*e)};
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
    WriteDiskCopies({&job.source, 1}, {&job.copy, 1});
  });
  std::vector<uint64_t> small_sizes;
  for (size_t i : small) small_sizes.push_back(jobs[i].data->size());
  for (const auto& [begin, end] : BatchRanges(small_sizes, kBatchBytes)) {
    std::vector<CopySource> sources;
    std::vector<absl::StatusOr<DiskCopy>> copies(
        end - begin, absl::UnknownError("not written"));
    for (size_t k = begin; k < end; ++k) {
      sources.push_back(jobs[small[k]].source);
    }
    WriteDiskCopies(sources, absl::MakeSpan(copies));
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
    absl::Status s = io_->Sync();
    if (s.ok()) {
      std::vector<std::pair<BlockKey, BlockRecordProto>> records;
      {
        ReaderMutexLock lock(&mu_);
        for (Job& job : jobs) {
          if (!written(job)) continue;
          BlockRecordProto r = RecordOf(*job.e);
          job.copy->ToRecord(&r);
          records.emplace_back(job.e->key, std::move(r));
        }
      }
      s = meta_->PutBatch(records, /*sync=*/true);
    }
    if (!s.ok()) {
      if (first_error.ok()) first_error = s;
      for (Job& job : jobs) {
        if (!written(job)) continue;
        FreeExtent(job.copy->extent);
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
        if (!job.clean) e->disk = *std::move(job.copy);
        NoteLeavingRam(*e);
        ram_used_ -= e->attrs.size_bytes;
        UpdatePoolLimit();
        e->ram.reset();
        policy_->Remove(e->handle, policy::RemoveReason::kEvicted);
        result->moved.push_back(e->key);
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
    DiskCopy copy;
    uint64_t checksum = 0;
    bool reserved = false;
    base::AlignedBuffer buf;
    base::AlignedBuffer staging;
    absl::Status status;
  };
  std::vector<Job> jobs(entries.size());
  {
    ReaderMutexLock lock(&mu_);
    for (size_t i = 0; i < entries.size(); ++i) {
      Job& job = jobs[i];
      job.e = entries[i];
      job.size = job.e->attrs.size_bytes;
      job.copy = *job.e->disk;
      job.checksum = job.e->checksum;
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
    IoRequest read;
    job.status = PrepareRead(*job.e, job.copy, &job.buf, &job.staging, &read);
    if (!job.status.ok()) continue;
    reads.push_back(read);
    reader.push_back(i);
  }
  io_in_flight_ += static_cast<int>(reads.size());
  io_->TransferBatch(absl::MakeSpan(reads));
  io_in_flight_ -= static_cast<int>(reads.size());
  for (size_t r = 0; r < reads.size(); ++r) {
    if (!reads[r].status.ok()) jobs[reader[r]].status = reads[r].status;
  }
  // Checksums and decompression are CPU work: side by side.
  auto check = [&](size_t i) {
    Job& job = jobs[i];
    if (job.status.ok()) {
      job.status =
          FinishRead(*job.e, job.copy, job.checksum, &job.staging, &job.buf);
    } else if (job.staging.ok()) {
      buffers_->Give(std::move(job.staging));
    }
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
        e->ram = buffers_->Share(std::move(job.buf));
        ram_used_ += job.size;
        policy_->Insert(e->handle, job.size, PriorityOf(e->attrs.region_type));
        if (e->attrs.pinned) policy_->SetPinned(e->handle, true);
        ++counters_.swap_ins;
        counters_.bytes_in += job.size;
        bytes_in += job.size;
        if (prefetch) {
          e->prefetched = true;
          ++counters_.prefetched;
        }
      } else if (job.status.code() == absl::StatusCode::kDataLoss) {
        e->lost_reason = std::string(job.status.message());
        meta_->Put(e->key, RecordOf(*e), /*sync=*/false).IgnoreError();
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
