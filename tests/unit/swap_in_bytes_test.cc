// BlockStore::SwapInBytes: the most recently used blocks on disk, taken
// from the bounded set of them the store keeps (RecentOnDisk), or found in
// one pass over every block that lets go of the store's lock between
// chunks (kListScanPerLock blocks each) when the set cannot vouch for them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "storage/block_store.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::storage {
namespace {

constexpr uint64_t kBlock = 4096;
constexpr int kBlocks = 10000;  // more than two scan chunks

BlockKey Key(int i) { return *BlockKey::Make("t", absl::StrFormat("%05d", i)); }

TEST(SwapInBytesTest, PicksTheMostRecentlyUsedBlocksOnDiskAcrossScanChunks) {
  tensorpager::testing::TempDir dir;
  BlockStoreOptions options;
  options.data_dir = dir.Sub("data");
  options.ram_budget_bytes = 2 * kBlocks * kBlock;
  options.max_swap_bytes = 2 * kBlocks * kBlock;
  options.prefetch_depth = 0;
  auto store = BlockStore::Open(std::move(options));
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<BlockKey> all;
  for (int i = 0; i < kBlocks; ++i) {
    BlockAttributes attrs;
    attrs.size_bytes = kBlock;
    ASSERT_TRUE((*store)->Register(Key(i), attrs).ok());
    base::AlignedBuffer data = (*store)->NewBuffer(kBlock);
    std::memset(data.data(), i & 0xff, kBlock);
    ASSERT_TRUE((*store)->Write(Key(i), 0, std::move(data), {}).ok());
    all.push_back(Key(i));
  }
  ASSERT_TRUE((*store)->SwapOut(all).ok());
  // Used later than the rest (read back into RAM, then sent to disk
  // again), one in each chunk of the scan.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::vector<BlockKey> recent = {Key(17), Key(5003), Key(9998)};
  for (const BlockKey& key : recent) {
    ASSERT_TRUE((*store)->Read(key, {}).ok());
  }
  ASSERT_TRUE((*store)->SwapOut(recent).ok());

  auto in = (*store)->SwapInBytes(3 * kBlock);
  ASSERT_TRUE(in.ok()) << in.status();
  std::set<std::string> moved;
  for (const BlockKey& key : in->moved) moved.insert(key.id);
  EXPECT_EQ(moved, (std::set<std::string>{"00017", "05003", "09998"}));
  EXPECT_EQ(in->bytes_moved, 3 * kBlock);

  // Asking for more than is on disk brings in everything.
  auto rest = (*store)->SwapInBytes(2 * kBlocks * kBlock);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->moved.size(), size_t{kBlocks - 3});
  EXPECT_EQ((*store)->Stats().blocks_in_ram, uint64_t{kBlocks});
}

