// The SDK's local cache against an in-memory backend: hits without
// fetches, eviction by the shared policy code, dirty write-back, handles
// that pin copies, names, and host <-> device copies on a simulated GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/unit/sdk_local_cache_fixture.h"

namespace tensorpager::internal {
namespace {

TEST_F(LocalCacheTest, SecondAccessIsALocalHitWithoutFetch) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(10000, 1));
  {
    auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kRead);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_FALSE(h->local());
    EXPECT_EQ(HostBytes(*h), Pattern(10000, 1));
  }
  auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kRead);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->local());
  EXPECT_EQ(HostBytes(*h), Pattern(10000, 1));
  EXPECT_EQ(backend_.fetches(), 1);
  const CacheStats s = cache_->Stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.bytes_fetched, 10000u);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.5);
}

TEST_F(LocalCacheTest, UnknownBlockKeepsTheServersCode) {
  Make(1 << 20, 1 << 20);
  auto h = cache_->Acquire("nope", Placement::Host(), AccessMode::kRead);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache_->Stats().pools[0].resident_bytes, 0u);
}

TEST_F(LocalCacheTest, BudgetEvictsTheLeastRecentlyUsedBlock) {
  Make(4 * 64 * kKiB, 1 << 20);  // room for four 64 KiB blocks
  for (int i = 0; i < 5; ++i)
    backend_.Put(absl::StrCat("b", i), Pattern(64 * kKiB, i));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(cache_
                    ->Acquire(absl::StrCat("b", i), Placement::Host(),
                              AccessMode::kRead)
                    .ok());
  }
  // b0 becomes the most recent; b1 is the LRU victim when b4 arrives.
  ASSERT_TRUE(cache_->Acquire("b0", Placement::Host(), AccessMode::kRead).ok());
  ASSERT_TRUE(cache_->Acquire("b4", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.fetches(), 5);
  ASSERT_TRUE(cache_->Acquire("b0", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.fetches(), 5) << "b0 must have stayed";
  ASSERT_TRUE(cache_->Acquire("b1", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.fetches(), 6) << "b1 must have been evicted";
  const CacheStats s = cache_->Stats();
  EXPECT_LE(s.pools[0].resident_bytes, 4 * 64 * kKiB);
  EXPECT_EQ(s.evictions, 2u);
  EXPECT_EQ(backend_.stores(), 0) << "clean blocks are dropped, not written";
}

TEST_F(LocalCacheTest, DirtyBlockIsWrittenBackBeforeItsCopyIsDropped) {
  Make(2 * 64 * kKiB, 1 << 20);
  for (int i = 0; i < 3; ++i)
    backend_.Put(absl::StrCat("b", i), Pattern(64 * kKiB, i));
  {
    auto h = cache_->Acquire("b0", Placement::Host(), AccessMode::kReadWrite);
    ASSERT_TRUE(h.ok());
    std::memset(h->data(), 0x5A, 100);
  }
  EXPECT_TRUE(cache_->IsDirty(storage::BlockKeyView("default", "b0")));
  ASSERT_TRUE(cache_->Acquire("b1", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.stores(), 0) << "nothing evicted yet";
  ASSERT_TRUE(cache_->Acquire("b2", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.stores(), 1);
  std::string expect = Pattern(64 * kKiB, 0);
  std::memset(expect.data(), 0x5A, 100);
  EXPECT_EQ(backend_.Bytes("b0"), expect);
  EXPECT_EQ(cache_->Stats().write_backs, 1u);
  EXPECT_FALSE(cache_->IsDirty(storage::BlockKeyView("default", "b0")));
}

TEST_F(LocalCacheTest, FailedWriteBackKeepsTheDirtyCopy) {
  Make(64 * kKiB, 1 << 20);
  backend_.Put("a", Pattern(64 * kKiB, 1));
  backend_.Put("b", Pattern(64 * kKiB, 2));
  {
    auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kReadWrite);
    ASSERT_TRUE(h.ok());
    h->data_as<char>()[0] = 'X';
  }
  backend_.FailStores(true);
  auto b = cache_->Acquire("b", Placement::Host(), AccessMode::kRead);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable) << b.status();
  EXPECT_TRUE(cache_->IsDirty(storage::BlockKeyView("default", "a")));
  backend_.FailStores(false);
  ASSERT_TRUE(cache_->Acquire("b", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.Bytes("a")[0], 'X');
}

TEST_F(LocalCacheTest, HandlesKeepCopiesInPlace) {
  Make(2 * 64 * kKiB, 1 << 20);
  for (int i = 0; i < 3; ++i)
    backend_.Put(absl::StrCat("b", i), Pattern(64 * kKiB, i));
  auto h0 = cache_->Acquire("b0", Placement::Host(), AccessMode::kRead);
  auto h1 = cache_->Acquire("b1", Placement::Host(), AccessMode::kRead);
  ASSERT_TRUE(h0.ok() && h1.ok());
  auto h2 = cache_->Acquire("b2", Placement::Host(), AccessMode::kRead);
  EXPECT_EQ(h2.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(h2.status().message().find("in use"), std::string::npos)
      << h2.status();
  EXPECT_EQ(HostBytes(*h0), Pattern(64 * kKiB, 0));
  h0->Release();
  EXPECT_TRUE(cache_->Acquire("b2", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(HostBytes(*h1), Pattern(64 * kKiB, 1));
}

TEST_F(LocalCacheTest, BlockLargerThanTheBudgetIsRefused) {
  Make(64 * kKiB, 1 << 20);
  backend_.Put("big", Pattern(100 * kKiB, 1));
  auto h = cache_->Acquire("big", Placement::Host(), AccessMode::kRead);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(h.status().message().find("budget"), std::string::npos);
}

TEST_F(LocalCacheTest, PinnedBlocksAreNotEvicted) {
  Make(2 * 64 * kKiB, 1 << 20);
  backend_.Put("p", Pattern(64 * kKiB, 1), v1::TENSOR_DATA, /*pinned=*/true);
  for (int i = 0; i < 4; ++i)
    backend_.Put(absl::StrCat("b", i), Pattern(64 * kKiB, i));
  ASSERT_TRUE(cache_->Acquire("p", Placement::Host(), AccessMode::kRead).ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(cache_
                    ->Acquire(absl::StrCat("b", i), Placement::Host(),
                              AccessMode::kRead)
                    .ok());
  }
  const int before = backend_.fetches();
  ASSERT_TRUE(cache_->Acquire("p", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.fetches(), before);
  cache_->SetPinned(storage::BlockKeyView("default", "p"), false);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(cache_
                    ->Acquire(absl::StrCat("b", i), Placement::Host(),
                              AccessMode::kRead)
                    .ok());
  }
  ASSERT_TRUE(cache_->Acquire("p", Placement::Host(), AccessMode::kRead).ok());
  EXPECT_EQ(backend_.fetches(), before + 3) << "unpinned, p was evicted";
}

TEST_F(LocalCacheTest, DevicePlacementWithoutDeviceIsFailedPrecondition) {
  CacheOptions o;
  cache_ = std::make_unique<LocalCache>(
      o, 100, HostOnlyDeviceRuntime("no GPU in this test"), &streams_,
      &backend_, &log_);
  backend_.Put("a", Pattern(100, 1));
  auto h = cache_->Acquire("a", Placement::Device(0), AccessMode::kRead);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(h.status().message().find("host mode"), std::string::npos);
  EXPECT_NE(h.status().message().find("no GPU in this test"),
            std::string::npos);
  EXPECT_EQ(backend_.fetches(), 0);
  EXPECT_TRUE(cache_->Acquire("a", Placement::Host(), AccessMode::kRead).ok());
}

TEST_F(LocalCacheTest, MissingDeviceOrdinalIsInvalidArgument) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(100, 1));
  auto h = cache_->Acquire("a", Placement::Device(3), AccessMode::kRead);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
}

// Names are checked with the server's rules and messages, before a fetch.
TEST_F(LocalCacheTest, BadNamesFailWithTheServersMessageBeforeAnyFetch) {
  Make(1 << 20, 0);
  const std::string long_id(storage::kMaxIdBytes + 1, 'a');
  backend_.Put(long_id, Pattern(100, 1));
  EXPECT_EQ(
      cache_->Acquire(long_id, Placement::Host(), AccessMode::kRead).status(),
      storage::ValidateBlockId(long_id));
  const std::string long_ns(storage::kMaxNamespaceBytes + 1, 'n');
  EXPECT_EQ(cache_->Load(BlockName(long_ns, "a"), Placement::Host()),
            storage::ValidateNamespace(long_ns));
  EXPECT_EQ(backend_.fetches(), 0);
}

TEST_F(LocalCacheTest, FetchesStraightOntoTheDevice) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(200 * kKiB, 7));
  auto h = cache_->Acquire("a", Placement::Device(0), AccessMode::kRead);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(device_->IsDeviceMemory(0, h->data()));
  EXPECT_EQ(DeviceBytes(*h), Pattern(200 * kKiB, 7));
  EXPECT_EQ(cache_->Stats().pools[0].resident_bytes, 0u)
      << "no host copy on the way";
}

TEST_F(LocalCacheTest, HostCopyServesDeviceAccessWithoutFetch) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(100 * kKiB, 3));
  ASSERT_TRUE(cache_->Acquire("a", Placement::Host(), AccessMode::kRead).ok());
  auto d = cache_->Acquire("a", Placement::Device(0), AccessMode::kRead);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->local());
  EXPECT_EQ(DeviceBytes(*d), Pattern(100 * kKiB, 3));
  EXPECT_EQ(backend_.fetches(), 1);
  const CacheStats s = cache_->Stats();
  EXPECT_EQ(s.local_transfers, 1u);
  EXPECT_EQ(s.bytes_host_to_device, 100 * kKiB);
}

