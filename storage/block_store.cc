#include "storage/block_store.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/checksum.h"
#include "storage/log.h"
#include "storage/private_dir.h"

namespace tensorpager::storage {

// The durable copy of a block in the data file.
struct BlockStore::DiskCopy {
  Extent extent;
  uint64_t stored_bytes = 0;     // image length within the extent
  uint64_t stored_checksum = 0;  // xxh3-64 of the image
  std::string codec = "none";    // see CompressedImage::codec

  bool compressed() const { return codec != "none"; }
  void ToRecord(BlockRecordProto* r) const {
    r->set_on_disk(true);
    r->set_extent_offset(extent.offset);
    r->set_extent_length(extent.length);
    r->set_stored_bytes(stored_bytes);
    r->set_codec(codec);
    r->set_stored_checksum(stored_checksum);
  }
};

struct BlockStore::Entry {
  BlockKey key;
  std::string encoded;
  policy::Key handle = 0;
  BlockAttributes attrs;
  // The resident bytes. Immutable once published: a write publishes a new
  // buffer, so readers holding the old snapshot are never torn.
  std::shared_ptr<const AlignedBuffer> ram;
  // The durable copy; always matches `version` when present.
  std::optional<DiskCopy> disk;
  bool written = false;
  uint64_t version = 0;
  uint64_t checksum = 0;
  std::string lost_reason;
  Io io = Io::kIdle;
  // Swapped in by the prefetcher and not accessed since.
  bool prefetched = false;
  uint64_t access_count = 0;
  int64_t last_access_ms = 0;
  int64_t created_ms = 0;
};

// Takes an entry's share out of the tally and puts it back, as changed,
// when it goes out of scope.
class BlockStore::Recount {
 public:
  Recount(BlockStore* store, const Entry& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_)
      : store_(store), e_(e) {
    store_->Count(e_, -1);
  }
  ~Recount() ABSL_NO_THREAD_SAFETY_ANALYSIS { store_->Count(e_, +1); }
  Recount(const Recount&) = delete;
  Recount& operator=(const Recount&) = delete;

 private:
  BlockStore* store_;
  const Entry& e_;
};

namespace {

// Blocks smaller than an I/O unit move in engine batches of at most this
// many blocks and bytes, which bounds what a batch holds at once (RAM
// reserved for swap-ins, compressed images of swap-outs).
constexpr size_t kBatchBlocks = 256;
constexpr uint64_t kBatchBytes = 64ull << 20;

// Entries a listing examines per hold of the store's lock.
constexpr size_t kListScanPerLock = 4096;

// Splits blocks of `sizes` into consecutive runs [begin, end) of at most
// kBatchBlocks blocks and `max_bytes` bytes, each holding at least one.
std::vector<std::pair<size_t, size_t>> BatchRanges(
    absl::Span<const uint64_t> sizes, uint64_t max_bytes) {
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t begin = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > begin &&
        (i - begin == kBatchBlocks || bytes + sizes[i] > max_bytes)) {
      ranges.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += sizes[i];
  }
  if (begin < sizes.size()) ranges.emplace_back(begin, sizes.size());
  return ranges;
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

uint32_t ElementBytes(uint32_t dtype) {
  switch (dtype) {
    case 1:  // FLOAT32
    case 8:  // INT32
      return 4;
    case 2:  // FLOAT16
    case 3:  // BFLOAT16
    case 7:  // INT16
      return 2;
    case 4:  // FLOAT64
    case 9:  // INT64
      return 8;
    case 5:   // INT8
    case 6:   // UINT8
    case 10:  // BOOL
    case 11:  // FLOAT8_E4M3
    case 12:  // FLOAT8_E5M2
      return 1;
    default:
      return 0;
  }
}

}  // namespace

BlockStore::BlockStore(BlockStoreOptions options)
    : options_(std::move(options)),
      swap_pool_(std::make_unique<TaskPool>(static_cast<int>(
          std::max<uint32_t>(options_.max_concurrent_swaps, 1)))),
      ram_budget_(options_.ram_budget_bytes) {
  policy_ = policy::MakePolicy(options_.algorithm);
  policy_->SetCapacity(ram_budget_);
  buffers_->SetLimit(ram_budget_);
}

BlockStore::~BlockStore() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    io_done_.SignalAll();
  }
  if (prefetcher_.joinable()) prefetcher_.join();
}

