#include "storage/metadata_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <vector>

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
                  ->ForEach([&](const BlockKey& k, const BlockRecordProto& r) {
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
  absl::Status s = (*store)->ForEach([&](const BlockKey&, const auto&) {
    return ++visits == 2 ? absl::CancelledError("stop") : absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(visits, 2);
}

TEST(MetadataStoreTest, SecondOpenOfSameDirIsFailedPrecondition) {
  testing::TempDir dir;
  auto first = MetadataStore::Open(dir.Sub("db"));
  ASSERT_TRUE(first.ok());
  auto second = MetadataStore::Open(dir.Sub("db"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition)
      << second.status();
}

}  // namespace
}  // namespace tensorpager::storage
