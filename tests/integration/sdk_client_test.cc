// The SDK against a real tensorpagerd on loopback: host-mode round trips,
// the local cache's hit/miss accounting, dirty write-back, coherence with
// the direct RPCs, batched access reports and usage reports in the
// server's Status, eviction on (injected) GPU pressure with a simulated
// GPU, and many threads sharing one Client.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_sdk/testing/fake_device_runtime.h"
#include "client_sdk/testing/manual_pressure_source.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * 1024;

// Polls `done` until it holds or `timeout` passes (background reports).
template <typename Fn>
bool Eventually(Fn done, absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

class SdkClientTest : public PagerTest {
 protected:
  void SetUp() override {
    StartServer({"--ram_budget=256MiB", "--max_swap_size=1GiB"});
  }

  // A second client with the SDK options under test; its log is kept.
  std::unique_ptr<Client> Sdk(ClientOptions o = {}) {
    o.log_sink = log_.Sink();
    auto c = Client::Connect(server_->target(), std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  int LogLinesWith(absl::string_view text) { return log_.LinesWith(text); }

  static std::string HostBytes(const BlockHandle& h) {
    return std::string(h.data_as<const char>(), h.size());
  }

  SdkLogCapture log_;
};

TEST_F(SdkClientTest, HostRoundTripAndLocalHitAccounting) {
  auto sdk = Sdk();
  const std::string data = PatternBytes(3 * kMiB, 1);
  BlockSpec spec{"weights"};
  spec.size_bytes = data.size();
  spec.region_type = v1::WEIGHT;
  spec.dtype = v1::BFLOAT16;
  spec.shape = {3, static_cast<int64_t>(kMiB / 2)};
  auto reg = sdk->Register(spec, data.data(), Placement::Host());
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->tier(), v1::TIER_RAM);
  {
    auto h = sdk->Access("weights");
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_FALSE(h->local());
    EXPECT_EQ(h->placement(), Placement::Host());
    EXPECT_TRUE(HostBytes(*h) == data);
  }
  for (int i = 0; i < 3; ++i) {
    auto h = sdk->Access("weights");
    ASSERT_TRUE(h.ok());
    EXPECT_TRUE(h->local());
    EXPECT_TRUE(HostBytes(*h) == data);
  }
  const CacheStats s = sdk->LocalStats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 3u);
  EXPECT_EQ(s.bytes_fetched, data.size());
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.75);
  // Local hits cost no Access RPC: the server saw exactly one.
  auto st = sdk->Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->efficiency().accesses(), 1u);
  // The direct RPC layer still works beside the cache.
  ExpectBytes("weights", data.size(), 1);
}

TEST_F(SdkClientTest, HostModeRefusesDevicePlacementsAndSaysSoOnce) {
  ClientOptions o;
  o.device_runtime = HostOnlyDeviceRuntime("no GPU on this test machine");
  auto sdk = Sdk(o);
  Put("a", 4096, 1);
  EXPECT_TRUE(sdk->host_mode());
  for (int i = 0; i < 2; ++i) {
    auto h = sdk->Access("a", Placement::Device(0));
    EXPECT_EQ(h.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(h.status().message(), "host mode"))
        << h.status();
  }
  const std::string dev(16, 'x');
  BlockSpec spec{"from-gpu"};
  spec.size_bytes = dev.size();
  auto reg = sdk->Register(spec, dev.data(), Placement::Device(0));
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(sdk->Access("a").ok());
  EXPECT_EQ(LogLinesWith("host mode"), 1);
  EXPECT_EQ(LogLinesWith("no GPU on this test machine"), 1);
}

TEST_F(SdkClientTest, ServerErrorCodesArePreserved) {
  auto sdk = Sdk();
  auto missing = sdk->Access("never-registered");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(sdk->Register(BlockSpec{"empty", 4096}).ok());
  auto empty = sdk->Access("empty");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(empty.status().message(), "never written"))
      << empty.status();
  auto bad = sdk->Access(BlockName("", std::string(300, 'x')));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  const CacheStats s = sdk->LocalStats();
  EXPECT_EQ(s.pools[0].resident_bytes, 0u) << "failed fetches hold nothing";
}