absl::StatusOr<std::unique_ptr<BlockStore>> BlockStore::Open(
    BlockStoreOptions options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("data dir is empty");
  }
  std::error_code ec;
  ec = MakePrivateDirectory(options.data_dir);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data dir ", options.data_dir, ": ", ec.message()));
  }
  if (options.max_swap_bytes < kIoAlignment) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max swap size must be at least ", kIoAlignment, " bytes"));
  }
  std::unique_ptr<BlockStore> store(new BlockStore(std::move(options)));
  absl::StatusOr<std::unique_ptr<MetadataStore>> meta =
      MetadataStore::Open(store->options_.data_dir + "/metadata");
  if (!meta.ok()) return meta.status();
  store->meta_ = *std::move(meta);
  store->options_.io.path = store->options_.data_dir + "/blocks.dat";
  absl::StatusOr<std::unique_ptr<IoEngine>> io =
      OpenIoEngine(store->options_.io);
  if (!io.ok()) return io.status();
  store->io_ = *std::move(io);
  store->allocator_ = std::make_unique<ExtentAllocator>(
      store->options_.max_swap_bytes, kIoAlignment);
  if (absl::Status s = store->Recover(); !s.ok()) return s;
  if (store->options_.prefetch_depth > 0) {
    BlockStore* raw = store.get();
    store->prefetcher_ = std::thread([raw] { raw->PrefetchLoop(); });
  }
  return store;
}

absl::Status BlockStore::Recover() {
  const absl::Time start = absl::Now();
  MutexLock lock(&mu_);
  absl::Status s = meta_->ForEach([&](const BlockKey& key,
                                      const BlockRecordProto&
                                          r) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto e = std::make_unique<Entry>();
    e->key = key;
    e->encoded = key.Encode();
    e->handle = next_handle_++;
    e->attrs.size_bytes = r.size_bytes();
    e->attrs.region_type = static_cast<RegionType>(r.region_type());
    e->attrs.pinned = r.pinned();
    e->attrs.dtype = r.dtype();
    e->attrs.shape.assign(r.shape().begin(), r.shape().end());
    e->attrs.labels.insert(r.labels().begin(), r.labels().end());
    if (r.has_sequence()) {
      e->attrs.sequence = SequenceRef{r.sequence_group(), r.sequence_index()};
    }
    // Values this server never writes make the block lost, not trusted: an
    // unknown region type would index past the per-region tallies, an
    // unknown codec would compress under another codec's name.
    std::string invalid;
    if (r.region_type() >= kNumRegionTypes) {
      invalid = absl::StrCat("unknown region type ", r.region_type());
      e->attrs.region_type = RegionType::kTensorData;
    }
    if (r.requested_codec() > static_cast<uint32_t>(Codec::kZstd)) {
      invalid = absl::StrCat("unknown codec ", r.requested_codec());
    } else if (r.requested_codec() != 0) {
      e->attrs.codec = static_cast<Codec>(r.requested_codec());
    }
    e->written = r.written();
    e->version = r.version();
    e->checksum = r.checksum();
    e->access_count = r.access_count();
    e->last_access_ms = r.last_access_unix_ms();
    e->created_ms = r.created_unix_ms();
    e->lost_reason = r.lost_reason();
    if (!invalid.empty() && e->lost_reason.empty()) {
      e->lost_reason = absl::StrCat(
          "its metadata record is invalid after restart (", invalid, ")");
    }
    ++recovery_.blocks;
    if (r.on_disk() && e->lost_reason.empty()) {
      DiskCopy copy;
      copy.extent = Extent{r.extent_offset(), r.extent_length()};
      copy.stored_bytes = r.stored_bytes();
      copy.stored_checksum = r.stored_checksum();
      copy.codec = r.codec().empty() ? "none" : r.codec();
      const absl::Status claim =
          copy.stored_bytes > copy.extent.length
              ? absl::DataLossError(
                    absl::StrCat("stored size ", copy.stored_bytes,
                                 " exceeds its extent of ", copy.extent.length))
              : allocator_->MarkUsed(copy.extent);
      if (claim.ok()) {
        e->disk = std::move(copy);
        ++recovery_.blocks_on_disk;
        recovery_.bytes_on_disk += e->attrs.size_bytes;
      } else {
        e->lost_reason = absl::StrCat(
            "its disk extent is invalid after restart (", claim.message(), ")");
      }
    } else if (r.written() && e->lost_reason.empty()) {
      e->lost_reason =
          "it was only in RAM when the server stopped; write it again";
    }
    if (!e->lost_reason.empty()) ++recovery_.blocks_lost;
    IndexSequence(e.get());
    by_handle_.emplace(e->handle, e.get());
    Count(*e, +1);
    blocks_.emplace(e->encoded, std::move(e));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  {
    MutexLock file_lock(&file_mu_);
    file_bytes_ = io_->file_size();
  }
  recovery_.duration = absl::Now() - start;
  return absl::OkStatus();
}

BlockStore::Entry* BlockStore::Find(const BlockKey& key) const {
  auto it = blocks_.find(key.Encode());
  if (it == blocks_.end() || it->second->io == Io::kRemoving) return nullptr;
  return it->second.get();
}

absl::StatusOr<std::vector<BlockStore::Entry*>> BlockStore::FindAllIdle(
    absl::Span<const BlockKey> keys) {
  for (;;) {
    // Looked up afresh after every wait: while the lock was released, an
    // entry found before may have been unregistered and freed.
    std::vector<Entry*> entries;
    entries.reserve(keys.size());
    bool busy = false;
    for (const BlockKey& key : keys) {
      Entry* e = Find(key);
      if (e == nullptr) {
        return absl::NotFoundError(absl::StrCat("block ", key.ToString(),
                                                " is not registered; call "
                                                "RegisterBlock"));
      }
      busy = busy || e->io != Io::kIdle;
      entries.push_back(e);
    }
    if (!busy) return entries;
    io_done_.Wait(&mu_);
  }
}

absl::StatusOr<BlockStore::Entry*> BlockStore::FindIdle(const BlockKey& key) {
  for (;;) {
    Entry* e = Find(key);
    if (e == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "block ", key.ToString(), " is not registered; call RegisterBlock"));
    }
    if (e->io == Io::kIdle) return e;
    io_done_.Wait(&mu_);
  }
}

