#include "storage/record_scan.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/metadata_store.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::storage {
namespace {

BlockRecordProto Record(uint64_t size) {
  BlockRecordProto r;
  r.set_size_bytes(size);
  r.set_written(true);
  return r;
}

// More records than fit in the batches in circulation: the scan waits for
// the caller and goes on, and every record arrives once, in key order.
TEST(RecordScanTest, HandsOutEveryRecordInKeyOrderAcrossBatches) {
  testing::TempDir dir;
  auto meta = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(meta.ok()) << meta.status();
  const size_t count =
      RecordScan::kBatchRecords * (RecordScan::kBatches + 2) + 7;
  std::vector<std::pair<BlockKey, BlockRecordProto>> records;
  for (size_t i = 0; i < count; ++i) {
    records.emplace_back(*BlockKey::Make("ns", absl::StrFormat("%08d", i)),
                         Record(i));
  }
  ASSERT_TRUE((*meta)->PutBatch(records, false).ok());

  RecordScan scan(**meta);
  size_t seen = 0;
  BlockRecordProto parsed;
  while (const RecordScan::Batch* batch = scan.Next()) {
    ASSERT_GT(batch->size(), 0u);
    for (size_t i = 0; i < batch->size(); ++i, ++seen) {
      ASSERT_EQ(batch->key(i).ns, "ns");
      ASSERT_EQ(batch->key(i).id, absl::StrFormat("%08d", seen));
      ASSERT_TRUE(
          MetadataStore::ParseRecord(batch->key(i), batch->value(i), &parsed)
              .ok());
      ASSERT_EQ(parsed.size_bytes(), seen);
    }
  }
  EXPECT_TRUE(scan.status().ok()) << scan.status();
  EXPECT_EQ(seen, count);
  EXPECT_EQ(scan.Next(), nullptr) << "the end stays the end";
}

// A caller that stops early (recovery failing on a corrupt record) drops
// the scan with records left: its thread stops and is joined.
TEST(RecordScanTest, StopsWhenDroppedBeforeTheEnd) {
  testing::TempDir dir;
  auto meta = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(meta.ok()) << meta.status();
  std::vector<std::pair<BlockKey, BlockRecordProto>> records;
  for (size_t i = 0; i < RecordScan::kBatchRecords * 8; ++i) {
    records.emplace_back(*BlockKey::Make("", absl::StrCat(i)), Record(i));
  }
  ASSERT_TRUE((*meta)->PutBatch(records, false).ok());
  for (int taken = 0; taken < 3; ++taken) {
    RecordScan scan(**meta);
    for (int i = 0; i < taken; ++i) ASSERT_NE(scan.Next(), nullptr);
  }
}

// An undecodable key ends the scan with DATA_LOSS, once the records before
// it were handed out.
TEST(RecordScanTest, UndecodableKeyIsDataLossAfterTheRecordsBeforeIt) {
  testing::TempDir dir;
  {
    auto meta = MetadataStore::Open(dir.Sub("db"));
    ASSERT_TRUE(meta.ok()) << meta.status();
    ASSERT_TRUE((*meta)
                    ->PutBatch({{*BlockKey::Make("", "a"), Record(1)},
                                {*BlockKey::Make("", "b"), Record(2)}},
                               true)
                    .ok());
  }
  {
    // A block key without the separator between namespace and id, after
    // the two good ones in key order.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::Options(), dir.Sub("db"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "b/zzz", "x").ok());
  }
  auto meta = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(meta.ok()) << meta.status();
  RecordScan scan(**meta);
  std::vector<std::string> ids;
  while (const RecordScan::Batch* batch = scan.Next()) {
    for (size_t i = 0; i < batch->size(); ++i) {
      ids.emplace_back(batch->key(i).id);
    }
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(scan.status().code(), absl::StatusCode::kDataLoss) << scan.status();
  EXPECT_NE(scan.status().message().find("undecodable block key"),
            std::string::npos)
      << scan.status();
}

}  // namespace
}  // namespace tensorpager::storage
