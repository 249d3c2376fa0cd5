// BlockStore::List over more blocks than one hold of the lock covers
// (kListScanPerLock): pages stay in key order with nothing lost or
// repeated, with a rare filter and without.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "storage/block_store.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::storage {
namespace {

constexpr int kBlocks = 10000;

std::string Id(int i) { return absl::StrFormat("%05d", i); }

// Every page of `filter`, page_size at a time: the ids in order.
std::vector<std::string> ListAll(BlockStore& store, const ListFilter& filter,
                                 uint32_t page_size) {
  std::vector<std::string> ids;
  std::string token;
  for (;;) {
    absl::StatusOr<ListPage> page = store.List(filter, page_size, token);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return ids;
    for (const BlockInfo& b : page->blocks) ids.push_back(b.id);
    if (page->next_page_token.empty()) return ids;
    token = page->next_page_token;
  }
}

TEST(ListScanTest, PagesAcrossScanChunksKeepKeyOrder) {
  tensorpager::testing::TempDir dir;
  BlockStoreOptions options;
  options.data_dir = dir.Sub("data");
  options.prefetch_depth = 0;
  auto store = BlockStore::Open(std::move(options));
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<std::string> every;
  std::vector<std::string> pinned;
  for (int i = 0; i < kBlocks; ++i) {
    BlockAttributes attrs;
    attrs.size_bytes = 64;
    attrs.pinned = i % 997 == 0;
    ASSERT_TRUE((*store)->Register(*BlockKey::Make("t", Id(i)), attrs).ok());
    every.push_back(Id(i));
    if (attrs.pinned) pinned.push_back(Id(i));
  }
  // Another namespace after "t" in key order: a listing of "t" ends
  // before it.
  BlockAttributes other;
  other.size_bytes = 64;
  ASSERT_TRUE((*store)->Register(*BlockKey::Make("u", "x"), other).ok());

  ListFilter all_of_t;
  all_of_t.ns = "t";
  EXPECT_EQ(ListAll(**store, all_of_t, 3000), every);
  ListFilter pinned_of_t = all_of_t;
  pinned_of_t.pinned = true;
  EXPECT_EQ(ListAll(**store, pinned_of_t, 3), pinned);
}

// Entries keep hex ids packed (storage/compact_name.h); listings, prefix
// filters and lookups must still see every id as it was registered, in
// the order of the ids, before and after a restart.
TEST(ListScanTest, HexAndTextIdsListInIdOrderAcrossRestart) {
  tensorpager::testing::TempDir dir;
  const std::vector<std::string> ids = {"ab",
                                        "abz",
                                        "ab01",
                                        "AB",
                                        "abc",
                                        "a",
                                        "ab0",
                                        "ff",
                                        "f",
                                        "fg",
                                        "00",
                                        "0",
                                        "0a",
                                        "9f",
                                        "a0",
                                        "b",
                                        std::string(64, 'e'),
                                        std::string(64, 'f')};
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> starting_ab;
  for (const std::string& id : sorted) {
    if (absl::StartsWith(id, "ab")) starting_ab.push_back(id);
  }
  for (int open = 0; open < 2; ++open) {
    BlockStoreOptions options;
    options.data_dir = dir.Sub("data");
    options.prefetch_depth = 0;
    auto store = BlockStore::Open(std::move(options));
    ASSERT_TRUE(store.ok()) << store.status();
    if (open == 0) {
      for (const std::string& id : ids) {
        BlockAttributes attrs;
        attrs.size_bytes = 64;
        ASSERT_TRUE((*store)->Register(*BlockKey::Make("t", id), attrs).ok());
      }
    }
    ListFilter of_t;
    of_t.ns = "t";
    EXPECT_EQ(ListAll(**store, of_t, 4), sorted) << "open " << open;
    ListFilter ab = of_t;
    ab.id_prefix = "ab";
    EXPECT_EQ(ListAll(**store, ab, 2), starting_ab) << "open " << open;
    ab.all_namespaces = true;
    EXPECT_EQ(ListAll(**store, ab, 3), starting_ab) << "open " << open;
    std::vector<BlockKeyView> lookup;
    for (const std::string& id : ids) lookup.emplace_back("t", id);
    lookup.emplace_back("t", "ABC");
    lookup.emplace_back("t", "abcd");
    const auto found = (*store)->Lookup(lookup);
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_TRUE(found[i].has_value()) << ids[i];
    }
    EXPECT_FALSE(found[ids.size()].has_value());
    EXPECT_FALSE(found[ids.size() + 1].has_value());
    absl::StatusOr<BlockInfo> info =
        (*store)->Get(*BlockKey::Make("t", std::string(64, 'e')));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->id, std::string(64, 'e'));
  }
}

}  // namespace
}  // namespace tensorpager::storage