Tier BlockStore::TierOf(const Entry& e) const {
  if (!e.lost_reason.empty()) return Tier::kLost;
  if (!e.written) return Tier::kEmpty;
  if (e.ram != nullptr && e.disk.has_value()) return Tier::kRamAndDisk;
  if (e.ram != nullptr) return Tier::kRam;
  return Tier::kDisk;
}

BlockInfo BlockStore::InfoOf(const Entry& e) const {
  BlockInfo info;
  info.ns = e.key.ns;
  info.id = e.key.id;
  info.attrs = e.attrs;
  info.tier = TierOf(e);
  info.stored_bytes = e.disk ? e.disk->stored_bytes : 0;
  info.checksum = e.checksum;
  info.version = e.version;
  info.access_count = e.access_count;
  info.last_access_unix_ms = e.last_access_ms;
  info.created_unix_ms = e.created_ms;
  info.lost_reason = e.lost_reason;
  info.codec = e.disk ? e.disk->codec : "";
  return info;
}

BlockRecordProto BlockStore::RecordOf(const Entry& e) const {
  BlockRecordProto r;
  r.set_size_bytes(e.attrs.size_bytes);
  r.set_region_type(static_cast<uint32_t>(e.attrs.region_type));
  r.set_pinned(e.attrs.pinned);
  r.set_dtype(e.attrs.dtype);
  for (int64_t d : e.attrs.shape) r.add_shape(d);
  r.mutable_labels()->insert(e.attrs.labels.begin(), e.attrs.labels.end());
  if (e.attrs.sequence) {
    r.set_has_sequence(true);
    r.set_sequence_group(e.attrs.sequence->group);
    r.set_sequence_index(e.attrs.sequence->index);
  }
  r.set_written(e.written);
  r.set_version(e.version);
  r.set_checksum(e.checksum);
  if (e.attrs.codec) {
    r.set_requested_codec(static_cast<uint32_t>(*e.attrs.codec));
  }
  if (e.disk) e.disk->ToRecord(&r);
  r.set_access_count(e.access_count);
  r.set_last_access_unix_ms(e.last_access_ms);
  r.set_created_unix_ms(e.created_ms);
  r.set_lost_reason(e.lost_reason);
  return r;
}

bool BlockStore::DurableByDefault(RegionType type) const {
  const auto& o = options_.durable_by_region[static_cast<int>(type)];
  return o.value_or(options_.durable_writes);
}

int BlockStore::PriorityOf(RegionType type) const {
  return options_.region_priority[static_cast<int>(type)];
}

void BlockStore::Touch(Entry& e) {
  ++e.access_count;
  e.last_access_ms = NowMs();
  policy_->Touch(e.handle);
}

