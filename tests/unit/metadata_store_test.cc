#include "storage/metadata_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "storage/block_store.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::storage {
namespace {

BlockRecordProto Record(uint64_t size, bool on_disk) {
  BlockRecordProto r;
  r.set_size_bytes(size);
  r.set_written(true);
  r.set_on_disk(on_disk);
  r.set_extent_offset(4096);
  r.set_extent_length(8192);
  r.set_checksum(0xabcdef);
  (*r.mutable_labels())["layer"] = "3";
  return r;
}

// A block store over the records written under `dir`/data/metadata.
absl::StatusOr<std::unique_ptr<BlockStore>> OpenStore(
    const testing::TempDir& dir) {
  BlockStoreOptions options;
  options.data_dir = dir.Sub("data");
  options.prefetch_depth = 0;
  return BlockStore::Open(options);
}

TEST(MetadataStoreTest, PutGetDeleteAcrossReopen) {
  testing::TempDir dir;
  const BlockKey a = *BlockKey::Make("", "a");
  const BlockKey b = *BlockKey::Make("ns2", "b");
  {
    auto store = MetadataStore::Open(dir.Sub("db"));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Put(a, Record(10, true), true).ok());
    ASSERT_TRUE((*store)->PutBatch({{b, Record(20, false)}}, true).ok());
    EXPECT_EQ((*store)->Get(*BlockKey::Make("", "zzz")).status().code(),
              absl::StatusCode::kNotFound);
  }
  auto store = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  auto got = (*store)->Get(a);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size_bytes(), 10u);
  EXPECT_TRUE(got->on_disk());
  EXPECT_EQ(got->labels().at("layer"), "3");
  std::vector<std::string> seen;
  ASSERT_TRUE((*store)
                  ->ForEach([&](BlockKeyView k, const BlockRecordProto& r) {
                    seen.push_back(k.ToString() + ":" +
                                   std::to_string(r.size_bytes()));
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"default/a:10", "ns2/b:20"}));
  ASSERT_TRUE((*store)->Delete(a, true).ok());
  EXPECT_EQ((*store)->Get(a).status().code(), absl::StatusCode::kNotFound);
}

TEST(MetadataStoreTest, ForEachStopsAtVisitorError) {
  testing::TempDir dir;
  auto store = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*store)
                    ->Put(*BlockKey::Make("", std::to_string(i)),
                          Record(i, false), false)
                    .ok());
  }
  int visits = 0;
  absl::Status s = (*store)->ForEach([&](BlockKeyView, const auto&) {
    return ++visits == 2 ? absl::CancelledError("stop") : absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(visits, 2);
}

// Compactions wait until the startup scan is done, and a store that has
// recovered lets them run.
TEST(MetadataStoreTest, CompactionsStartOnlyWhenEnabled) {
  testing::TempDir dir;
  auto store = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->compactions_enabled());
  ASSERT_TRUE((*store)->EnableCompactions().ok());
  EXPECT_TRUE((*store)->compactions_enabled());
}

TEST(MetadataStoreTest, SecondOpenOfSameDirIsFailedPrecondition) {
  testing::TempDir dir;
  auto first = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(first.ok());
  auto second = MetadataStore::Open(dir.Sub("db"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition)
      << second.status();
}

// Found by tests/fuzz/block_record_fuzzer: a record with a region type past
// the known ones made BlockStore::Recover index past its per-region
// tallies. Unknown values now make the block lost, with the reason.
TEST(MetadataStoreTest, RecoveryReportsRecordsWithUnknownValuesAsLost) {
  testing::TempDir dir;
  {
    auto meta = MetadataStore::Open(dir.Sub("data/metadata"));
    ASSERT_TRUE(meta.ok()) << meta.status();
    BlockRecordProto region = Record(4096, true);
    region.set_extent_offset(0);
    region.set_extent_length(4096);
    region.set_stored_bytes(4096);
    region.set_region_type(45);
    BlockRecordProto codec = Record(4096, false);
    codec.set_region_type(2);
    codec.set_requested_codec(7);
    BlockRecordProto fine = Record(4096, false);
    fine.set_region_type(4);
    ASSERT_TRUE((*meta)
                    ->PutBatch({{*BlockKey::Make("", "region"), region},
                                {*BlockKey::Make("", "codec"), codec},
                                {*BlockKey::Make("", "fine"), fine}},
                               true)
                    .ok());
  }
  auto store = OpenStore(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->recovery().blocks, 3u);
  EXPECT_EQ((*store)->recovery().blocks_lost, 3u)
      << "the third was only in RAM";
  EXPECT_EQ((*store)->recovery().blocks_on_disk, 0u);
  auto region = (*store)->Get(*BlockKey::Make("", "region"));
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(region->tier, Tier::kLost);
  EXPECT_NE(region->lost_reason.find("unknown region type 45"),
            std::string::npos)
      << region->lost_reason;
  auto codec = (*store)->Get(*BlockKey::Make("", "codec"));
  ASSERT_TRUE(codec.ok());
  EXPECT_NE(codec->lost_reason.find("unknown codec 7"), std::string::npos)
      << codec->lost_reason;
  const StoreStats stats = (*store)->Stats();
  EXPECT_EQ(stats.blocks_lost, 3u);
  EXPECT_EQ(stats.blocks_by_region[static_cast<int>(RegionType::kWeight)], 1u);
  uint64_t by_region = 0;
  for (uint64_t n : stats.blocks_by_region) by_region += n;
  EXPECT_EQ(by_region, 3u);
  for (const char* id : {"region", "codec", "fine"}) {
    EXPECT_TRUE((*store)->Unregister(*BlockKey::Make("", id)).ok()) << id;
  }
}

// Recovery claims every extent in one sorted pass: a record whose extent
// overlaps another's, or lies past the swap capacity, comes back lost and
// the others keep theirs; freed space is allocatable again.
TEST(MetadataStoreTest, RecoveryLosesBlocksWhoseExtentsClash) {
  testing::TempDir dir;
  auto on_disk = [](uint64_t offset, uint64_t length) {
    BlockRecordProto r = Record(4096, true);
    r.set_region_type(2);
    r.set_extent_offset(offset);
    r.set_extent_length(length);
    r.set_stored_bytes(4096);
    return r;
  };
  {
    auto meta = MetadataStore::Open(dir.Sub("data/metadata"));
    ASSERT_TRUE(meta.ok()) << meta.status();
    // Key order (a, b, c, d) is not offset order.
    ASSERT_TRUE(
        (*meta)
            ->PutBatch({{*BlockKey::Make("", "a"), on_disk(8192, 8192)},
                        {*BlockKey::Make("", "b"), on_disk(0, 4096)},
                        {*BlockKey::Make("", "c"), on_disk(12288, 4096)},
                        {*BlockKey::Make("", "d"), on_disk(1ull << 40, 4096)}},
                       true)
            .ok());
  }
  auto store = OpenStore(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->recovery().blocks, 4u);
  EXPECT_EQ((*store)->recovery().blocks_on_disk, 2u);
  EXPECT_EQ((*store)->recovery().blocks_lost, 2u);
  for (const char* id : {"a", "b"}) {
    auto info = (*store)->Get(*BlockKey::Make("", id));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->tier, Tier::kDisk) << id;
  }
  auto c = (*store)->Get(*BlockKey::Make("", "c"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tier, Tier::kLost);
  EXPECT_NE(c->lost_reason.find("overlaps an allocated one"), std::string::npos)
      << c->lost_reason;
  auto d = (*store)->Get(*BlockKey::Make("", "d"));
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->lost_reason.find("past the swap capacity"), std::string::npos)
      << d->lost_reason;
  EXPECT_EQ((*store)->Stats().disk.used_bytes, 8192u + 4096u);
  for (const char* id : {"a", "b", "c", "d"}) {
    EXPECT_TRUE((*store)->Unregister(*BlockKey::Make("", id)).ok()) << id;
  }
  EXPECT_EQ((*store)->Stats().disk.used_bytes, 0u);
}