TEST_F(SdkClientTest, WriteOnlyHandleFillsANeverWrittenBlock) {
  auto sdk = Sdk();
  ASSERT_TRUE(sdk->Register(BlockSpec{"fresh", 64 * kKiB}).ok());
  {
    auto h = sdk->Access("fresh", Placement::Host(), AccessMode::kWriteOnly);
    ASSERT_TRUE(h.ok()) << h.status();
    std::memset(h->data(), 'w', h->size());
  }
  ASSERT_TRUE(sdk->Flush().ok());
  auto r = client_->Read("fresh");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data, std::string(64 * kKiB, 'w'));
}

TEST_F(SdkClientTest, DirtyBlockIsWrittenBackWhenEvicted) {
  ClientOptions o;
  o.cache.host_budget_bytes = 2 * kMiB;  // two 1 MiB blocks
  auto sdk = Sdk(o);
  for (int i = 0; i < 3; ++i) Put(absl::StrCat("b", i), kMiB, i);
  {
    auto h = sdk->Access("b0", Placement::Host(), AccessMode::kReadWrite);
    ASSERT_TRUE(h.ok());
    std::memset(h->data(), 'Z', 4096);
  }
  // Still only local: the server has the old bytes.
  auto before = client_->Get("b0");
  ASSERT_TRUE(before.ok());
  const uint64_t version = before->version();
  ASSERT_TRUE(sdk->Access("b1").ok());
  ASSERT_TRUE(sdk->Access("b2").ok());  // evicts b0, the LRU
  const CacheStats s = sdk->LocalStats();
  EXPECT_EQ(s.write_backs, 1u);
  EXPECT_EQ(s.bytes_written_back, kMiB);
  EXPECT_GE(s.evictions, 1u);
  std::string expect = PatternBytes(kMiB, 0);
  std::memset(expect.data(), 'Z', 4096);
  auto r = client_->Read("b0");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->data == expect);
  EXPECT_GT(r->block.version(), version);
}