absl::StatusOr<BlockInfo> BlockStore::Register(const BlockKey& key,
                                               BlockAttributes attrs) {
  if (attrs.size_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", key.ToString(), " has size 0; give its size in bytes"));
  }
  if (attrs.size_bytes > options_.max_block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", key.ToString(), " is ", attrs.size_bytes,
        " bytes; the maximum block size is ", options_.max_block_bytes,
        " bytes (--max_block_size); split the tensor into smaller blocks"));
  }
  if (!attrs.shape.empty()) {
    uint64_t elements = 1;
    for (int64_t d : attrs.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "shape of ", key.ToString(), " has a negative dimension"));
      }
      elements *= static_cast<uint64_t>(d);
    }
    const uint64_t elem = ElementBytes(attrs.dtype);
    if (elem != 0 && elements * elem != attrs.size_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape and dtype of ", key.ToString(), " describe ", elements * elem,
          " bytes but size_bytes is ", attrs.size_bytes));
    }
  }
  MutexLock lock(&mu_);
  const std::string encoded = key.Encode();
  if (blocks_.contains(encoded)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "block ", key.ToString(),
        " is already registered; unregister it first or use another id"));
  }
  // Every block costs metadata memory whether or not it holds bytes.
  if (blocks_.size() >= options_.max_blocks) {
    return absl::ResourceExhaustedError(absl::StrCat(
        blocks_.size(),
        " blocks are registered, the most this server holds "
        "(--max_blocks); unregister blocks you no longer need or raise "
        "--max_blocks"));
  }
  auto e = std::make_unique<Entry>();
  e->key = key;
  e->encoded = encoded;
  e->attrs = std::move(attrs);
  e->created_ms = NowMs();
  if (absl::Status s = meta_->Put(key, RecordOf(*e), /*sync=*/false); !s.ok()) {
    return s;
  }
  e->handle = next_handle_++;
  BlockInfo info = InfoOf(*e);
  IndexSequence(e.get());
  by_handle_.emplace(e->handle, e.get());
  Count(*e, +1);
  blocks_.emplace(encoded, std::move(e));
  return info;
}

absl::StatusOr<BlockInfo> BlockStore::Get(const BlockKey& key) const {
  ReaderMutexLock lock(&mu_);
  const Entry* e = Find(key);
  if (e == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("block ", key.ToString(), " is not registered"));
  }
  return InfoOf(*e);
}

