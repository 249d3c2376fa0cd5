// BlockStore::SwapInBytes: the most recently used blocks on disk, chosen in
// one pass over every block that lets go of the store's lock between
// chunks (kListScanPerLock blocks each).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
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

}  // namespace
}  // namespace tensorpager::storage
