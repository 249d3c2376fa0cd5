// The SDK on a real CUDA device against a real tensorpagerd: tensors
// registered from device memory, Access placed on the GPU through the
// pipelined staging ring, host cache <-> GPU copies from page-locked
// memory, write-back of blocks changed on the GPU, GPU pressure giving
// memory back to the device, and usage reports with cudaMemGetInfo's
// figures. Skipped without a device (tests/gpu/run.sh sets TP_REQUIRE_GPU=1
// so that a missing device fails there).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_sdk/testing/manual_pressure_source.h"
#include "tests/gpu/gpu_test_env.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// Device memory owned by a test.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, bytes) != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

std::string FromDevice(const void* ptr, size_t bytes) {
  std::string out(bytes, '\0');
  EXPECT_EQ(cudaMemcpy(out.data(), ptr, bytes, cudaMemcpyDeviceToHost),
            cudaSuccess);
  return out;
}

class SdkGpuTest : public PagerTest {
 protected:
  void SetUp() override {
    TP_REQUIRE_GPU_OR_SKIP();
    StartServer({"--ram_budget=1GiB", "--max_swap_size=2GiB"});
  }

  std::unique_ptr<Client> Sdk(ClientOptions o = {}) {
    o.log_sink = [](absl::string_view) {};
    auto c = Client::Connect(server_->target(), std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
};

TEST_F(SdkGpuTest, RegisterFromDeviceAndAccessOnTheDevice) {
  auto sdk = Sdk();
  ASSERT_FALSE(sdk->host_mode());
  const std::string data = PatternBytes(9 * kMiB + 77, 5);
  DeviceBuffer src(data.size());
  ASSERT_NE(src.get(), nullptr);
  TP_CUDA_OK(
      cudaMemcpy(src.get(), data.data(), data.size(), cudaMemcpyHostToDevice));
  BlockSpec spec{"kv"};
  spec.size_bytes = data.size();
  spec.region_type = v1::KV_CACHE;
  auto reg = sdk->Register(spec, src.get(), Placement::Device(0));
  ASSERT_TRUE(reg.ok()) << reg.status();
  ExpectBytes("kv", data.size(), 5);

  auto h = sdk->Access("kv", Placement::Device(0));
  ASSERT_TRUE(h.ok()) << h.status();
  cudaPointerAttributes attr{};
  TP_CUDA_OK(cudaPointerGetAttributes(&attr, h->data()));
  EXPECT_EQ(attr.type, cudaMemoryTypeDevice);
  EXPECT_EQ(attr.device, 0);
  EXPECT_TRUE(FromDevice(h->data(), h->size()) == data);
  EXPECT_EQ(sdk->LocalStats().pools[0].resident_bytes, 0u)
      << "fetched straight to the GPU, no host copy";
}

TEST_F(SdkGpuTest, HostCacheIsPageLockedAndFeedsTheDevice) {
  auto sdk = Sdk();
  Put("w", 4 * kMiB, 8);
  {
    auto h = sdk->Access("w");
    ASSERT_TRUE(h.ok());
    cudaPointerAttributes attr{};
    TP_CUDA_OK(cudaPointerGetAttributes(&attr, h->data()));
    EXPECT_EQ(attr.type, cudaMemoryTypeHost) << "host cache must be pinned";
  }
  {
    auto d = sdk->Access("w", Placement::Device(0), AccessMode::kReadWrite);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(d->local());
    EXPECT_TRUE(FromDevice(d->data(), d->size()) == PatternBytes(4 * kMiB, 8));
    TP_CUDA_OK(cudaMemset(d->data_as<char>() + kMiB, 0x7E, 4096));
  }
  {
    auto h = sdk->Access("w");  // device -> host copy, no RPC
    ASSERT_TRUE(h.ok());
    EXPECT_TRUE(h->local());
    EXPECT_EQ(std::string(h->data_as<char>() + kMiB, 4096),
              std::string(4096, '\x7E'));
  }
  ASSERT_TRUE(sdk->Evict("w").ok());
  auto r = client_->Read("w");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data.substr(kMiB, 4096), std::string(4096, '\x7E'));
  const CacheStats s = sdk->LocalStats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.bytes_host_to_device, 4 * kMiB);
  EXPECT_EQ(s.bytes_device_to_host, 4 * kMiB);
  EXPECT_EQ(s.write_backs, 1u);
}

TEST_F(SdkGpuTest, GpuPressureGivesMemoryBackToTheDevice) {
  auto pressure = std::make_shared<ManualPressureSource>();
  ClientOptions o;
  o.pressure_source = pressure;
  o.cache.gpu_budget_bytes = 512 * kMiB;
  auto sdk = Sdk(o);
  for (int i = 0; i < 64; ++i) Put(absl::StrCat("b", i), 4 * kMiB, i);
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(sdk->Access(absl::StrCat("b", i), Placement::Device(0)).ok());
  }
  size_t free_before = 0, total = 0;
  TP_CUDA_OK(cudaMemGetInfo(&free_before, &total));
  ASSERT_TRUE(pressure->Publish("gpu0", v1::CRITICAL).ok());
  size_t free_after = 0;
  TP_CUDA_OK(cudaMemGetInfo(&free_after, &total));
  EXPECT_GE(free_after, free_before + 250 * kMiB)
      << "the 256 MiB of dropped copies must be cudaFree'd";
  EXPECT_EQ(sdk->LocalStats().pools[1].resident_bytes, 0u);
  ASSERT_TRUE(pressure->Publish("gpu0", v1::LOW).ok());
  EXPECT_TRUE(sdk->Access("b0", Placement::Device(0)).ok());
}

TEST_F(SdkGpuTest, UsageReportCarriesCudaMemGetInfo) {
  ClientOptions o;
  o.client_id = "gpu-usage";
  o.reporting.usage_interval = absl::Milliseconds(50);
  auto sdk = Sdk(o);
  Put("a", 8 * kMiB, 1);
  ASSERT_TRUE(sdk->Access("a", Placement::Device(0)).ok());
  size_t free_bytes = 0, total = 0;
  TP_CUDA_OK(cudaMemGetInfo(&free_bytes, &total));
  bool seen = false;
  for (int i = 0; i < 300 && !seen; ++i) {
    auto st = client_->Status();
    ASSERT_TRUE(st.ok());
    for (const v1::ClientUsage& c : st->clients()) {
      if (c.client_id() == "gpu-usage" && c.gpus_size() > 0 &&
          c.gpus(0).cached_bytes() >= 8 * kMiB) {
        EXPECT_EQ(c.gpus(0).total_bytes(), total);
        EXPECT_GT(c.gpus(0).used_bytes(), 0u);
        seen = true;
      }
    }
    if (!seen) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(seen);
}

TEST_F(SdkGpuTest, ConcurrentDeviceAccessesSeeTheRightBytes) {
  ClientOptions o;
  o.cache.gpu_budget_bytes = 64 * kMiB;  // 16 of the 32 blocks
  auto sdk = Sdk(o);
  constexpr int kBlocks = 32;
  for (int i = 0; i < kBlocks; ++i) Put(absl::StrCat("c", i), 4 * kMiB, i);
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 12; ++n) {
        const int i = (t * 5 + n * 3) % kBlocks;
        auto h = sdk->Access(absl::StrCat("c", i), Placement::Device(0));
        if (!h.ok()) {
          ++failed;
          continue;
        }
        if (FromDevice(h->data(), h->size()) != PatternBytes(4 * kMiB, i)) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
}

}  // namespace
}  // namespace tensorpager::testing
