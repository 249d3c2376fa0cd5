#include "storage/disk_tier.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/base/log.h"
#include "storage/checksum.h"
#include "storage/encryption.h"

namespace tensorpager::storage {

void DiskCopy::ToRecord(BlockRecordProto* r) const {
  r->set_on_disk(true);
  r->set_extent_offset(extent.offset);
  r->set_extent_length(extent.length);
  r->set_stored_bytes(stored_bytes);
  r->set_codec(codec);
  r->set_stored_checksum(stored_checksum);
  r->set_key_id(key_id);
  r->set_nonce(nonce);
}

void DiskCopy::ClearRecord(BlockRecordProto* r) {
  r->clear_on_disk();
  r->clear_extent_offset();
  r->clear_extent_length();
  r->clear_stored_bytes();
  r->clear_codec();
  r->clear_stored_checksum();
  r->clear_key_id();
  r->clear_nonce();
}

std::optional<DiskCopy> DiskCopy::FromRecord(const BlockRecordProto& r) {
  if (!r.on_disk()) return std::nullopt;
  DiskCopy copy;
  copy.extent = Extent{r.extent_offset(), r.extent_length()};
  copy.stored_bytes = r.stored_bytes();
  copy.stored_checksum = r.stored_checksum();
  copy.codec = r.codec().empty() ? "none" : r.codec();
  copy.key_id = r.key_id();
  copy.nonce = r.nonce();
  return copy;
}

DiskTier::DiskTier(DiskTierOptions options, std::unique_ptr<IoEngine> engine,
                   std::shared_ptr<BufferPool> buffers, base::TaskPool* workers)
    : options_(options),
      engine_(std::move(engine)),
      buffers_(std::move(buffers)),
      workers_(workers),
      allocator_(options_.max_bytes, base::kIoAlignment),
      file_bytes_(engine_->file_size()) {}

absl::StatusOr<Extent> DiskTier::Allocate(uint64_t capacity) {
  absl::StatusOr<Extent> extent = allocator_.Allocate(capacity);
  if (absl::IsResourceExhausted(extent.status())) {
    // Room may be waiting for its punch (or have just come back: the
    // second try needs no check of what is pending, which could race).
    reclaimer_.Drain();
    extent = allocator_.Allocate(capacity);
  }
  if (!extent.ok()) return extent.status();
  MutexLock lock(&file_mu_);
  if (extent->end() > file_bytes_) {
    uint64_t grow = std::min(
        options_.max_bytes,
        std::max(extent->end(),
                 base::AlignUp(file_bytes_ + options_.file_growth_bytes)));
    absl::Status s = engine_->Reserve(grow);
    if (!s.ok() && grow > extent->end()) {
      // The growth step does not fit the filesystem; the extent may.
      grow = extent->end();
      s = engine_->Reserve(grow);
    }
    if (!s.ok()) {
      Free(*extent);
      return s;
    }
    file_bytes_ = grow;
  }
  return extent;
}

std::optional<CompressedImage> DiskTier::Compress(const Source& source) {
  if (source.compression.codec == Codec::kNone) return std::nullopt;
  compress_attempts_.fetch_add(1, std::memory_order_relaxed);
  std::optional<CompressedImage> image =
      storage::Compress(source.data->span(), source.element_bytes,
                        source.compression, buffers_.get());
  if (!image) compress_skipped_.fetch_add(1, std::memory_order_relaxed);
  return image;
}

void DiskTier::Write(absl::Span<const Source> sources,
                     absl::Span<absl::StatusOr<DiskCopy>> copies) {
  // Compression is CPU work: side by side when there are several.
  std::vector<std::optional<CompressedImage>> images(sources.size());
  const bool any_codec = std::any_of(
      sources.begin(), sources.end(),
      [](const Source& s) { return s.compression.codec != Codec::kNone; });
  if (any_codec && sources.size() > 1) {
    workers_->ParallelFor(sources.size(),
                          [&](size_t i) { images[i] = Compress(sources[i]); });
  } else if (any_codec) {
    images[0] = Compress(sources[0]);
  }
  // Then extents, and with encryption the sealed images (each in a buffer
  // of the pool: the source is the block's immutable RAM copy).
  const KeyRing* keys = options_.keys.get();
  auto sealing = [&](size_t i) { return keys != nullptr && sources[i].seal; };
  std::vector<base::AlignedBuffer> sealed(sources.size());
  std::vector<size_t> planned;
  for (size_t i = 0; i < sources.size(); ++i) {
    const base::AlignedBuffer& stored =
        images[i] ? images[i]->bytes : *sources[i].data;
    // The image's own size, not its buffer's: a compressed image sits in
    // a buffer sized for the worst case, and its extent is what it saves.
    const uint64_t on_disk = stored.size() + (sealing(i) ? kGcmTagBytes : 0);
    const uint64_t length = base::AlignUp(std::max<uint64_t>(on_disk, 1));
    absl::StatusOr<Extent> extent = Allocate(length);
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
    if (sealing(i)) {
      copy.key_id = keys->current().id;
      copy.nonce = NewNonce();
      sealed[i] = buffers_->Take(on_disk);
      if (!sealed[i].ok()) {
        Free(copy.extent);
        copies[i] = absl::ResourceExhaustedError(absl::StrCat(
            "out of host memory allocating ", on_disk, " bytes to encrypt"));
        continue;
      }
    }
    copies[i] = std::move(copy);
    planned.push_back(i);
  }
  std::vector<size_t> to_seal;
  for (size_t i : planned) {
    if (sealing(i)) to_seal.push_back(i);
  }
  if (!to_seal.empty()) {
    // AES-GCM is CPU work too: side by side for several copies.
    auto seal = [&](size_t k) {
      const size_t i = to_seal[k];
      const base::AlignedBuffer& stored =
          images[i] ? images[i]->bytes : *sources[i].data;
      const std::string aad = AssociatedData(*copies[i], sources[i].checksum);
      absl::Status s =
          Seal(keys->current(), copies[i]->nonce,
               absl::MakeConstSpan(
                   reinterpret_cast<const std::byte*>(aad.data()), aad.size()),
               stored.span(), sealed[i].span());
      if (!s.ok()) copies[i] = s;
    };
    if (to_seal.size() > 1) {
      workers_->ParallelFor(to_seal.size(), seal);
    } else {
      seal(0);
    }
  }
  // Then one batch of writes: the engine keeps its queue full from this
  // thread, with no thread hop or wake-up per block.
  std::vector<IoRequest> writes;
  std::vector<size_t> writer;
  for (size_t i : planned) {
    if (!copies[i].ok()) {
      continue;
    }
    const base::AlignedBuffer& stored =
        sealing(i) ? sealed[i]
                   : (images[i] ? images[i]->bytes : *sources[i].data);
    IoRequest write;
    write.op = IoOp::kWrite;
    write.offset = copies[i]->extent.offset;
    // The engine only reads the buffer of a write.
    const absl::Span<const std::byte> padded =
        stored.padded().subspan(0, copies[i]->extent.length);
    write.data = {const_cast<std::byte*>(padded.data()), padded.size()};
    writes.push_back(write);
    writer.push_back(i);
  }
  Transfer(absl::MakeSpan(writes));
  for (base::AlignedBuffer& buffer : sealed) {
    if (buffer.ok()) buffers_->Give(std::move(buffer));
  }
  for (size_t w = 0; w < writes.size(); ++w) {
    if (writes[w].status.ok()) continue;
    Free(copies[writer[w]]->extent);
    copies[writer[w]] = writes[w].status;
  }
  for (std::optional<CompressedImage>& image : images) {
    if (image) buffers_->Give(std::move(image->bytes));
  }
}

absl::Status DiskTier::Sync() { return engine_->Sync(); }

void DiskTier::Transfer(absl::Span<IoRequest> requests) {
  if (requests.empty()) return;
  in_flight_ += static_cast<int>(requests.size());
  engine_->TransferBatch(requests);
  in_flight_ -= static_cast<int>(requests.size());
}

absl::Status DiskTier::Corrupt(const Read& read, absl::string_view what) const {
  return absl::DataLossError(absl::StrCat(
      "block ", read.key.ToString(), " failed its checksum on swap-in (", what,
      " at offset ", read.copy.extent.offset,
      "); its bytes are lost: unregister it or write it again"));
}

absl::Status DiskTier::Prepare(Read* read) {
  // A raw copy is read straight into the block's buffer; a compressed one
  // into a staging buffer first, of the block's size (a stored image is
  // never larger) so that it comes warm from the pool: images vary in
  // size, and a fresh buffer's first touch costs more than the read.
  const DiskCopy& copy = read->copy;
  if (copy.compressed() || copy.encrypted()) {
    read->staging =
        buffers_->Take(std::max(read->out->size(), copy.extent.length));
    if (!read->staging.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "out of host memory allocating ", copy.extent.length, " bytes"));
    }
  } else if (read->out->capacity() < copy.extent.length) {
    return Corrupt(*read, "its extent is larger than the block");
  }
  base::AlignedBuffer& target =
      copy.compressed() || copy.encrypted() ? read->staging : *read->out;
  read->request.op = IoOp::kRead;
  read->request.offset = copy.extent.offset;
  read->request.data = target.padded().subspan(0, copy.extent.length);
  return absl::OkStatus();
}

