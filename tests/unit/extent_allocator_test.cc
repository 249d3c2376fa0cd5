#include "storage/extent_allocator.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace tensorpager::storage {
namespace {

constexpr uint64_t kA = 4096;

TEST(ExtentAllocatorTest, AllocatesAlignedExtentsUntilFull) {
  ExtentAllocator a(10 * kA, kA);
  auto e1 = a.Allocate(1);
  ASSERT_TRUE(e1.ok());
  EXPECT_EQ(e1->length, kA);
  EXPECT_EQ(e1->offset % kA, 0u);
  auto e2 = a.Allocate(5 * kA + 1);
  ASSERT_TRUE(e2.ok());
  EXPECT_EQ(e2->length, 6 * kA);
  auto full = a.Allocate(4 * kA);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.status().message().find("--max_swap_size"), std::string::npos);
  auto fits = a.Allocate(3 * kA);
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ(a.Stats().free_bytes, 0u);
}

TEST(ExtentAllocatorTest, FreeCoalescesNeighbours) {
  ExtentAllocator a(8 * kA, kA);
  std::vector<Extent> e;
  for (int i = 0; i < 8; ++i) e.push_back(*a.Allocate(kA));
  ASSERT_TRUE(a.Free(e[1]).ok());
  ASSERT_TRUE(a.Free(e[3]).ok());
  EXPECT_EQ(a.Stats().free_ranges, 2u);
  EXPECT_GT(a.Stats().fragmentation, 0.0);
  EXPECT_EQ(a.Allocate(2 * kA).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(a.Free(e[2]).ok());
  EXPECT_EQ(a.Stats().free_ranges, 1u);
  EXPECT_EQ(a.Stats().fragmentation, 0.0);
  auto three = a.Allocate(3 * kA);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->offset, e[1].offset);
}

TEST(ExtentAllocatorTest, DoubleFreeIsInternalError) {
  ExtentAllocator a(4 * kA, kA);
  auto e = a.Allocate(kA);
  ASSERT_TRUE(a.Free(*e).ok());
  EXPECT_EQ(a.Free(*e).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(a.Free({0, 2 * kA}).code(), absl::StatusCode::kInternal);
}

TEST(ExtentAllocatorTest, MarkUsedRebuildsStateForRecovery) {
  ExtentAllocator a(16 * kA, kA);
  ASSERT_TRUE(a.MarkUsed({2 * kA, 3 * kA}).ok());
  ASSERT_TRUE(a.MarkUsed({8 * kA, kA}).ok());
  EXPECT_EQ(a.MarkUsed({3 * kA, kA}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(a.MarkUsed({15 * kA, 2 * kA}).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(a.MarkUsed({100, kA}).code(), absl::StatusCode::kInvalidArgument);
  const AllocatorStats s = a.Stats();
  EXPECT_EQ(s.used_bytes, 4 * kA);
  EXPECT_EQ(s.extents, 2u);
  EXPECT_EQ(s.high_water_bytes, 9 * kA);
  ASSERT_TRUE(a.Free({2 * kA, 3 * kA}).ok());
  ASSERT_TRUE(a.Free({8 * kA, kA}).ok());
  EXPECT_EQ(a.Stats().free_ranges, 1u);
}

TEST(ExtentAllocatorTest, RandomChurnAccountsForEveryByte) {
  ExtentAllocator a(1024 * kA, kA);
  std::mt19937 rng(3);
  std::vector<Extent> live;
  for (int step = 0; step < 5000; ++step) {
    if (!live.empty() && (rng() % 2 == 0)) {
      const size_t i = rng() % live.size();
      ASSERT_TRUE(a.Free(live[i]).ok());
      live[i] = live.back();
      live.pop_back();
    } else {
      auto e = a.Allocate((rng() % 16 + 1) * kA - rng() % 100);
      if (e.ok()) live.push_back(*e);
    }
    uint64_t used = 0;
    for (const Extent& e : live) used += e.length;
    ASSERT_EQ(a.Stats().used_bytes, used);
  }
  for (const Extent& e : live) ASSERT_TRUE(a.Free(e).ok());
  EXPECT_EQ(a.Stats().free_ranges, 1u);
  EXPECT_EQ(a.Stats().free_bytes, 1024 * kA);
}

}  // namespace
}  // namespace tensorpager::storage
