// A block's disk copy as the store keeps it for every block on disk: 40
// bytes, presence included, against DiskCopy's 128 with its three strings
// (and 72 for the std::optional of this class's earlier 64-byte form).
// The codec is a number (every name this server writes has one); the
// stored size is kept as the extent's padding beyond it, in 32 bits; the
// key id and nonce of an encrypted copy, and anything that does not fit
// (a codec name from an old record, padding of 4 GiB or more), sit behind
// one pointer (docs/ARCHITECTURE.md, "Per-block memory").
#ifndef TENSORPAGER_STORAGE_PACKED_COPY_H_
#define TENSORPAGER_STORAGE_PACKED_COPY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "storage/disk_tier.h"
#include "storage/extent_allocator.h"

namespace tensorpager::storage {

class PackedCopy {
 public:
  explicit PackedCopy(const DiskCopy& copy);
  PackedCopy(PackedCopy&&) = default;
  PackedCopy& operator=(PackedCopy&&) = default;

  DiskCopy Unpack() const;
  const Extent& extent() const { return extent_; }
  uint64_t stored_bytes() const;
  std::string codec() const;
  bool compressed() const;
  void ToRecord(BlockRecordProto* r) const { Unpack().ToRecord(r); }

 private:
  friend class OptionalPackedCopy;
  PackedCopy() = default;  // no copy: only OptionalPackedCopy holds one

  struct Rare {
    std::string codec;  // set when codec_ is kCodecInRare
    std::string key_id;
    std::string nonce;
    uint64_t stored_bytes = 0;  // used when kStoredInRare is set
  };
  // codec_: bits 0-1 the codec (kNone, kLz4, kZstd, or kCodecInRare),
  // bits 2-7 the element size of a "+shuffleN" suffix (0: none).
  static constexpr uint8_t kCodecInRare = 3;
  static constexpr uint8_t kPresent = 1;
  static constexpr uint8_t kStoredInRare = 2;

  Extent extent_;
  uint64_t stored_checksum_ = 0;
  std::unique_ptr<const Rare> rare_;
  uint32_t padding_ = 0;  // extent_.length - stored bytes
  uint8_t codec_ = 0;
  uint8_t flags_ = 0;
};

// std::optional<PackedCopy> in PackedCopy's own 40 bytes: presence is a
// flag in its spare bytes instead of 8 more bytes per block.
class OptionalPackedCopy {
 public:
  bool has_value() const { return (copy_.flags_ & PackedCopy::kPresent) != 0; }
  explicit operator bool() const { return has_value(); }
  void emplace(const DiskCopy& copy) { copy_ = PackedCopy(copy); }
  void reset() { copy_ = PackedCopy(); }
  const PackedCopy* operator->() const { return &copy_; }
  const PackedCopy& operator*() const { return copy_; }

 private:
  PackedCopy copy_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_PACKED_COPY_H_
