// A block's attributes as the store keeps them for every registered block.
// The fields that requests and the policy read are plain members; shape,
// labels and sequence, read only by replies that describe a block and by
// the prefetcher, are kept serialized as the BlockRecordProto fields that
// hold them. A KV page's short shape then fits the 15 inline bytes of a
// CompactString and costs no allocation (docs/ARCHITECTURE.md, "Per-block
// memory").
#ifndef TENSORPAGER_STORAGE_PACKED_ATTRIBUTES_H_
#define TENSORPAGER_STORAGE_PACKED_ATTRIBUTES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "storage/block_types.h"
#include "storage/codec.h"
#include "storage/compact_string.h"
#include "storage/proto/block_record.pb.h"

namespace tensorpager::storage {

struct PackedAttributes {
  uint64_t size_bytes = 0;
  DType dtype = DType::kUnspecified;
  RegionType region_type = RegionType::kTensorData;
  bool pinned = false;
  bool has_sequence = false;
  std::optional<Codec> codec;
  // BlockRecordProto with only shape, labels and sequence set.
  CompactString extras;

  static PackedAttributes Pack(const BlockAttributes& attrs);
  // Takes the record's values as they are; the caller checks them.
  static PackedAttributes FromRecord(const BlockRecordProto& r);
  // The same, with `scratch` for the work: converting many records with
  // one scratch allocates nothing per record but the extras' bytes.
  static PackedAttributes FromRecord(const BlockRecordProto& r,
                                     BlockRecordProto& scratch);
  BlockAttributes Unpack() const;
  std::optional<SequenceRef> sequence() const;
  // Sets every attribute field of `r`.
  void ToRecord(BlockRecordProto* r) const;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_PACKED_ATTRIBUTES_H_