TEST_F(SdkClientTest, CloseWritesBackDirtyBlocks) {
  auto sdk = Sdk();
  Put("a", 256 * kKiB, 3);
  {
    auto h = sdk->Access("a", Placement::Host(), AccessMode::kReadWrite);
    ASSERT_TRUE(h.ok());
    h->data_as<char>()[100] = '#';
  }
  ASSERT_TRUE(sdk->Close().ok());
  auto r = client_->Read("a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data[100], '#');
}

TEST_F(SdkClientTest, DirectRpcsStayCoherentWithTheLocalCache) {
  auto sdk = Sdk();
  Put("a", 64 * kKiB, 1);
  // A read through the cache, then a write through the RPC layer: the
  // stale local copy must not be served again.
  ASSERT_TRUE(sdk->Access("a").ok());
  ASSERT_TRUE(sdk->Write("a", PatternBytes(64 * kKiB, 2)).ok());
  {
    auto h = sdk->Access("a");
    ASSERT_TRUE(h.ok());
    EXPECT_FALSE(h->local());
    EXPECT_TRUE(HostBytes(*h) == PatternBytes(64 * kKiB, 2));
  }
  // A dirty local copy is written back before a direct Read.
  {
    auto h = sdk->Access("a", Placement::Host(), AccessMode::kReadWrite);
    ASSERT_TRUE(h.ok());
    h->data_as<char>()[0] = '@';
  }
  auto r = sdk->Read("a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data[0], '@');
  // A partial write lands on top of the written-back bytes.
  {
    auto h = sdk->Access("a", Placement::Host(), AccessMode::kReadWrite);
    ASSERT_TRUE(h.ok());
    h->data_as<char>()[1] = '%';
  }
  ASSERT_TRUE(sdk->Write("a", "!!", 10).ok());
  auto r2 = client_->Read("a");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->data.substr(0, 2), "@%");
  EXPECT_EQ(r2->data.substr(10, 2), "!!");
}

TEST_F(SdkClientTest, UnregisterDropsLocalCopiesButNotUnderAHandle) {
  auto sdk = Sdk();
  Put("a", 64 * kKiB, 1);
  auto h = sdk->Access("a");
  ASSERT_TRUE(h.ok());
  auto refused = sdk->Unregister("a");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(client_->Get("a").ok()) << "nothing changed on the server";
  h->Release();
  ASSERT_TRUE(sdk->Unregister("a").ok());
  EXPECT_EQ(sdk->LocalStats().pools[0].blocks, 0u);
  EXPECT_EQ(sdk->Access("a").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SdkClientTest, PrefetchMakesTheNextAccessLocal) {
  auto sdk = Sdk();
  for (int i = 0; i < 4; ++i) Put(absl::StrCat("p", i), 512 * kKiB, i);
  std::vector<std::future<absl::Status>> done;
  for (int i = 0; i < 4; ++i)
    done.push_back(sdk->Prefetch(absl::StrCat("p", i)));
  for (auto& f : done) ASSERT_TRUE(f.get().ok());
  EXPECT_EQ(sdk->Prefetch("missing").get().code(), absl::StatusCode::kNotFound);
  for (int i = 0; i < 4; ++i) {
    auto h = sdk->Access(absl::StrCat("p", i));
    ASSERT_TRUE(h.ok());
    EXPECT_TRUE(h->local());
    EXPECT_TRUE(HostBytes(*h) == PatternBytes(512 * kKiB, i));
  }
  const CacheStats s = sdk->LocalStats();
  EXPECT_EQ(s.prefetches, 4u);
  EXPECT_EQ(s.hits, 4u);
  EXPECT_EQ(s.misses, 0u) << "prefetches are not accesses";
}

TEST_F(SdkClientTest, PinnedBlockStaysInTheLocalCache) {
  ClientOptions o;
  o.cache.host_budget_bytes = 2 * kMiB;
  auto sdk = Sdk(o);
  for (int i = 0; i < 4; ++i) Put(absl::StrCat("b", i), kMiB, i);
  ASSERT_TRUE(sdk->Access("b0").ok());
  auto pinned = sdk->Pin("b0");
  ASSERT_TRUE(pinned.ok());
  EXPECT_TRUE(pinned->pinned());
  for (int i = 1; i < 4; ++i)
    ASSERT_TRUE(sdk->Access(absl::StrCat("b", i)).ok());
  auto h = sdk->Access("b0");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->local());
}

TEST_F(SdkClientTest, LocalAccessesReachTheServerInBatches) {
  ClientOptions o;
  o.reporting.access_interval = absl::Milliseconds(50);
  o.reporting.access_batch = 64;
  auto sdk = Sdk(o);
  for (int i = 0; i < 10; ++i) Put(absl::StrCat("r", i), 4096, i);
  for (int round = 0; round < 11; ++round) {
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(sdk->Access(absl::StrCat("r", i)).ok());
    }
  }
  // 110 accesses: 10 misses the server served, 100 local hits to report.
  EXPECT_EQ(sdk->LocalStats().hits, 100u);
  uint64_t reported = 0;
  EXPECT_TRUE(Eventually([&] {
    auto st = client_->Status();
    reported = st.ok() ? st->efficiency().accesses_reported() : 0;
    return reported >= 100;
  })) << "server saw "
      << reported << " reported accesses";
  EXPECT_EQ(reported, 100u);
  // The SDK counts a report once the server's answer is back.
  EXPECT_TRUE(
      Eventually([&] { return sdk->LocalStats().accesses_reported == 100u; }));
  // The server's policy saw them: access counts went up.
  auto info = client_->Get("r3");
  ASSERT_TRUE(info.ok());
  EXPECT_GE(info->access_count(), 11u);
}

TEST_F(SdkClientTest, GpuUsageIsReportedToTheServer) {
  auto gpu = std::make_shared<FakeDeviceRuntime>(
      FakeDeviceRuntime::Options{.devices = 1, .memory_bytes = 1ull << 30});
  gpu->SetExternalUse(0, 300 * kMiB);
  ClientOptions o;
  o.client_id = "sdk-usage-test";
  o.device_runtime = gpu;
  o.reporting.usage_interval = absl::Milliseconds(50);
  auto sdk = Sdk(o);
  Put("a", 2 * kMiB, 1);
  ASSERT_TRUE(sdk->Access("a", Placement::Device(0)).ok());
  v1::ClientUsage seen;
  EXPECT_TRUE(Eventually([&] {
    auto st = client_->Status();
    if (!st.ok()) return false;
    for (const v1::ClientUsage& c : st->clients()) {
      if (c.client_id() == "sdk-usage-test" && c.gpus_size() == 1 &&
          c.gpus(0).cached_bytes() >= 2 * kMiB) {
        seen = c;
        return true;
      }
    }
    return false;
  })) << "no usage report with the cached block in the server's Status";
  ASSERT_EQ(seen.gpus_size(), 1);
  EXPECT_EQ(seen.gpus(0).device(), 0u);
  EXPECT_EQ(seen.gpus(0).total_bytes(), 1ull << 30);
  EXPECT_GE(seen.gpus(0).used_bytes(), 302 * kMiB);
}

