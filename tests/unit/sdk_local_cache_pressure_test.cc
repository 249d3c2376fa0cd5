// The SDK's local cache under memory pressure, its access reports to the
// server, and many threads at once under each eviction policy.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/unit/sdk_local_cache_fixture.h"

namespace tensorpager::internal {
namespace {

TEST_F(LocalCacheTest, GpuPressureShrinksTheDeviceCacheAndGivesMemoryBack) {
  Make(1 << 20, 8 * 64 * kKiB);
  for (int i = 0; i < 8; ++i)
    backend_.Put(absl::StrCat("b", i), Pattern(64 * kKiB, i));
  for (int i = 0; i < 8; ++i) {
    auto h =
        cache_->Acquire(absl::StrCat("b", i), Placement::Device(0),
                        i == 7 ? AccessMode::kReadWrite : AccessMode::kRead);
    ASSERT_TRUE(h.ok()) << h.status();
    if (i == 7) {
      const std::string stamp(64, 'D');
      ASSERT_TRUE(device_
                      ->Copy(0, h->data(), stamp.data(), 64,
                             CopyDirection::kHostToDevice)
                      .ok());
    }
  }
  EXPECT_EQ(device_->allocated_bytes(0), 8 * 64 * kKiB);

  cache_->ApplyPressure("gpu0", v1::HIGH);
  CacheStats s = cache_->Stats();
  EXPECT_LE(s.pools[1].resident_bytes, 4 * 64 * kKiB);
  EXPECT_EQ(s.pools[1].pressure, v1::HIGH);
  EXPECT_GE(s.pressure_evictions, 4u);
  EXPECT_LE(device_->allocated_bytes(0), 4 * 64 * kKiB)
      << "memory goes back to the device, not into spares";

  cache_->ApplyPressure("gpu0", v1::CRITICAL);
  s = cache_->Stats();
  EXPECT_EQ(s.pools[1].resident_bytes, 0u);
  EXPECT_EQ(device_->allocated_bytes(0), 0u);
  EXPECT_EQ(backend_.Bytes("b7").substr(0, 64), std::string(64, 'D'))
      << "the dirty block was written back before it went";
  auto refused = cache_->Acquire("b0", Placement::Device(0), AccessMode::kRead);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("CRITICAL"), std::string::npos)
      << refused.status();
  EXPECT_TRUE(cache_->Acquire("b0", Placement::Host(), AccessMode::kRead).ok())
      << "host memory is not under pressure";

  cache_->ApplyPressure("gpu0", v1::LOW);
  EXPECT_TRUE(
      cache_->Acquire("b0", Placement::Device(0), AccessMode::kRead).ok());
}

TEST_F(LocalCacheTest, PressureKeepsCopiesInUse) {
  Make(1 << 20, 4 * 64 * kKiB);
  for (int i = 0; i < 4; ++i)
    backend_.Put(absl::StrCat("b", i), Pattern(64 * kKiB, i));
  auto held = cache_->Acquire("b0", Placement::Device(0), AccessMode::kRead);
  ASSERT_TRUE(held.ok());
  for (int i = 1; i < 4; ++i) {
    ASSERT_TRUE(cache_
                    ->Acquire(absl::StrCat("b", i), Placement::Device(0),
                              AccessMode::kRead)
                    .ok());
  }
  cache_->ApplyPressure("gpu0", v1::CRITICAL);
  EXPECT_EQ(cache_->Stats().pools[1].resident_bytes, 64 * kKiB);
  EXPECT_EQ(DeviceBytes(*held), Pattern(64 * kKiB, 0));
}

TEST_F(LocalCacheTest, UnknownPressureResourcesAreIgnored) {
  Make(1 << 20, 1 << 20);
  cache_->ApplyPressure("gpu9", v1::CRITICAL);
  cache_->ApplyPressure("disk", v1::CRITICAL);
  for (const PoolStats& p : cache_->Stats().pools) {
    EXPECT_EQ(p.pressure, v1::LOW);
  }
}

TEST_F(LocalCacheTest, LocalAccessesAreCountedForTheServer) {
  Make(1 << 20, 1 << 20, v1::LRU, /*report_batch=*/5);
  backend_.Put("a", Pattern(1000, 1));
  backend_.Put("b", Pattern(1000, 2));
  // Misses are seen by the server already; only local accesses count.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        cache_->Acquire("a", Placement::Host(), AccessMode::kRead).ok());
  }
  ASSERT_TRUE(cache_->Acquire("b", Placement::Host(), AccessMode::kRead).ok());
  ASSERT_TRUE(cache_->Acquire("b", Placement::Host(), AccessMode::kRead).ok());
  ASSERT_TRUE(
      cache_->Acquire("b", Placement::Device(0), AccessMode::kRead).ok());
  std::vector<v1::AccessReport> out;
  // 3 + 2 local accesses fill the batch of 5: no waiting for the interval.
  cache_->TakeReports(absl::Hours(1), &out);
  std::map<std::string, uint32_t> counts;
  for (const v1::AccessReport& r : out) {
    EXPECT_EQ(r.namespace_(), "default");
    counts[r.id()] += r.count();
  }
  EXPECT_EQ(counts["a"], 3u);
  EXPECT_EQ(counts["b"], 2u);
  out.clear();
  cache_->TakeReports(absl::Milliseconds(1), &out);
  EXPECT_TRUE(out.empty());
}