absl::Status BlockStore::ReserveRam(uint64_t bytes, const Entry* exclude) {
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
      if (ram_used_ + ram_reserved_ + bytes <= ram_budget_) {
        ram_reserved_ += bytes;
        return absl::OkStatus();
      }
      const uint64_t need =
          std::max(ram_used_ + ram_reserved_ + bytes - ram_budget_,
                   std::min(options_.eviction_batch_bytes, ram_budget_ / 16));
      victims_.clear();
      policy_->SelectVictims(
          need,
          [&](policy::Key k) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            const Entry* v = by_handle_.at(k);
            return v != exclude && v->io == Io::kIdle && v->ram != nullptr &&
                   !v->attrs.pinned;
          },
          &victims_);
      for (policy::Key k : victims_) {
        Entry* v = by_handle_.at(k);
        v->io = Io::kSwappingOut;
        marked.push_back(v);
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

void BlockStore::ReleaseReservation(uint64_t bytes) {
  MutexLock lock(&mu_);
  ram_reserved_ -= bytes;
  io_done_.SignalAll();
}

absl::StatusOr<Extent> BlockStore::AllocateExtent(uint64_t capacity) {
  absl::StatusOr<Extent> extent = allocator_->Allocate(capacity);
  if (!extent.ok()) return extent.status();
  {
    MutexLock lock(&file_mu_);
    if (extent->end() > file_bytes_) {
      uint64_t grow =
          std::min(options_.max_swap_bytes,
                   std::max(extent->end(),
                            AlignUp(file_bytes_ + options_.file_growth_bytes)));
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
    const AlignedBuffer& stored =
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
                                     AlignedBuffer* out, AlignedBuffer* staging,
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
  AlignedBuffer& target = copy.compressed() ? *staging : *out;
  read->op = IoOp::kRead;
  read->offset = copy.extent.offset;
  read->data = target.padded().subspan(0, copy.extent.length);
  return absl::OkStatus();
}

absl::Status BlockStore::FinishRead(const Entry& e, const DiskCopy& copy,
                                    uint64_t checksum, AlignedBuffer* staging,
                                    AlignedBuffer* out) {
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
                                      uint64_t checksum, AlignedBuffer* out) {
  AlignedBuffer staging;
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
    std::shared_ptr<const AlignedBuffer> data;  // keeps source.data alive
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
    AlignedBuffer buf;
    AlignedBuffer staging;
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

absl::StatusOr<WriteResult> BlockStore::Write(const BlockKey& key,
                                              uint64_t offset,
                                              AlignedBuffer data,
                                              const WriteOptions& options) {
  const uint64_t length = data.size();
  Entry* e;
  uint64_t size;
  bool durable;
  std::shared_ptr<const AlignedBuffer> current;
  std::optional<DiskCopy> old_copy;
  bool was_live;
  uint64_t old_checksum;
  uint32_t element_bytes;
  CompressionSettings compression;
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
    if (!whole && (!e->written || !e->lost_reason.empty())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "block ", key.ToString(),
          " holds no data yet, so its first write must cover all ", size,
          " bytes (got ", length, " at offset ", offset, ")"));
    }
    durable = options.durable.value_or(DurableByDefault(e->attrs.region_type));
    current = e->ram;
    was_live = e->written && e->lost_reason.empty();
    old_copy = e->disk;
    old_checksum = e->checksum;
    element_bytes = ElementBytes(e->attrs.dtype);
    compression = CompressionFor(*e);
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

  std::shared_ptr<const AlignedBuffer> next;
  if (offset == 0 && length == size) {
    next = buffers_->Share(std::move(data));
  } else {
    AlignedBuffer merged = buffers_->Take(size);
    if (!merged.ok()) {
      return release_and_abort(absl::ResourceExhaustedError(
          absl::StrCat("out of host memory allocating ", size, " bytes")));
    }
    if (current != nullptr) {
      std::memcpy(merged.data(), current->data(), size);
    } else if (absl::Status s =
                   ReadVerified(*e, *old_copy, old_checksum, &merged);
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
  record.clear_on_disk();
  record.clear_extent_offset();
  record.clear_extent_length();
  record.clear_stored_bytes();
  record.clear_codec();
  record.clear_stored_checksum();
  if (durable) {
    const CopySource source{next.get(), checksum, element_bytes, compression};
    absl::StatusOr<DiskCopy> copy = absl::UnknownError("not written");
    WriteDiskCopies({&source, 1}, {&copy, 1});
    if (!copy.ok()) return release_and_abort(copy.status());
    if (absl::Status s = io_->Sync(); !s.ok()) {
      FreeExtent(copy->extent);
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
    if (new_copy) FreeExtent(new_copy->extent);
    return release_and_abort(s);
  }
  if (old_copy) FreeExtent(old_copy->extent);

  WriteResult result;
  {
    MutexLock lock(&mu_);
    Recount recount(this, *e);
    ram_reserved_ -= reserve;
    if (current == nullptr) {
      ram_used_ += size;
      UpdatePoolLimit();
      policy_->Insert(e->handle, size, PriorityOf(e->attrs.region_type));
      if (e->attrs.pinned) policy_->SetPinned(e->handle, true);
    } else {
      policy_->Touch(e->handle);
    }
    e->ram = std::move(next);
    e->disk = std::move(new_copy);
    e->written = true;
    e->version = record.version();
    e->checksum = checksum;
    e->lost_reason.clear();
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
    if (!e->lost_reason.empty()) {
      ++counters_.misses;
      return miss(absl::DataLossError(absl::StrCat(
                      "block ", key.ToString(), " is lost: ", e->lost_reason)),
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
    if (e->ram != nullptr && e->io != Io::kWriting) {
      ReadResult r;
      r.hit = !swapped_in;
      if (e->prefetched) {
        e->prefetched = false;
        ++counters_.prefetch_hits;
      }
      Touch(*e);
      if (e->attrs.sequence && options_.prefetch_depth > 0) {
        SchedulePrefetch(*e);
      }
      r.block = InfoOf(*e);
      if (!options.touch_only) r.data = e->ram;
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
            absl::StrCat("block ", e->key.ToString(),
                         " is pinned and never leaves RAM; unpin it first"));
      }
      if (!e->lost_reason.empty() || !e->written) {
        return absl::FailedPreconditionError(absl::StrCat(
            "block ", e->key.ToString(), " holds no data to swap out (",
            TierName(TierOf(*e)), ")"));
      }
    }
    for (Entry* e : entries) {
      if (e->ram == nullptr || e->io != Io::kIdle) {
        if (e->ram == nullptr) result.already_there.push_back(e->key);
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
      if (!(*e)->lost_reason.empty()) {
        return absl::DataLossError(absl::StrCat(
            "block ", key.ToString(), " is lost: ", (*e)->lost_reason));
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
      } else if (e->ram != nullptr) {
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
      if (e->ram != nullptr) {
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
  const absl::Time start = absl::Now();
  SwapResult result;
  std::vector<Entry*> marked;
  {
    MutexLock lock(&mu_);
    victims_.clear();
    policy_->SelectVictims(
        bytes,
        [&](policy::Key k) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          const Entry* v = by_handle_.at(k);
          return v->io == Io::kIdle && v->ram != nullptr && !v->attrs.pinned;
        },
        &victims_);
    for (policy::Key k : victims_) {
      Entry* v = by_handle_.at(k);
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
  std::vector<std::pair<int64_t, BlockKey>> candidates;
  {
    ReaderMutexLock lock(&mu_);
    uint64_t room = ram_budget_ > ram_used_ + ram_reserved_
                        ? ram_budget_ - ram_used_ - ram_reserved_
                        : 0;
    for (const auto& [encoded, e] : blocks_) {
      if (e->io == Io::kIdle && e->ram == nullptr && e->disk &&
          e->lost_reason.empty()) {
        candidates.emplace_back(e->last_access_ms, e->key);
      }
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<std::pair<int64_t, BlockKey>> chosen;
    uint64_t total = 0;
    for (auto& c : candidates) {
      if (total >= bytes) break;
      const uint64_t size = Find(c.second)->attrs.size_bytes;
      if (size > room) continue;
      room -= size;
      total += size;
      chosen.push_back(std::move(c));
    }
    candidates = std::move(chosen);
  }
  std::vector<BlockKey> keys;
  for (auto& c : candidates) keys.push_back(std::move(c.second));
  return SwapIn(keys);
}

absl::StatusOr<BlockInfo> BlockStore::SetPinned(const BlockKey& key,
                                                bool pinned) {
  if (pinned) {
    // A pinned block lives in RAM: bring it in first.
    absl::StatusOr<BlockInfo> info = Get(key);
    if (!info.ok()) return info.status();
    if (info->tier == Tier::kLost) {
      return absl::FailedPreconditionError(
          absl::StrCat("block ", key.ToString(), " is lost (",
                       info->lost_reason, "); write it again before pinning"));
    }
    if (info->tier == Tier::kDisk) {
      absl::StatusOr<SwapResult> in = SwapIn({key});
      if (!in.ok()) return in.status();
    }
  }
  MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindIdle(key);
  if (!found.ok()) return found.status();
  Entry* e = *found;
  if (pinned && e->written && e->ram == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("block ", key.ToString(),
                     " was swapped out while being pinned; retry"));
  }
  if (e->attrs.pinned != pinned) {
    Recount recount(this, *e);
    e->attrs.pinned = pinned;
    if (absl::Status s = meta_->Put(key, RecordOf(*e), /*sync=*/false);
        !s.ok()) {
      e->attrs.pinned = !pinned;
      return s;
    }
    policy_->SetPinned(e->handle, pinned);
  }
  return InfoOf(*e);
}

absl::StatusOr<BlockStore::Freed> BlockStore::Unregister(const BlockKey& key) {
  Entry* e;
  {
    MutexLock lock(&mu_);
    absl::StatusOr<Entry*> found = FindIdle(key);
    if (!found.ok()) return found.status();
    e = *found;
    Count(*e, -1);  // a block being removed counts nowhere
    e->io = Io::kRemoving;
  }
  // Sync when an extent is released, so it is only reused once no durable
  // record points to it.
  if (absl::Status s = meta_->Delete(key, e->disk.has_value()); !s.ok()) {
    MutexLock lock(&mu_);
    e->io = Io::kIdle;
    Count(*e, +1);
    io_done_.SignalAll();
    return s;
  }
  Freed freed;
  std::optional<Extent> extent;
  {
    MutexLock lock(&mu_);
    if (e->ram != nullptr) {
      freed.ram_bytes = e->attrs.size_bytes;
      ram_used_ -= e->attrs.size_bytes;
      UpdatePoolLimit();
    }
    if (e->disk) {
      extent = e->disk->extent;
      freed.disk_bytes = extent->length;
    }
    NoteLeavingRam(*e);
    UnindexSequence(*e);
    policy_->Remove(e->handle, policy::RemoveReason::kErased);
    by_handle_.erase(e->handle);
    blocks_.erase(e->encoded);
    io_done_.SignalAll();
  }
  if (extent) FreeExtent(*extent);
  return freed;
}

absl::StatusOr<ListPage> BlockStore::List(const ListFilter& filter,
                                          uint32_t page_size,
                                          const std::string& page_token) const {
  std::string after;
  if (!page_token.empty() && !absl::WebSafeBase64Unescape(page_token, &after)) {
    return absl::InvalidArgumentError(
        "page_token is malformed; pass the next_page_token of the previous "
        "response unchanged");
  }
  const std::string ns =
      filter.ns.empty() ? std::string(kDefaultNamespace) : filter.ns;
  const std::string prefix =
      filter.all_namespaces ? "" : ns + std::string(1, '\0') + filter.id_prefix;
  ListPage page;
  std::string last_returned;
  // The scan lets go of the lock every kListScanPerLock entries, so a
  // listing with a rare filter never stalls the data path for long.
  std::string cursor = after;
  bool from_prefix = after.empty();
  for (;;) {
    ReaderMutexLock lock(&mu_);
    auto it =
        from_prefix ? blocks_.lower_bound(prefix) : blocks_.upper_bound(cursor);
    from_prefix = false;
    size_t scanned = 0;
    for (; it != blocks_.end(); ++it) {
      if (++scanned > kListScanPerLock) break;
      cursor = it->first;
      const Entry& e = *it->second;
      if (!filter.all_namespaces && !absl::StartsWith(it->first, prefix)) {
        return page;
      }
      if (e.io == Io::kRemoving) continue;
      if (filter.all_namespaces &&
          !absl::StartsWith(e.key.id, filter.id_prefix)) {
        continue;
      }
      if (filter.region_type && e.attrs.region_type != *filter.region_type)
        continue;
      if (filter.pinned && e.attrs.pinned != *filter.pinned) continue;
      const Tier tier = TierOf(e);
      if (filter.tier && tier != *filter.tier) {
        // RAM_AND_DISK counts as both RAM and DISK for filtering.
        const bool both =
            tier == Tier::kRamAndDisk &&
            (*filter.tier == Tier::kRam || *filter.tier == Tier::kDisk);
        if (!both) continue;
      }
      if (page.blocks.size() == page_size) {
        page.next_page_token = absl::WebSafeBase64Escape(last_returned);
        return page;
      }
      page.blocks.push_back(InfoOf(e));
      last_returned = it->first;
    }
    if (it == blocks_.end()) return page;
  }
}

absl::StatusOr<SwapResult> BlockStore::ShrinkRamTo(uint64_t target_bytes) {
  uint64_t excess;
  {
    ReaderMutexLock lock(&mu_);
    if (ram_used_ <= target_bytes) return SwapResult{};
    excess = ram_used_ - target_bytes;
  }
  return SwapOutBytes(excess);
}

void BlockStore::SetRamBudget(uint64_t bytes) {
  {
    MutexLock lock(&mu_);
    ram_budget_ = bytes;
    policy_->SetCapacity(bytes);
    UpdatePoolLimit();
    io_done_.SignalAll();
  }
  buffers_->Trim();
}

void BlockStore::UpdatePoolLimit() {
  // Reserved bytes are left in: a reservation is what a cached buffer is
  // about to serve.
  buffers_->SetLimit(ram_budget_ > ram_used_ ? ram_budget_ - ram_used_ : 0);
}

uint64_t BlockStore::ram_budget() const {
  ReaderMutexLock lock(&mu_);
  return ram_budget_;
}

void BlockStore::SetAlgorithm(policy::Algorithm algorithm) {
  MutexLock lock(&mu_);
  if (policy_->algorithm() == algorithm) return;
  std::vector<Entry*> resident;
  for (const auto& [encoded, e] : blocks_) {
    if (e->ram != nullptr && e->io != Io::kRemoving)
      resident.push_back(e.get());
  }
  std::sort(resident.begin(), resident.end(), [](Entry* a, Entry* b) {
    return a->last_access_ms < b->last_access_ms;
  });
  auto next = policy::MakePolicy(algorithm);
  next->SetCapacity(ram_budget_);
  for (Entry* e : resident) {
    next->Insert(e->handle, e->attrs.size_bytes,
                 PriorityOf(e->attrs.region_type));
    if (e->attrs.pinned) next->SetPinned(e->handle, true);
    // Replay the block's frequency so frequency-aware policies keep it.
    const uint64_t replay = std::min<uint64_t>(e->access_count, 15);
    for (uint64_t i = 0; i < replay; ++i) next->Touch(e->handle);
  }
  policy_ = std::move(next);
  TP_LOG(INFO) << "eviction policy switched to "
               << policy::AlgorithmName(algorithm) << " with "
               << resident.size() << " resident blocks carried over";
}

void BlockStore::Count(const Entry& e, int sign) {
  if (e.io == Io::kRemoving) return;
  Tally& t = tally_;
  const int64_t size = static_cast<int64_t>(e.attrs.size_bytes) * sign;
  t.blocks_registered += sign;
  const int region = static_cast<int>(e.attrs.region_type);
  t.blocks_by_region[region] += sign;
  t.bytes_by_region[region] += size;
  if (e.attrs.pinned) {
    t.blocks_pinned += sign;
    t.pinned_bytes += size;
  }
  if (e.disk && e.lost_reason.empty()) {
    t.disk_stored_bytes += static_cast<int64_t>(e.disk->stored_bytes) * sign;
    if (e.disk->compressed()) t.blocks_compressed += sign;
  }
  switch (TierOf(e)) {
    case Tier::kLost:
      t.blocks_lost += sign;
      break;
    case Tier::kEmpty:
      t.blocks_empty += sign;
      break;
    case Tier::kRam:
      t.blocks_in_ram += sign;
      break;
    case Tier::kDisk:
      t.blocks_on_disk += sign;
      t.disk_bytes += size;
      break;
    case Tier::kRamAndDisk:
      t.blocks_in_ram += sign;
      t.blocks_on_disk += sign;
      t.disk_bytes += size;
      break;
  }
}

StoreStats BlockStore::Stats() const {
  StoreStats s;
  s.disk = allocator_->Stats();
  s.io_engine = std::string(io_->name());
  s.io_in_flight = io_in_flight_.load(std::memory_order_relaxed);
  s.buffers = buffers_->Stats();
  ReaderMutexLock lock(&mu_);
  const Tally& t = tally_;
  s.blocks_registered = static_cast<uint64_t>(t.blocks_registered);
  s.blocks_in_ram = static_cast<uint64_t>(t.blocks_in_ram);
  s.blocks_on_disk = static_cast<uint64_t>(t.blocks_on_disk);
  s.blocks_pinned = static_cast<uint64_t>(t.blocks_pinned);
  s.blocks_lost = static_cast<uint64_t>(t.blocks_lost);
  s.blocks_empty = static_cast<uint64_t>(t.blocks_empty);
  s.disk_bytes = static_cast<uint64_t>(t.disk_bytes);
  s.disk_stored_bytes = static_cast<uint64_t>(t.disk_stored_bytes);
  s.blocks_compressed = static_cast<uint64_t>(t.blocks_compressed);
  s.pinned_bytes = static_cast<uint64_t>(t.pinned_bytes);
  for (int i = 0; i < kNumRegionTypes; ++i) {
    s.blocks_by_region[i] = static_cast<uint64_t>(t.blocks_by_region[i]);
    s.bytes_by_region[i] = static_cast<uint64_t>(t.bytes_by_region[i]);
  }
  s.ram_bytes = ram_used_;
  s.ram_budget_bytes = ram_budget_;
  s.ram_hits = counters_.ram_hits;
  s.disk_hits = counters_.disk_hits;
  s.misses = counters_.misses;
  s.swap_outs = counters_.swap_outs;
  s.swap_ins = counters_.swap_ins;
  s.bytes_swapped_out = counters_.bytes_out;
  s.bytes_swapped_in = counters_.bytes_in;
  s.prefetched = counters_.prefetched;
  s.prefetch_hits = counters_.prefetch_hits;
  s.prefetch_wasted = counters_.prefetch_wasted;
  s.accesses_reported = counters_.reported;
  s.compress_attempts = compress_attempts_.load(std::memory_order_relaxed);
  s.compress_skipped = compress_skipped_.load(std::memory_order_relaxed);
  s.swap_out_time = counters_.out_time;
  s.swap_in_time = counters_.in_time;
  s.algorithm = policy_->algorithm();
  return s;
}

}  // namespace tensorpager::storage

namespace tensorpager::storage {

void BlockStore::IndexSequence(Entry* e) {
  if (!e->attrs.sequence) return;
  sequences_[e->attrs.sequence->group][e->attrs.sequence->index] = e;
}

void BlockStore::UnindexSequence(const Entry& e) {
  if (!e.attrs.sequence) return;
  auto group = sequences_.find(e.attrs.sequence->group);
  if (group == sequences_.end()) return;
  auto member = group->second.find(e.attrs.sequence->index);
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
  auto group = sequences_.find(e.attrs.sequence->group);
  if (group == sequences_.end()) return;
  const uint32_t first = e.attrs.sequence->index;
  for (auto it = group->second.upper_bound(first);
       it != group->second.end() &&
       it->first - first <= options_.prefetch_depth;
       ++it) {
    const Entry* next = it->second;
    if (next->ram == nullptr && next->disk && next->io == Io::kIdle &&
        next->lost_reason.empty()) {
      prefetch_queue_.push_back(next->key);
    }
  }
  if (!prefetch_queue_.empty()) io_done_.SignalAll();
}

void BlockStore::PrefetchLoop() {
  for (;;) {
    Entry* e = nullptr;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && prefetch_queue_.empty()) io_done_.Wait(&mu_);
      if (stopping_) return;
      const BlockKey key = std::move(prefetch_queue_.front());
      prefetch_queue_.pop_front();
      e = Find(key);
      // Prefetch only into free room: never evict for a guess.
      if (e == nullptr || e->ram != nullptr || !e->disk || e->io != Io::kIdle ||
          !e->lost_reason.empty() ||
          ram_used_ + ram_reserved_ + e->attrs.size_bytes > ram_budget_) {
        continue;
      }
      e->io = Io::kSwappingIn;
    }
    // Marks the block as prefetched under the lock that makes it idle:
    // once idle, a concurrent Unregister may free it.
    SwapInMarked({&e, 1}, /*prefetch=*/true);
  }
}

BlockStore::ReportResult BlockStore::ReportAccesses(
    const std::vector<AccessReport>& reports) {
  ReportResult result;
  MutexLock lock(&mu_);
  const int64_t now = NowMs();
  for (const AccessReport& r : reports) {
    Entry* e = Find(r.key);
    if (e == nullptr) {
      ++result.unknown;
      continue;
    }
    ++result.accepted;
    const uint32_t count = std::max<uint32_t>(r.count, 1);
    e->access_count += count;
    e->last_access_ms = now;
    counters_.reported += count;
    // Frequency-aware policies see each access; a bounded replay keeps one
    // report cheap however large its count.
    for (uint32_t i = 0; i < std::min<uint32_t>(count, 8); ++i) {
      policy_->Touch(e->handle);
    }
  }
  return result;
}

}  // namespace tensorpager::storage