// A simulated GPU and an injected pressure stream: the SDK must drop clean
// GPU copies, write back dirty ones and give the memory back.
TEST_F(SdkClientTest, GpuPressureEventDropsLocalGpuCopies) {
  auto gpu = std::make_shared<FakeDeviceRuntime>(
      FakeDeviceRuntime::Options{.devices = 1, .memory_bytes = 1ull << 30});
  auto pressure = std::make_shared<ManualPressureSource>();
  ClientOptions o;
  o.device_runtime = gpu;
  o.pressure_source = pressure;
  o.cache.gpu_budget_bytes = 8 * kMiB;
  auto sdk = Sdk(o);
  for (int i = 0; i < 8; ++i) Put(absl::StrCat("kv", i), kMiB, i);
  for (int i = 0; i < 8; ++i) {
    auto h = sdk->Access(absl::StrCat("kv", i), Placement::Device(0),
                         i == 7 ? AccessMode::kReadWrite : AccessMode::kRead);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(gpu->IsDeviceMemory(0, h->data()));
    if (i == 7) {
      const std::string stamp(4096, 'G');
      ASSERT_TRUE(gpu->Copy(0, h->data(), stamp.data(), stamp.size(),
                            CopyDirection::kHostToDevice)
                      .ok());
    }
  }
  EXPECT_EQ(sdk->LocalStats().pools[1].resident_bytes, 8 * kMiB);

  ASSERT_TRUE(pressure->Publish("gpu0", v1::HIGH).ok());
  CacheStats s = sdk->LocalStats();
  EXPECT_EQ(s.pools[1].pressure, v1::HIGH);
  EXPECT_LE(s.pools[1].resident_bytes, 4 * kMiB);
  EXPECT_LE(gpu->allocated_bytes(0), 4 * kMiB + 4 * kMiB)
      << "dropped copies' memory must go back (staging aside)";

  ASSERT_TRUE(pressure->Publish("gpu0", v1::CRITICAL).ok());
  s = sdk->LocalStats();
  EXPECT_EQ(s.pools[1].resident_bytes, 0u);
  EXPECT_EQ(s.pools[1].spare_bytes, 0u);
  EXPECT_GE(s.pressure_evictions, 8u);
  EXPECT_EQ(s.write_backs, 1u) << "only the dirty block is written";
  auto r = client_->Read("kv7");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data.substr(0, 4096), std::string(4096, 'G'));
  EXPECT_TRUE(r->data.substr(4096) == PatternBytes(kMiB, 7).substr(4096));
  auto refused = sdk->Access("kv0", Placement::Device(0));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(sdk->Access("kv0", Placement::Host()).ok());

  ASSERT_TRUE(pressure->Publish("gpu0", v1::LOW).ok());
  EXPECT_TRUE(sdk->Access("kv0", Placement::Device(0)).ok());
  EXPECT_EQ(LogLinesWith("CRITICAL"), 1);
}

