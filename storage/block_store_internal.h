// The block store's private parts, shared by the files that implement it
// (block_store*.cc): the index entry, the tally guard and the batching
// helpers. Nothing outside storage/block_store*.cc includes it.
#ifndef TENSORPAGER_STORAGE_BLOCK_STORE_INTERNAL_H_
#define TENSORPAGER_STORAGE_BLOCK_STORE_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "storage/block_store.h"
#include "storage/compact_name.h"
#include "storage/packed_attributes.h"
#include "storage/packed_copy.h"

namespace tensorpager::storage {

// What only some blocks hold: their resident bytes (blocks in RAM) and
// the reason their bytes are gone (lost blocks, which hold none). Both sit
// in one box behind one pointer, allocated while either is set: 8 bytes
// per block instead of a shared_ptr's 16 and a pointer's 8, at tens of
// millions of blocks mostly on disk (docs/ARCHITECTURE.md, "Per-block
// memory"). A block in RAM pays the box, 48 bytes beside its buffer.
class RamOrLoss {
 public:
  using Bytes = std::shared_ptr<const base::AlignedBuffer>;

  // Immutable once published: a write publishes a new buffer, so readers
  // holding the old snapshot are never torn.
  const Bytes& ram() const { return box_ ? box_->ram : None(); }
  absl::string_view lost_reason() const {
    return box_ ? absl::string_view(box_->lost_reason) : absl::string_view();
  }
  void set_ram(Bytes ram) {
    if (ram == nullptr && box_ == nullptr) return;
    Boxed().ram = std::move(ram);
    Trim();
  }
  void set_lost_reason(std::string reason) {
    if (reason.empty() && box_ == nullptr) return;
    Boxed().lost_reason = std::move(reason);
    Trim();
  }

 private:
  struct Box {
    Bytes ram;
    std::string lost_reason;
  };
  static const Bytes& None() {
    static const Bytes none;
    return none;
  }
  Box& Boxed() {
    if (box_ == nullptr) box_ = std::make_unique<Box>();
    return *box_;
  }
  void Trim() {
    if (box_->ram == nullptr && box_->lost_reason.empty()) box_.reset();
  }

  std::unique_ptr<Box> box_;
};

// Made by NewEntry only: the block's compact name (storage/compact_name.h),
// its only copy of its name, follows the entry in the same allocation, so
// a block costs one allocation and no string object (docs/ARCHITECTURE.md,
// "Per-block memory").
struct BlockStore::Entry {
  Entry() = default;
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  PackedAttributes attrs;
  // The resident bytes (null on disk) and why the bytes are gone (empty
  // while they are not).
  RamOrLoss ram_or_loss;
  // The durable copy; always matches `version` when present.
  OptionalPackedCopy disk;
  uint64_t version = 0;
  uint64_t checksum = 0;
  uint64_t access_count = 0;
  // Two words of bit-fields, for 8 bytes a block (docs/ARCHITECTURE.md,
  // "Per-block memory"): milliseconds since the Unix epoch fit 48 signed
  // bits until the year 6429 (kMaxTimeMs; recovery clamps what a record
  // says), and a name is at most 321 bytes.
  static constexpr int64_t kMaxTimeMs = (int64_t{1} << 47) - 1;
  int64_t last_access_ms : 48 = 0;
  Io io : 8 = Io::kIdle;
  bool written : 1 = false;
  // Swapped in by the prefetcher and not accessed since.
  bool prefetched : 1 = false;
  int64_t created_ms : 48 = 0;
  uint64_t name_size : 16 = 0;  // bytes of the compact name behind the entry

  // The name as the entry keeps it (storage/compact_name.h): the indexes
  // hash, compare and order it as it is.
  absl::string_view compact() const {
    return absl::string_view(reinterpret_cast<const char*>(this + 1),
                             name_size);
  }
  absl::string_view ns() const { return compact_name::Namespace(compact()); }
  std::string id() const { return compact_name::Id(compact()); }
  BlockKey key() const { return compact_name::Key(compact()); }
  const RamOrLoss::Bytes& ram() const { return ram_or_loss.ram(); }
  void set_ram(RamOrLoss::Bytes ram) { ram_or_loss.set_ram(std::move(ram)); }
  absl::string_view lost_reason() const { return ram_or_loss.lost_reason(); }
  void set_lost_reason(std::string reason) {
    ram_or_loss.set_lost_reason(std::move(reason));
  }
  // Its bytes are on disk and nowhere else, readable, and it is not
  // being removed: what a swap-in by bytes may bring back.
  bool OnDiskOnly() const {
    return ram() == nullptr && disk && lost_reason().empty() &&
           io != Io::kRemoving;
  }
  // Asks the CPU for the lines of the fields (the name after them is read
  // by the lookup that found the entry), so that reading the fields of a
  // batch of entries overlaps their cache misses. Entries are 8-aligned,
  // not 64: the last byte may sit on a line the steps of 64 miss.
  void Prefetch() const {
    const char* p = reinterpret_cast<const char*>(this);
    for (size_t line = 0; line < sizeof(Entry); line += 64) {
      __builtin_prefetch(p + line);
    }
    __builtin_prefetch(p + sizeof(Entry) - 1);
  }
  // The policy knows an entry by its address, so finding the entry of a
  // victim needs no second index (entries never move; the policy forgets
  // a handle before its entry is freed).
  policy::Handle handle() const { return reinterpret_cast<uintptr_t>(this); }
  static Entry* Of(policy::Handle handle) {
    return reinterpret_cast<Entry*>(handle);
  }
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

// Helpers of the block store files.

// Blocks smaller than an I/O unit move in engine batches of at most this
// many blocks and bytes, which bounds what a batch holds at once (RAM
// reserved for swap-ins, compressed images of swap-outs).
inline constexpr size_t kBatchBlocks = 256;
inline constexpr uint64_t kBatchBytes = 64ull << 20;

// Entries a listing examines per hold of the store's lock.
inline constexpr size_t kListScanPerLock = 4096;

// Splits blocks of `sizes` into consecutive runs [begin, end) of at most
// kBatchBlocks blocks and `max_bytes` bytes, each holding at least one.
inline std::vector<std::pair<size_t, size_t>> BatchRanges(
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

inline int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_BLOCK_STORE_INTERNAL_H_