absl::Status DiskTier::Finish(Read* read, absl::Status transferred) {
  const DiskCopy& copy = read->copy;
  absl::Status decoded = transferred;
  if (transferred.ok() && copy.encrypted()) {
    // Decrypted in place in the staging buffer for a compressed image,
    // straight into the block otherwise.
    const KeyRing::Key* key =
        options_.keys ? options_.keys->Find(copy.key_id) : nullptr;
    const std::string aad = AssociatedData(copy, read->checksum);
    const auto sealed =
        read->staging.span().subspan(0, copy.stored_bytes + kGcmTagBytes);
    if (key == nullptr) {
      // Not lost: readable again once the key is back.
      if (read->staging.ok()) buffers_->Give(std::move(read->staging));
      return absl::FailedPreconditionError(absl::StrCat(
          "block ", read->key.ToString(), " is encrypted with key '",
          copy.key_id,
          "', which --encryption_key_file does not list; add that key back "
          "(after the current one) and restart to read it"));
    } else {
      decoded = Open(
          *key, copy.nonce,
          absl::MakeConstSpan(reinterpret_cast<const std::byte*>(aad.data()),
                              aad.size()),
          sealed, copy.compressed() ? read->staging.span() : read->out->span());
    }
  }
  if (transferred.ok() && decoded.ok() && copy.compressed()) {
    const auto image = read->staging.span().subspan(0, copy.stored_bytes);
    decoded = Checksum(image) == copy.stored_checksum
                  ? Decompress(copy.codec, image, read->out->span())
                  : absl::DataLossError(
                        "compressed image corrupted in the data file");
  }
  if (read->staging.ok()) buffers_->Give(std::move(read->staging));
  if (!transferred.ok()) return transferred;
  if (!decoded.ok()) return Corrupt(*read, decoded.message());
  if (Checksum(read->out->span()) != read->checksum) {
    return Corrupt(*read, "data file corrupted");
  }
  return absl::OkStatus();
}