// Recovery reads the records on one thread and builds the entries on
// another, batch by batch, and claims extents beside the indexing: every
// record of many batches comes back where its record says, in key order.
TEST(MetadataStoreTest, RecoveryOfManyBatchesKeepsEveryBlock) {
  testing::TempDir dir;
  constexpr int kBlocks = 10000;
  {
    auto meta = MetadataStore::Open(dir.Sub("data/metadata"));
    ASSERT_TRUE(meta.ok()) << meta.status();
    std::vector<std::pair<BlockKey, BlockRecordProto>> records;
    for (int i = 0; i < kBlocks; ++i) {
      // Every third only in RAM at the stop; the rest on disk, their
      // extents in the reverse of key order.
      BlockRecordProto r = Record(4096, i % 3 != 0);
      r.set_region_type(2);
      r.set_extent_offset(uint64_t{4096} * (kBlocks - i));
      r.set_extent_length(4096);
      r.set_stored_bytes(4096);
      records.emplace_back(*BlockKey::Make("kv", absl::StrFormat("%05d", i)),
                           r);
    }
    ASSERT_TRUE((*meta)->PutBatch(records, true).ok());
  }
  auto store = OpenStore(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  const int on_disk = kBlocks - (kBlocks + 2) / 3;
  EXPECT_EQ((*store)->recovery().blocks, uint64_t{kBlocks});
  EXPECT_EQ((*store)->recovery().blocks_on_disk, uint64_t(on_disk));
  EXPECT_EQ((*store)->Stats().disk.used_bytes, uint64_t{4096} * on_disk);
  for (int i : {0, 1, 2, 4999, 9998, 9999}) {
    auto info =
        (*store)->Get(*BlockKey::Make("kv", absl::StrFormat("%05d", i)));
    ASSERT_TRUE(info.ok()) << i;
    EXPECT_EQ(info->tier, i % 3 != 0 ? Tier::kDisk : Tier::kLost) << i;
    EXPECT_EQ(info->attrs.labels.at("layer"), "3");
  }
}

// A record whose bytes do not parse keeps the store from opening, with
// DATA_LOSS naming the block.
TEST(MetadataStoreTest, UnparsableRecordFailsRecoveryNamingTheBlock) {
  testing::TempDir dir;
  {
    auto meta = MetadataStore::Open(dir.Sub("data/metadata"));
    ASSERT_TRUE(meta.ok()) << meta.status();
    ASSERT_TRUE((*meta)
                    ->Put(*BlockKey::Make("", "good"), Record(10, false), true)
                    .ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::Options(), dir.Sub("data/metadata"), &raw)
            .ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    // Field 1 as a length-delimited value longer than the bytes left.
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), std::string("b/ns\0bad", 8),
                        "\x0a\x7f")
                    .ok());
  }
  auto store = OpenStore(dir);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss)
      << store.status();
  EXPECT_NE(store.status().message().find("ns/bad"), std::string::npos)
      << store.status();
}

}  // namespace
}  // namespace tensorpager::storage
