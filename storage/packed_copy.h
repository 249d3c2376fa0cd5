// A block's disk copy as the store keeps it for every block on disk: 64
// bytes, against DiskCopy's 128 with its three strings. The codec's name
// is held inline (every name this server writes fits); the key id and
// nonce of an encrypted copy, and a longer name from an old record, sit
// behind one shared pointer (docs/ARCHITECTURE.md, "Memory per block").
#ifndef TENSORPAGER_STORAGE_PACKED_COPY_H_
#define TENSORPAGER_STORAGE_PACKED_COPY_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "storage/disk_tier.h"
#include "storage/extent_allocator.h"

namespace tensorpager::storage {

class PackedCopy {
 public:
  explicit PackedCopy(const DiskCopy& copy);

  DiskCopy Unpack() const;
  const Extent& extent() const { return extent_; }
  uint64_t stored_bytes() const { return stored_bytes_; }
  absl::string_view codec() const;
  bool compressed() const { return codec() != "none"; }
  void ToRecord(BlockRecordProto* r) const { Unpack().ToRecord(r); }

 private:
  struct Rare {
    std::string codec;  // when longer than the inline buffer
    std::string key_id;
    std::string nonce;
  };
  static constexpr uint8_t kCodecInRare = 0xff;

  Extent extent_;
  uint64_t stored_bytes_ = 0;
  uint64_t stored_checksum_ = 0;
  std::array<char, 15> codec_{};
  uint8_t codec_size_ = 0;  // kCodecInRare: the name is rare_->codec
  std::shared_ptr<const Rare> rare_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_PACKED_COPY_H_