absl::Status DiskTier::ReadVerified(BlockKeyView key, const DiskCopy& copy,
                                    uint64_t checksum,
                                    base::AlignedBuffer* out) {
  Read read;
  read.key = key;
  read.copy = copy;
  read.checksum = checksum;
  read.out = out;
  absl::Status s = Prepare(&read);
  if (s.ok()) {
    Transfer({&read.request, 1});
    s = read.request.status;
  }
  return Finish(&read, s);
}

std::string DiskTier::AssociatedData(const DiskCopy& copy, uint64_t checksum) {
  std::string aad(24, '\0');
  const uint64_t fields[3] = {copy.extent.offset, copy.stored_bytes, checksum};
  std::memcpy(aad.data(), fields, sizeof(fields));
  return aad;
}

void DiskTier::Free(const Extent& extent) { FreeMany({extent}); }

void DiskTier::FreeMany(std::vector<Extent> extents) {
  reclaimer_.Free(std::move(extents));
}

namespace {

absl::Status CheckStoredSize(const Extent& extent, uint64_t stored_bytes) {
  if (stored_bytes > extent.length) {
    return absl::DataLossError(absl::StrCat("stored size ", stored_bytes,
                                            " exceeds its extent of ",
                                            extent.length));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DiskTier::Claim(const DiskCopy& copy) {
  if (absl::Status s = CheckStoredSize(copy.extent, copy.stored_bytes);
      !s.ok()) {
    return s;
  }
  return allocator_.MarkUsed(copy.extent);
}

std::vector<absl::Status> DiskTier::ClaimMany(
    absl::Span<const Extent> extents, absl::Span<const uint64_t> stored_bytes) {
  std::vector<absl::Status> results(extents.size());
  std::vector<Extent> sized;
  std::vector<size_t> claimed;  // index in `extents` of each of `sized`
  for (size_t i = 0; i < extents.size(); ++i) {
    results[i] = CheckStoredSize(extents[i], stored_bytes[i]);
    if (!results[i].ok()) continue;
    sized.push_back(extents[i]);
    claimed.push_back(i);
  }
  std::vector<absl::Status> marked = allocator_.MarkUsedMany(sized);
  for (size_t k = 0; k < claimed.size(); ++k) {
    results[claimed[k]] = std::move(marked[k]);
  }
  return results;
}

DiskTierStats DiskTier::Stats() const {
  DiskTierStats s;
  s.space = reclaimer_.Stats();
  s.engine = std::string(engine_->name());
  s.in_flight = in_flight_.load(std::memory_order_relaxed);
  s.compress_attempts = compress_attempts_.load(std::memory_order_relaxed);
  s.compress_skipped = compress_skipped_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace tensorpager::storage