TEST_F(LocalCacheTest,
       WritingOnTheDeviceDropsTheHostCopyAndWritesBackFromTheDevice) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(150 * kKiB, 4));
  ASSERT_TRUE(cache_->Acquire("a", Placement::Host(), AccessMode::kRead).ok());
  {
    auto d = cache_->Acquire("a", Placement::Device(0), AccessMode::kReadWrite);
    ASSERT_TRUE(d.ok()) << d.status();
    const std::string stamp(1000, 'Q');
    ASSERT_TRUE(device_
                    ->Copy(0, d->data(), stamp.data(), stamp.size(),
                           CopyDirection::kHostToDevice)
                    .ok());
  }
  EXPECT_EQ(cache_->Stats().pools[0].blocks, 0u) << "the host copy is stale";
  // Reading on the host again copies the device's bytes back, no fetch.
  {
    auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kRead);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(HostBytes(*h).substr(0, 1000), std::string(1000, 'Q'));
  }
  ASSERT_TRUE(
      cache_->Evict(storage::BlockKeyView("default", "a"), std::nullopt).ok());
  std::string expect = Pattern(150 * kKiB, 4);
  expect.replace(0, 1000, std::string(1000, 'Q'));
  EXPECT_EQ(backend_.Bytes("a"), expect);
  EXPECT_EQ(backend_.fetches(), 1);
}

