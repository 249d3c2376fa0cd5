#include "storage/entry_arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace tensorpager::storage {
namespace {

// Blocks of every size an entry can have, filled with a pattern of their
// own: none overlaps another, all are 8-byte aligned, and each keeps its
// bytes until freed.
TEST(EntryArenaTest, BlocksAreAlignedDistinctAndKeepTheirBytes) {
  EntryArena arena;
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  for (int round = 0; round < 20; ++round) {
    for (size_t bytes = 1; bytes <= 600; bytes += 7) {
      auto* p = static_cast<unsigned char*>(arena.Allocate(bytes));
      ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u) << bytes;
      std::memset(p, static_cast<int>(blocks.size() % 251), bytes);
      blocks.emplace_back(p, bytes);
    }
  }
  EXPECT_EQ(arena.live_blocks(), EntryArena::UsesSlabs() ? blocks.size() : 0);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto [p, bytes] = blocks[i];
    for (size_t k = 0; k < bytes; ++k) {
      ASSERT_EQ(p[k], i % 251) << "block " << i << " byte " << k;
    }
  }
  for (const auto& [p, bytes] : blocks) EntryArena::Free(p, bytes);
  EXPECT_EQ(arena.live_blocks(), 0u);
}

TEST(EntryArenaTest, FreedBlocksAreReusedAndEmptySlabsGoBack) {
  if (!EntryArena::UsesSlabs()) {
    GTEST_SKIP() << "under AddressSanitizer blocks come from operator new";
  }
  EntryArena arena;
  constexpr size_t kBytes = 272;  // a 64-character id's entry
  void* first = arena.Allocate(kBytes);
  EntryArena::Free(first, kBytes);
  EXPECT_EQ(arena.Allocate(kBytes), first) << "the freed block comes first";
  EntryArena::Free(first, kBytes);

  // Three slabs' worth of one class, then all freed: the class keeps one.
  const size_t per_slab = EntryArena::kSlabBytes / kBytes;
  std::vector<void*> blocks;
  for (size_t i = 0; i < 3 * per_slab; ++i) {
    blocks.push_back(arena.Allocate(kBytes));
  }
  EXPECT_GE(arena.slabs(), 3u);
  for (void* p : blocks) EntryArena::Free(p, kBytes);
  EXPECT_EQ(arena.slabs(), 1u);
  EXPECT_EQ(arena.live_blocks(), 0u);

  // Another class maps its own slab; larger blocks use none.
  void* other = arena.Allocate(kBytes + 8);
  EXPECT_EQ(arena.slabs(), 2u);
  void* large = arena.Allocate(EntryArena::kMaxSlabBlock + 1);
  EXPECT_EQ(arena.slabs(), 2u);
  EntryArena::Free(large, EntryArena::kMaxSlabBlock + 1);
  EntryArena::Free(other, kBytes + 8);
}

// The store frees entries on whichever thread drops them.
TEST(EntryArenaTest, BlocksFreedOnOtherThreadsGoBackToTheirArena) {
  EntryArena arena;
  constexpr size_t kBytes = 264;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&arena] {
      std::vector<void*> mine;
      for (int i = 0; i < kPerThread; ++i) {
        mine.push_back(arena.Allocate(kBytes));
        if (i % 3 == 0) {
          EntryArena::Free(mine.back(), kBytes);
          mine.pop_back();
        }
      }
      for (void* p : mine) EntryArena::Free(p, kBytes);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(arena.live_blocks(), 0u);
  if (EntryArena::UsesSlabs()) {
    EXPECT_EQ(arena.slabs(), 1u);
  }
}

}  // namespace
}  // namespace tensorpager::storage
