#include "storage/extent_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(ExtentAllocatorTest, MarkUsedManyClaimsInAnyOrderAsMarkUsedWould) {
  ExtentAllocator a(32 * kA, kA);
  ASSERT_TRUE(a.MarkUsed({30 * kA, kA}).ok());  // claimed before
  const std::vector<Extent> extents = {
      {8 * kA, 2 * kA},    // ok
      {2 * kA, kA},        // ok
      {9 * kA, kA},        // overlaps the first
      {40 * kA, kA},       // past the capacity
      {5 * kA + 1, kA},    // not aligned
      {30 * kA, kA},       // claimed before
      {3 * kA, 4 * kA},    // ok
      {12 * kA, 20 * kA},  // reaches into the extent claimed before
  };
  const std::vector<absl::Status> r = a.MarkUsedMany(extents);
  ASSERT_EQ(r.size(), extents.size());
  EXPECT_TRUE(r[0].ok());
  EXPECT_TRUE(r[1].ok());
  EXPECT_EQ(r[2].code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r[3].code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(r[4].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r[5].code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(r[6].ok());
  EXPECT_EQ(r[7].code(), absl::StatusCode::kAlreadyExists);
  AllocatorStats s = a.Stats();
  EXPECT_EQ(s.used_bytes, 8 * kA);
  EXPECT_EQ(s.extents, 4u);
  EXPECT_EQ(s.high_water_bytes, 31 * kA);
  // Free: [0, 2), [7, 8), [10, 30), [31, 32).
  EXPECT_EQ(s.free_ranges, 4u);
  EXPECT_EQ(s.largest_free_bytes, 20 * kA);
  // The free map is whole again: the largest gap is allocatable, a claimed
  // extent cannot be claimed twice, and freeing everything coalesces.
  auto big = a.Allocate(20 * kA);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->offset, 10 * kA);
  EXPECT_EQ(a.MarkUsed({2 * kA, kA}).code(), absl::StatusCode::kAlreadyExists);
  for (const Extent& e :
       {extents[0], extents[1], extents[6], *big, Extent{30 * kA, kA}}) {
    ASSERT_TRUE(a.Free(e).ok());
  }
  s = a.Stats();
  EXPECT_EQ(s.free_ranges, 1u);
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.high_water_bytes, 0u);
}

TEST(ExtentAllocatorTest, MarkUsedManyMatchesMarkUsedOnRandomExtents) {
  std::mt19937 rng(5);
  std::vector<Extent> extents;
  for (int i = 0; i < 2000; ++i) {
    extents.push_back({(rng() % 4000) * kA, (rng() % 8 + 1) * kA});
  }
  // One at a time, lower offsets first: the rule MarkUsedMany follows.
  std::vector<size_t> order(extents.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return extents[x].offset < extents[y].offset;
  });
  ExtentAllocator one(4004 * kA, kA);
  std::vector<bool> expected(extents.size());
  for (size_t i : order) expected[i] = one.MarkUsed(extents[i]).ok();
  ExtentAllocator many(4004 * kA, kA);
  const std::vector<absl::Status> r = many.MarkUsedMany(extents);
  for (size_t i = 0; i < extents.size(); ++i) {
    EXPECT_EQ(r[i].ok(), expected[i]) << i;
  }
  const AllocatorStats a = one.Stats();
  const AllocatorStats b = many.Stats();
  EXPECT_EQ(a.used_bytes, b.used_bytes);
  EXPECT_EQ(a.extents, b.extents);
  EXPECT_EQ(a.free_ranges, b.free_ranges);
  EXPECT_EQ(a.largest_free_bytes, b.largest_free_bytes);
  EXPECT_EQ(a.high_water_bytes, b.high_water_bytes);
}

}  // namespace
}  // namespace tensorpager::storage
