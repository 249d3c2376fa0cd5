// The NVMe tier: block images in one data file, behind an IoEngine handed
// in from outside (as LevelDB takes an Env and CacheLib's Navy a Device), so
// tests can run the store over engines that keep bytes in memory or fail on
// demand. It owns the extents, the file's growth, compression and the
// checksums of what it stores, and moves many images per engine batch.
//
// It keeps no index: the block store records each block's DiskCopy and
// hands it back to read or free it. Thread-safe.
#ifndef TENSORPAGER_STORAGE_DISK_TIER_H_
#define TENSORPAGER_STORAGE_DISK_TIER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "storage/base/aligned_buffer.h"
#include "storage/base/block_key.h"
#include "storage/base/shared_mutex.h"
#include "storage/base/task_pool.h"
#include "storage/buffer_pool.h"
#include "storage/codec.h"
#include "storage/encryption.h"
#include "storage/extent_allocator.h"
#include "storage/extent_reclaimer.h"
#include "storage/io_engine.h"
#include "storage/proto/block_record.pb.h"

namespace tensorpager::storage {

// The durable copy of a block in the data file.
struct DiskCopy {
  Extent extent;
  uint64_t stored_bytes = 0;     // image length within the extent
  uint64_t stored_checksum = 0;  // xxh3-64 of the image
  std::string codec = "none";    // see CompressedImage::codec
  // Encrypted copies: the key's id and the nonce (empty: plaintext).
  std::string key_id;
  std::string nonce;

  bool compressed() const { return codec != "none"; }
  bool encrypted() const { return !key_id.empty(); }
  void ToRecord(BlockRecordProto* r) const;
  // Takes the fields ToRecord sets out of `r`: the record names no copy.
  static void ClearRecord(BlockRecordProto* r);
  // The copy a record names, nullopt when it names none.
  static std::optional<DiskCopy> FromRecord(const BlockRecordProto& r);
};

struct DiskTierOptions {
  // Capacity of the data file (--max_swap_size).
  uint64_t max_bytes = 2ull << 30;
  // The file grows in steps of this size (preallocated).
  uint64_t file_growth_bytes = 64ull << 20;
  // Set: copies are written encrypted with keys->current() (all but the
  // sources that say otherwise), and read with the key each names.
  std::shared_ptr<const KeyRing> keys;
};

struct DiskTierStats {
  AllocatorStats space;
  std::string engine;
  int in_flight = 0;  // engine requests in flight now
  // Copies written with a codec asked for, and those of them stored raw
  // because the ratio was poor.
  uint64_t compress_attempts = 0;
  uint64_t compress_skipped = 0;
};

class DiskTier {
 public:
  // `buffers` lends scratch and staging buffers; `workers` compresses and
  // checks side by side (not owned, outlives the tier).
  DiskTier(DiskTierOptions options, std::unique_ptr<IoEngine> engine,
           std::shared_ptr<BufferPool> buffers, base::TaskPool* workers);
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  // What a disk copy is made from.
  struct Source {
    const base::AlignedBuffer* data = nullptr;
    uint64_t checksum = 0;  // of *data
    uint32_t element_bytes = 0;
    CompressionSettings compression;
    // With a key ring: whether this copy is sealed (false: its block is
    // outside the encrypted tenants, see BlockStore::SetShareGroups).
    bool seal = true;
  };
  // Writes each source to a new extent (compressed when that pays), the
  // writes in one engine batch; copies[i] gets the outcome of sources[i].
  // Not durable until Sync.
  void Write(absl::Span<const Source> sources,
             absl::Span<absl::StatusOr<DiskCopy>> copies);
  // Makes every completed Write durable.
  absl::Status Sync();

  // One block's read, in three steps so that many go in one engine batch:
  // Prepare (buffers, the request), Transfer (all requests), Finish
  // (checksums, decompression).
  struct Read {
    BlockKeyView key = BlockKeyView("", "");  // names the block in errors
    DiskCopy copy;
    uint64_t checksum = 0;               // of the block's bytes
    base::AlignedBuffer* out = nullptr;  // the block's size
    // A compressed or encrypted image, from the pool.
    base::AlignedBuffer staging;
    IoRequest request;
  };
  absl::Status Prepare(Read* read);
  void Transfer(absl::Span<IoRequest> requests);
  // Verifies and decompresses into *out; gives the staging buffer back.
  // DATA_LOSS when the copy is damaged. Also call it after a failed
  // Prepare or transfer: it then only releases the staging buffer.
  absl::Status Finish(Read* read, absl::Status transferred);
  // All three for one block.
  absl::Status ReadVerified(BlockKeyView key, const DiskCopy& copy,
                            uint64_t checksum, base::AlignedBuffer* out);

  void Free(const Extent& extent);
  // Frees all: they are punched out of the file (neighbours together) on
  // the reclaimer's thread and reused only after that.
  void FreeMany(std::vector<Extent> extents);
  // Recovery: claims the extent of a copy recorded before a restart.
  absl::Status Claim(const DiskCopy& copy);
  // Claim of each copy, given by its extent and stored size, in one pass
  // (ExtentAllocator::MarkUsedMany).
  std::vector<absl::Status> ClaimMany(absl::Span<const Extent> extents,
                                      absl::Span<const uint64_t> stored_bytes);

  DiskTierStats Stats() const;

 private:
  absl::StatusOr<Extent> Allocate(uint64_t capacity);
  std::optional<CompressedImage> Compress(const Source& source);
  // The extent and AES-GCM associated data of a copy: where it lies and
  // what it holds, so a copy moved or altered fails its tag.
  static std::string AssociatedData(const DiskCopy& copy, uint64_t checksum);
  absl::Status Corrupt(const Read& read, absl::string_view what) const;

  const DiskTierOptions options_;
  const std::unique_ptr<IoEngine> engine_;
  const std::shared_ptr<BufferPool> buffers_;
  base::TaskPool* const workers_;
  ExtentAllocator allocator_;
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> compress_attempts_{0};
  std::atomic<uint64_t> compress_skipped_{0};
  SharedMutex file_mu_;  // serialises growth of the data file
  uint64_t file_bytes_ ABSL_GUARDED_BY(file_mu_);
  // Last: stopped (its queue punched) before the engine and allocator go.
  ExtentReclaimer reclaimer_{engine_.get(), &allocator_};
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_DISK_TIER_H_