TEST_F(LocalCacheTest, WriteOnlyNeedsNoFetchAndStartsZeroed) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(64 * kKiB, 4));
  {
    auto d = cache_->Acquire("a", Placement::Device(0), AccessMode::kWriteOnly);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(DeviceBytes(*d), std::string(64 * kKiB, '\0'));
  }
  EXPECT_EQ(backend_.fetches(), 0);
  ASSERT_TRUE(cache_->FlushAll().ok());
  EXPECT_EQ(backend_.Bytes("a"), std::string(64 * kKiB, '\0'));
}

TEST_F(LocalCacheTest, WritingIsRefusedWhileAnotherPlacementReads) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(64 * kKiB, 4));
  auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kRead);
  ASSERT_TRUE(h.ok());
  auto d = cache_->Acquire("a", Placement::Device(0), AccessMode::kReadWrite);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(HostBytes(*h), Pattern(64 * kKiB, 4));
}

TEST_F(LocalCacheTest, MarkDirtyUpgradesAReadHandle) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(64 * kKiB, 4));
  {
    auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kRead);
    ASSERT_TRUE(h.ok());
    h->data_as<char>()[5] = '!';
    ASSERT_TRUE(h->MarkDirty().ok());
    EXPECT_EQ(h->mode(), AccessMode::kReadWrite);
  }
  ASSERT_TRUE(cache_->FlushAll().ok());
  EXPECT_EQ(backend_.Bytes("a")[5], '!');
}

TEST_F(LocalCacheTest, FlushSkipsBlocksOpenForWriting) {
  Make(1 << 20, 1 << 20);
  backend_.Put("a", Pattern(64 * kKiB, 4));
  auto h = cache_->Acquire("a", Placement::Host(), AccessMode::kReadWrite);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(cache_->FlushAll().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(backend_.stores(), 0);
  h->Release();
  EXPECT_TRUE(cache_->FlushAll().ok());
  EXPECT_EQ(backend_.stores(), 1);
}

}  // namespace
}  // namespace tensorpager::internal