TEST_F(LocalCacheTest, CountsOfDroppedBlocksAreStillReported) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(1000, 1));
  ASSERT_TRUE(cache_->Acquire("a", Placement::Host(), AccessMode::kRead).ok());
  ASSERT_TRUE(cache_->Acquire("a", Placement::Host(), AccessMode::kRead).ok());
  ASSERT_TRUE(cache_->Invalidate(storage::BlockKeyView("default", "a")).ok());
  std::vector<v1::AccessReport> out;
  cache_->TakeReports(absl::Milliseconds(1), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].count(), 1u);
}

TEST_F(LocalCacheTest, InvalidateRefusesWhileInUse) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(1000, 1));
  auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kRead);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(cache_->Invalidate(storage::BlockKeyView("default", "a")).code(),
            absl::StatusCode::kFailedPrecondition);
  h->Release();
  EXPECT_TRUE(cache_->Invalidate(storage::BlockKeyView("default", "a")).ok());
  EXPECT_EQ(cache_->Stats().pools[0].blocks, 0u);
}

class LocalCachePolicyTest
    : public LocalCacheTest,
      public ::testing::WithParamInterface<v1::Algorithm> {};

TEST_P(LocalCachePolicyTest, ManyThreadsSeeTheRightBytesUnderASmallBudget) {
  Make(6 * 64 * kKiB, 4 * 64 * kKiB, GetParam());
  constexpr int kBlocks = 24;
  std::vector<std::string> expected;
  for (int i = 0; i < kBlocks; ++i) {
    expected.push_back(Pattern(64 * kKiB, i));
    backend_.Put(absl::StrCat("b", i), expected.back());
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int n = 0; n < 150; ++n) {
        const int i = rng() % kBlocks;
        const Placement where =
            rng() % 3 == 0 ? Placement::Device(0) : Placement::Host();
        auto h =
            cache_->Acquire(absl::StrCat("b", i), where, AccessMode::kRead);
        if (!h.ok()) {
          // Every copy may be held by the other threads for a moment.
          if (h.status().code() != absl::StatusCode::kResourceExhausted) {
            ++failures;
          }
          continue;
        }
        const std::string got =
            where.is_host() ? HostBytes(*h) : DeviceBytes(*h);
        if (got != expected[i]) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const CacheStats s = cache_->Stats();
  EXPECT_LE(s.pools[0].resident_bytes, 6 * 64 * kKiB);
  EXPECT_LE(s.pools[1].resident_bytes, 4 * 64 * kKiB);
  EXPECT_GT(s.hits + s.local_transfers, 0u);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, LocalCachePolicyTest,
                         ::testing::Values(v1::LRU, v1::CLOCK, v1::ADAPTIVE),
                         [](const auto& info) {
                           return v1::Algorithm_Name(info.param);
                         });

}  // namespace
}  // namespace tensorpager::internal