// The same reaction driven end to end: the server raises gpu0's level from
// another client's usage report and the SDK hears it on its WatchPressure
// stream (the default pressure source), not through an injected source.
TEST_F(SdkClientTest, ServerPressureStreamReachesTheLocalCache) {
  auto gpu = std::make_shared<FakeDeviceRuntime>(
      FakeDeviceRuntime::Options{.devices = 1, .memory_bytes = 1ull << 30});
  ClientOptions o;
  o.device_runtime = gpu;
  o.cache.gpu_budget_bytes = 8 * kMiB;
  auto sdk = Sdk(o);
  for (int i = 0; i < 4; ++i) Put(absl::StrCat("kv", i), kMiB, i);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(sdk->Access(absl::StrCat("kv", i), Placement::Device(0)).ok());
  }
  ASSERT_EQ(sdk->LocalStats().pools[1].resident_bytes, 4 * kMiB);

  auto stub = v1::TensorPager::NewStub(client_->channel());
  auto report = [&](uint64_t used_gib) {
    grpc::ClientContext ctx;
    v1::ReportClientUsageRequest usage;
    usage.set_client_id("another-worker");
    auto* g = usage.add_gpus();
    g->set_device(0);
    g->set_used_bytes(used_gib << 30);
    g->set_total_bytes(80ull << 30);
    v1::ReportClientUsageResponse resp;
    return stub->ReportClientUsage(&ctx, usage, &resp).ok();
  };
  ASSERT_TRUE(report(79));
  EXPECT_TRUE(Eventually([&] {
    const CacheStats s = sdk->LocalStats();
    return s.pools[1].pressure == v1::CRITICAL &&
           s.pools[1].resident_bytes == 0;
  })) << "gpu0 CRITICAL never reached the SDK's local cache";
  EXPECT_GE(sdk->LocalStats().pressure_evictions, 4u);
  // The SDK logs the change from the thread that follows the stream, which
  // may still be writing the line when the cache already shows it.
  EXPECT_TRUE(Eventually([&] { return LogLinesWith("CRITICAL") >= 1; }));
  EXPECT_EQ(sdk->Access("kv0", Placement::Device(0)).status().code(),
            absl::StatusCode::kResourceExhausted);

  ASSERT_TRUE(report(1));
  EXPECT_TRUE(Eventually(
      [&] { return sdk->LocalStats().pools[1].pressure == v1::LOW; }));
  EXPECT_TRUE(sdk->Access("kv0", Placement::Device(0)).ok());
}

// Tensors registered straight from (simulated) device memory and accessed
// back onto the device go through the pipelined staging ring in many
// chunks; a block changed on the device is written back from it.
TEST_F(SdkClientTest, DeviceRoundTripThroughTheStagingPipeline) {
  auto gpu = std::make_shared<FakeDeviceRuntime>(
      FakeDeviceRuntime::Options{.devices = 2, .memory_bytes = 1ull << 30});
  ClientOptions o;
  o.device_runtime = gpu;
  o.transfer.chunk_bytes = 256 * kKiB;
  o.transfer.staging_buffers = 3;
  auto sdk = Sdk(o);
  const std::string data = PatternBytes(5 * kMiB + 123, 9);
  auto src = gpu->AllocDevice(1, data.size());
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE(
      gpu->Copy(1, *src, data.data(), data.size(), CopyDirection::kHostToDevice)
          .ok());
  BlockSpec spec{"kv-layer0"};
  spec.size_bytes = data.size();
  spec.region_type = v1::KV_CACHE;
  ASSERT_TRUE(sdk->Register(spec, *src, Placement::Device(1)).ok());
  gpu->FreeDevice(1, *src);
  ExpectBytes("kv-layer0", data.size(), 9);

  auto read_device = [&](const BlockHandle& h) {
    std::string out(h.size(), '\0');
    EXPECT_TRUE(gpu->Copy(h.placement().device(), out.data(), h.data(),
                          h.size(), CopyDirection::kDeviceToHost)
                    .ok());
    return out;
  };
  {
    auto h =
        sdk->Access("kv-layer0", Placement::Device(0), AccessMode::kReadWrite);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(read_device(*h) == data);
    const std::string stamp(1000, 'd');
    ASSERT_TRUE(gpu->Copy(0, h->data_as<char>() + 2 * kMiB, stamp.data(),
                          stamp.size(), CopyDirection::kHostToDevice)
                    .ok());
  }
  {
    // Device 0 -> device 1, no RPC.
    auto h = sdk->Access("kv-layer0", Placement::Device(1));
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(h->local());
    EXPECT_EQ(read_device(*h).substr(2 * kMiB, 1000), std::string(1000, 'd'));
  }
  ASSERT_TRUE(sdk->Evict("kv-layer0").ok());
  std::string expect = data;
  expect.replace(2 * kMiB, 1000, std::string(1000, 'd'));
  auto r = client_->Read("kv-layer0");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->data == expect);
  // Device bytes crossed the shared-memory ring too (staged through pinned
  // buffers): the write from device 1, the fetch to device 0 and the
  // write-back.
  if (LogLinesWith("shared-memory data path on") > 0) {
    EXPECT_EQ(sdk->LocalStats().shared_memory_ring_transfers, 3u);
  }
  EXPECT_EQ(sdk->LocalStats().misses, 1u);
}

