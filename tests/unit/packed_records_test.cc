// The block store's compact per-block records: PackedAttributes and
// PackedCopy keep everything the full structs and the record hold.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "storage/packed_attributes.h"
#include "storage/packed_copy.h"

namespace tensorpager::storage {
namespace {

BlockAttributes FullAttributes() {
  BlockAttributes a;
  a.size_bytes = 4096;
  a.region_type = RegionType::kKvCache;
  a.pinned = true;
  a.dtype = DType::kBFloat16;
  a.shape = {2, 8, 128};
  a.labels = {{"layer", "3"}, {"model", "qwen3-vl"}};
  a.sequence = SequenceRef{"conversation-7", 42};
  a.codec = Codec::kZstd;
  return a;
}

void ExpectSame(const BlockAttributes& a, const BlockAttributes& b) {
  EXPECT_EQ(a.size_bytes, b.size_bytes);
  EXPECT_EQ(a.region_type, b.region_type);
  EXPECT_EQ(a.pinned, b.pinned);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.labels, b.labels);
  ASSERT_EQ(a.sequence.has_value(), b.sequence.has_value());
  if (a.sequence) {
    EXPECT_EQ(a.sequence->group, b.sequence->group);
    EXPECT_EQ(a.sequence->index, b.sequence->index);
  }
  EXPECT_EQ(a.codec, b.codec);
}

TEST(PackedAttributesTest, PackUnpackKeepsEveryField) {
  const BlockAttributes full = FullAttributes();
  const PackedAttributes packed = PackedAttributes::Pack(full);
  ExpectSame(packed.Unpack(), full);
  ASSERT_TRUE(packed.sequence().has_value());
  EXPECT_EQ(packed.sequence()->group, "conversation-7");
  EXPECT_EQ(packed.sequence()->index, 42u);
}

TEST(PackedAttributesTest, ShapeAloneStaysInline) {
  BlockAttributes a;
  a.size_bytes = 4096;
  a.dtype = DType::kBFloat16;
  a.shape = {2, 8, 128};
  const PackedAttributes packed = PackedAttributes::Pack(a);
  // Within std::string's inline buffer: no allocation per block.
  EXPECT_LE(packed.extras.size(), 15u);
  EXPECT_FALSE(packed.sequence().has_value());
  ExpectSame(packed.Unpack(), a);
  BlockAttributes bare;
  EXPECT_TRUE(PackedAttributes::Pack(bare).extras.empty());
}

TEST(PackedAttributesTest, RecordRoundTrip) {
  const BlockAttributes full = FullAttributes();
  BlockRecordProto r;
  r.set_version(9);  // a field that is not an attribute survives
  PackedAttributes::Pack(full).ToRecord(&r);
  EXPECT_EQ(r.version(), 9u);
  EXPECT_EQ(r.shape_size(), 3);
  EXPECT_EQ(r.labels().at("layer"), "3");
  EXPECT_TRUE(r.has_sequence());
  ExpectSame(PackedAttributes::FromRecord(r).Unpack(), full);
}

DiskCopy Copy(std::string codec, std::string key_id, std::string nonce) {
  DiskCopy c;
  c.extent = Extent{8192, 12288};
  c.stored_bytes = 10000;
  c.stored_checksum = 0x1234567890abcdefull;
  c.codec = std::move(codec);
  c.key_id = std::move(key_id);
  c.nonce = std::move(nonce);
  return c;
}

void ExpectSame(const DiskCopy& a, const DiskCopy& b) {
  EXPECT_EQ(a.extent, b.extent);
  EXPECT_EQ(a.stored_bytes, b.stored_bytes);
  EXPECT_EQ(a.stored_checksum, b.stored_checksum);
  EXPECT_EQ(a.codec, b.codec);
  EXPECT_EQ(a.key_id, b.key_id);
  EXPECT_EQ(a.nonce, b.nonce);
}

TEST(PackedCopyTest, KeepsPlainCompressedEncryptedAndLongNamedCopies) {
  for (const DiskCopy& c :
       {Copy("none", "", ""), Copy("zstd+shuffle2", "", ""),
        Copy("lz4", "key-2026", std::string("\0nonce-12byt", 12)),
        Copy("a-codec-name-longer-than-fifteen", "", "")}) {
    const PackedCopy packed(c);
    ExpectSame(packed.Unpack(), c);
    EXPECT_EQ(packed.codec(), c.codec);
    EXPECT_EQ(packed.compressed(), c.compressed());
    EXPECT_EQ(packed.extent(), c.extent);
    EXPECT_EQ(packed.stored_bytes(), c.stored_bytes);
    BlockRecordProto from_packed, from_copy;
    packed.ToRecord(&from_packed);
    c.ToRecord(&from_copy);
    EXPECT_EQ(from_packed.SerializeAsString(), from_copy.SerializeAsString());
  }
  EXPECT_EQ(sizeof(PackedCopy), 40u);
  EXPECT_EQ(sizeof(OptionalPackedCopy), 40u);
}

TEST(PackedCopyTest, KeepsEveryCodecNameAndSizeEvenWhereNoNumberFits) {
  for (const std::string codec :
       {"none", "lz4", "zstd", "lz4+shuffle2", "zstd+shuffle8",
        "zstd+shuffle63", "zstd+shuffle64", "zstd+shuffle02", "lz4+shuffle",
        "zstd+shuffle0", "none+shuffle4", "zstd+bitshuffle2", "LZ4", ""}) {
    DiskCopy c = Copy(codec, "", "");
    const PackedCopy packed(c);
    ExpectSame(packed.Unpack(), c);
    EXPECT_EQ(packed.codec(), codec);
    EXPECT_EQ(packed.compressed(), c.compressed()) << codec;
  }
  // Stored sizes beyond the extent, or 4 GiB or more short of it.
  for (const auto& [length, stored] :
       std::vector<std::pair<uint64_t, uint64_t>>{
           {8ull << 30, 1}, {4096, 8192}, {4096, 4096}, {4096, 0}}) {
    DiskCopy c = Copy("lz4", "", "");
    c.extent.length = length;
    c.stored_bytes = stored;
    const PackedCopy packed(c);
    ExpectSame(packed.Unpack(), c);
    EXPECT_EQ(packed.stored_bytes(), stored);
  }
}

TEST(OptionalPackedCopyTest, HoldsACopyOrNone) {
  OptionalPackedCopy disk;
  EXPECT_FALSE(disk.has_value());
  EXPECT_FALSE(disk);
  const DiskCopy c = Copy("zstd+shuffle2", "key-1", "nonce");
  disk.emplace(c);
  ASSERT_TRUE(disk);
  ExpectSame(disk->Unpack(), c);
  ExpectSame((*disk).Unpack(), c);
  disk.reset();
  EXPECT_FALSE(disk.has_value());
}

}  // namespace
}  // namespace tensorpager::storage
