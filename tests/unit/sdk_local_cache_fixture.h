// The local cache's test fixture: an in-memory backend that counts what
// the cache fetches, stores and reports, and a cache over it with a
// simulated GPU (sdk_local_cache_test.cc, sdk_local_cache_pressure_test.cc).
#ifndef TENSORPAGER_TESTS_UNIT_SDK_LOCAL_CACHE_FIXTURE_H_
#define TENSORPAGER_TESTS_UNIT_SDK_LOCAL_CACHE_FIXTURE_H_

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

using testing::FakeDeviceRuntime;

inline constexpr uint64_t kKiB = 1024;

inline std::string Pattern(uint64_t size, int seed) {
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

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_TESTS_UNIT_SDK_LOCAL_CACHE_FIXTURE_H_
