// The SDK's local cache against an in-memory backend: hits without
// fetches, eviction by the shared policy code, dirty write-back, handles
// that pin copies, host <-> device copies on a simulated GPU, pressure,
// access-report batching, and concurrent use.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/local_cache.h"
#include "client_sdk/testing/fake_device_runtime.h"
#include "storage/base/log.h"

namespace tensorpager::internal {
namespace {

using testing::FakeDeviceRuntime;

constexpr uint64_t kKiB = 1024;

std::string Pattern(uint64_t size, int seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// The server, reduced to a map; counts what crosses the "network".
class FakeBackend final : public CacheBackend {
 public:
  explicit FakeBackend(FakeDeviceRuntime* device) : device_(device) {}

  void Put(const std::string& id, std::string bytes,
           v1::RegionType type = v1::TENSOR_DATA, bool pinned = false) {
    std::lock_guard<std::mutex> lock(mu_);
    Stored& s = blocks_[id];
    s.bytes = std::move(bytes);
    s.info.set_namespace_("default");
    s.info.set_id(id);
    s.info.set_size_bytes(s.bytes.size());
    s.info.set_region_type(type);
    s.info.set_pinned(pinned);
  }
  std::string Bytes(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return blocks_[id].bytes;
  }
  int fetches() {
    std::lock_guard<std::mutex> lock(mu_);
    return fetches_;
  }
  int stores() {
    std::lock_guard<std::mutex> lock(mu_);
    return stores_;
  }
  void FailStores(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_stores_ = fail;
  }

  absl::StatusOr<v1::BlockInfo> FetchBlock(storage::BlockKeyView id,
                                           Placement where,
                                           AllocateFn allocate) override {
    v1::BlockInfo info;
    std::string bytes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = blocks_.find(std::string(id.id));
      if (it == blocks_.end()) {
        return absl::NotFoundError(absl::StrCat("block ", id.id));
      }
      ++fetches_;
      info = it->second.info;
      bytes = it->second.bytes;
    }
    absl::StatusOr<void*> dst = allocate(info);
    if (!dst.ok()) return dst.status();
    if (where.is_host()) {
      std::memcpy(*dst, bytes.data(), bytes.size());
    } else if (absl::Status s =
                   device_->Copy(where.device(), *dst, bytes.data(),
                                 bytes.size(), CopyDirection::kHostToDevice);
               !s.ok()) {
      return s;
    }
    return info;
  }

  absl::Status StoreBlock(storage::BlockKeyView id, Placement from,
                          const void* data, uint64_t size) override {
    std::string bytes(size, '\0');
    if (from.is_host()) {
      std::memcpy(bytes.data(), data, size);
    } else if (absl::Status s =
                   device_->Copy(from.device(), bytes.data(), data, size,
                                 CopyDirection::kDeviceToHost);
               !s.ok()) {
      return s;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_stores_) return absl::UnavailableError("server away");
    ++stores_;
    blocks_[std::string(id.id)].bytes = std::move(bytes);
    return absl::OkStatus();
  }

  absl::StatusOr<v1::BlockInfo> DescribeBlock(
      storage::BlockKeyView id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(std::string(id.id));
    if (it == blocks_.end()) return absl::NotFoundError("no such block");
    return it->second.info;
  }

 private:
  struct Stored {
    std::string bytes;
    v1::BlockInfo info;
  };
  FakeDeviceRuntime* device_;
  std::mutex mu_;
  std::map<std::string, Stored> blocks_;
  int fetches_ = 0;
  int stores_ = 0;
  bool fail_stores_ = false;
};

class LocalCacheTest : public ::testing::Test {
 protected:
  void Make(uint64_t host_budget, uint64_t gpu_budget,
            v1::Algorithm algorithm = v1::LRU, uint32_t report_batch = 1000) {
    CacheOptions o;
    o.host_budget_bytes = host_budget;
    o.gpu_budget_bytes = gpu_budget;
    o.algorithm = algorithm;
    cache_ = std::make_unique<LocalCache>(o, report_batch, device_, &streams_,
                                          &backend_, &log_);
  }

  std::string HostBytes(const BlockHandle& h) {
    return std::string(h.data_as<const char>(), h.size());
  }
  std::string DeviceBytes(const BlockHandle& h) {
    std::string out(h.size(), '\0');
    EXPECT_TRUE(device_
                    ->Copy(h.placement().device(), out.data(), h.data(),
                           h.size(), CopyDirection::kDeviceToHost)
                    .ok());
    return out;
  }

  std::shared_ptr<FakeDeviceRuntime> device_ =
      std::make_shared<FakeDeviceRuntime>(FakeDeviceRuntime::Options{});
  StreamPool streams_{device_, 2, 3, 64 * kKiB};
  FakeBackend backend_{device_.get()};
  base::Logger log_{[](absl::string_view) {}, "tensorpager-sdk"};
  std::unique_ptr<LocalCache> cache_;
};

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