// A store with `recent` blocks in its RecentOnDisk and room in RAM for
// every block of the tests.
std::unique_ptr<BlockStore> OpenStore(const std::string& dir, size_t recent) {
  BlockStoreOptions options;
  options.data_dir = dir;
  options.ram_budget_bytes = 1024 * kBlock;
  options.max_swap_bytes = 1024 * kBlock;
  options.prefetch_depth = 0;
  options.recent_on_disk_blocks = recent;
  auto store = BlockStore::Open(std::move(options));
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

void Put(BlockStore& store, int i) {
  BlockAttributes attrs;
  attrs.size_bytes = kBlock;
  ASSERT_TRUE(store.Register(Key(i), attrs).ok());
  base::AlignedBuffer data = store.NewBuffer(kBlock);
  std::memset(data.data(), i & 0xff, kBlock);
  ASSERT_TRUE(store.Write(Key(i), 0, std::move(data), {}).ok());
}

// The ids of the `n` blocks on disk only that were used last, newest
// first (ties: the smaller name first), from the public listing.
std::vector<std::string> NewestOnDisk(const BlockStore& store, size_t n) {
  std::vector<std::pair<int64_t, std::string>> on_disk;
  ListFilter filter;
  filter.ns = "t";
  std::string token;
  do {
    auto page = store.List(filter, 1000, token);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return {};
    for (const BlockInfo& b : page->blocks) {
      if (b.tier == Tier::kDisk)
        on_disk.emplace_back(b.last_access_unix_ms, b.id);
    }
    token = page->next_page_token;
  } while (!token.empty());
  std::sort(on_disk.begin(), on_disk.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> ids;
  for (size_t i = 0; i < std::min(n, on_disk.size()); ++i) {
    ids.push_back(on_disk[i].second);
  }
  return ids;
}

std::vector<std::string> MovedIds(const SwapResult& r) {
  std::vector<std::string> ids;
  for (const BlockKey& key : r.moved) ids.push_back(key.id);
  return ids;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(SwapInBytesTest, TakesTheNewestFromItsSetAndPassesOverAllBelowIt) {
  tensorpager::testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"), /*recent=*/16);
  ASSERT_NE(store, nullptr);
  std::vector<BlockKey> all;
  for (int i = 0; i < 50; ++i) {
    Put(*store, i);
    all.push_back(Key(i));
  }
  ASSERT_TRUE(store->SwapOut(all).ok());  // the set keeps the newest 16
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::vector<BlockKey> recent = {Key(3), Key(20), Key(41)};
  for (const BlockKey& key : recent) ASSERT_TRUE(store->Read(key, {}).ok());
  ASSERT_TRUE(store->SwapOut(recent).ok());

  auto in = store->SwapInBytes(3 * kBlock);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(Sorted(MovedIds(*in)),
            (std::vector<std::string>{"00003", "00020", "00041"}));
  EXPECT_EQ(store->Stats().swap_in_scans, 0u);

  // 30 blocks reach below what the set holds: one pass over every block.
  const std::vector<std::string> expected = NewestOnDisk(*store, 30);
  in = store->SwapInBytes(30 * kBlock);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(Sorted(MovedIds(*in)), Sorted(expected));
  EXPECT_EQ(store->Stats().swap_in_scans, 1u);
}

TEST(SwapInBytesTest, ARestartFindsTheNewestOnDiskWithoutAPass) {
  tensorpager::testing::TempDir dir;
  std::vector<std::string> expected;
  {
    auto store = OpenStore(dir.Sub("data"), /*recent=*/8);
    ASSERT_NE(store, nullptr);
    std::vector<BlockKey> all;
    for (int i = 0; i < 40; ++i) {
      Put(*store, i);
      all.push_back(Key(i));
      if (i % 10 == 9)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(store->SwapOut(all).ok());
    expected = NewestOnDisk(*store, 5);
  }
  auto store = OpenStore(dir.Sub("data"), /*recent=*/8);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(NewestOnDisk(*store, 5), expected);
  auto in = store->SwapInBytes(5 * kBlock);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(Sorted(MovedIds(*in)), Sorted(expected));
  EXPECT_EQ(store->Stats().swap_in_scans, 0u);
}

// Random reads, swap-outs, reported accesses, re-registrations and
// swap-ins by bytes, with a set much smaller than the disk: every swap-in
// takes exactly the blocks a full sort of the listing names.
TEST(SwapInBytesTest, AlwaysTakesWhatAFullSortWould) {
  tensorpager::testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"), /*recent=*/12);
  ASSERT_NE(store, nullptr);
  constexpr int kCount = 200;
  for (int i = 0; i < kCount; ++i) Put(*store, i);
  std::mt19937 rng(7);
  auto any = [&] { return static_cast<int>(rng() % kCount); };
  int swap_ins = 0;
  for (int step = 0; step < 600; ++step) {
    switch (rng() % 6) {
      case 0:
      case 1: {
        std::vector<BlockKey> keys;
        for (int k = 0, n = 1 + static_cast<int>(rng() % 30); k < n; ++k) {
          keys.push_back(Key(any()));
        }
        ASSERT_TRUE(store->SwapOut(keys).ok());
        break;
      }
      case 2:
        ASSERT_TRUE(store->Read(Key(any()), {}).ok());
        break;
      case 3:
        store->ReportAccesses({{Key(any()), 1}, {Key(any()), 2}});
        break;
      case 4: {
        const int i = any();
        ASSERT_TRUE(store->Unregister(Key(i)).ok());
        Put(*store, i);
        break;
      }
      case 5: {
        const size_t n = 1 + rng() % 25;
        const std::vector<std::string> expected = NewestOnDisk(*store, n);
        auto in = store->SwapInBytes(n * kBlock);
        ASSERT_TRUE(in.ok()) << in.status();
        ASSERT_EQ(Sorted(MovedIds(*in)), Sorted(expected)) << "step " << step;
        ++swap_ins;
        break;
      }
    }
    if (step % 50 == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uint64_t scans = store->Stats().swap_in_scans;
  EXPECT_GT(swap_ins, 50);
  EXPECT_LT(scans, static_cast<uint64_t>(swap_ins));
}

}  // namespace
}  // namespace tensorpager::storage