TEST_F(SdkClientTest, ManyThreadsShareOneClient) {
  auto gpu = std::make_shared<FakeDeviceRuntime>(
      FakeDeviceRuntime::Options{.devices = 1, .memory_bytes = 1ull << 30});
  ClientOptions o;
  o.device_runtime = gpu;
  o.cache.host_budget_bytes = 2 * kMiB;  // 8 of the 40 blocks
  o.cache.gpu_budget_bytes = 1 * kMiB;
  o.reporting.access_interval = absl::Milliseconds(20);
  auto sdk = Sdk(o);
  constexpr int kThreads = 8;
  constexpr int kOwned = 4;   // blocks each thread writes
  constexpr int kShared = 8;  // read-only blocks everyone reads
  constexpr uint64_t kSize = 256 * kKiB;
  for (int i = 0; i < kShared; ++i) Put(absl::StrCat("shared", i), kSize, i);
  for (int t = 0; t < kThreads; ++t) {
    for (int j = 0; j < kOwned; ++j) {
      Put(absl::StrCat("own", t, "-", j), kSize, 100 + t * kOwned + j);
    }
  }
  std::atomic<int> wrong{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      // Each owned block's first 8 bytes count the writes to it.
      uint64_t writes[kOwned] = {};
      for (int n = 0; n < 60; ++n) {
        const int op = rng() % 4;
        const Placement where =
            rng() % 4 == 0 ? Placement::Device(0) : Placement::Host();
        auto check = [&](const BlockHandle& h, const std::string& expect) {
          std::string got(h.size(), '\0');
          if (where.is_host()) {
            std::memcpy(got.data(), h.data(), h.size());
          } else if (!gpu->Copy(0, got.data(), h.data(), h.size(),
                                CopyDirection::kDeviceToHost)
                          .ok()) {
            ++errors;
          }
          if (got != expect) ++wrong;
        };
        absl::StatusCode code = absl::StatusCode::kOk;
        if (op == 0) {
          const int i = rng() % kShared;
          auto h = sdk->Access(absl::StrCat("shared", i), where);
          if (h.ok()) check(*h, PatternBytes(kSize, i));
          code = h.status().code();
        } else {
          const int j = rng() % kOwned;
          const std::string id = absl::StrCat("own", t, "-", j);
          std::string expect = PatternBytes(kSize, 100 + t * kOwned + j);
          if (writes[j] > 0) std::memcpy(expect.data(), &writes[j], 8);
          if (op == 1) {
            auto h = sdk->Access(id, where);
            if (h.ok()) check(*h, expect);
            code = h.status().code();
          } else if (op == 2) {
            auto r = sdk->Read(id);
            if (r.ok() && r->data != expect) ++wrong;
            code = r.status().code();
          } else {
            auto h = sdk->Access(id, Placement::Host(), AccessMode::kReadWrite);
            if (h.ok()) {
              if (HostBytes(*h) != expect) ++wrong;
              ++writes[j];
              std::memcpy(h->data(), &writes[j], 8);
            }
            code = h.status().code();
          }
        }
        // Every local copy may be held by other threads for a moment.
        if (code != absl::StatusCode::kOk &&
            code != absl::StatusCode::kResourceExhausted) {
          ++errors;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  ASSERT_TRUE(sdk->Close().ok());
  const CacheStats s = sdk->LocalStats();
  EXPECT_LE(s.pools[0].resident_bytes, 2 * kMiB);
  EXPECT_LE(s.pools[1].resident_bytes, 1 * kMiB);
  EXPECT_GT(s.hits + s.local_transfers, 0u);
  EXPECT_GT(s.evictions, 0u);
}

}  // namespace
}  // namespace tensorpager::testing
