// The staging pipelines between byte streams and device memory, on the
// simulated device: chunks that do not line up with the staging buffers,
// more chunks than buffers, and the size classes of the SDK's pools.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>

#include "client_sdk/src/buffer_pool.h"
#include "client_sdk/src/device_pipeline.h"
#include "client_sdk/src/stream_pool.h"
#include "client_sdk/testing/fake_device_runtime.h"

namespace tensorpager::internal {
namespace {

using testing::FakeDeviceRuntime;

std::string Pattern(uint64_t size, int seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class DevicePipelineTest : public ::testing::TestWithParam<uint64_t> {
 protected:
  std::shared_ptr<FakeDeviceRuntime> device_ =
      std::make_shared<FakeDeviceRuntime>(FakeDeviceRuntime::Options{});
  // Three 4 KiB staging buffers: most sizes below need many rounds.
  StreamPool streams_{device_, 2, 3, 4096};
};

TEST_P(DevicePipelineTest, UploadThenDownloadReturnsEveryByte) {
  const uint64_t size = GetParam();
  const std::string data = Pattern(size, static_cast<int>(size));
  absl::StatusOr<void*> mem = device_->AllocDevice(0, size);
  ASSERT_TRUE(mem.ok());
  {
    auto lease = streams_.Acquire(0);
    ASSERT_TRUE(lease.ok());
    DeviceUpload up(&**lease, *mem);
    // Network-sized pieces that straddle the staging buffers.
    uint64_t at = 0;
    const uint64_t piece = 5000;
    while (at < size) {
      const uint64_t n = std::min(piece, size - at);
      ASSERT_TRUE(up.Add(at, absl::string_view(data).substr(at, n)).ok());
      at += n;
    }
    ASSERT_TRUE(up.Finish().ok());
  }
  std::string back;
  {
    auto lease = streams_.Acquire(0);
    ASSERT_TRUE(lease.ok());
    DeviceDownload down(&**lease, *mem, size);
    for (;;) {
      auto chunk = down.Next();
      ASSERT_TRUE(chunk.ok()) << chunk.status();
      if (chunk->empty()) break;
      EXPECT_LE(chunk->size(), 4096u);
      back.append(chunk->data(), chunk->size());
    }
  }
  EXPECT_EQ(back.size(), size);
  EXPECT_TRUE(back == data);
  EXPECT_EQ(device_->copied_bytes(CopyDirection::kHostToDevice), size);
  EXPECT_EQ(device_->copied_bytes(CopyDirection::kDeviceToHost), size);
  device_->FreeDevice(0, *mem);
}

INSTANTIATE_TEST_SUITE_P(Sizes, DevicePipelineTest,
                         ::testing::Values(1, 4095, 4096, 12288, 12289,
                                           100000));

TEST(StreamPoolTest, ReusesStreamsAndRejectsMissingDevices) {
  auto device = std::make_shared<FakeDeviceRuntime>(
      FakeDeviceRuntime::Options{.devices = 1, .memory_bytes = 1 << 20});
  StreamPool pool(device, 1, 2, 4096);
  StagingStream* first = nullptr;
  {
    auto a = pool.Acquire(0);
    ASSERT_TRUE(a.ok());
    first = &**a;
  }
  auto b = pool.Acquire(0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(&**b, first);
  EXPECT_EQ(pool.Acquire(1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BufferPoolTest, SizeClassesGroupEqualBlocks) {
  EXPECT_EQ(BufferPool::ClassBytes(1), 4096u);
  EXPECT_EQ(BufferPool::ClassBytes(4096), 4096u);
  EXPECT_EQ(BufferPool::ClassBytes(4097), 8192u);
  EXPECT_EQ(BufferPool::ClassBytes(65536), 65536u);
  EXPECT_EQ(BufferPool::ClassBytes((1 << 20) + 1), 2u << 20);
  EXPECT_EQ(BufferPool::ClassBytes(4 << 20), 4u << 20);
  EXPECT_EQ(BufferPool::ClassBytes((3 << 20) + 17), 4u << 20);
}

TEST(BufferPoolTest, SparesAreReusedAndTrimmed) {
  int allocs = 0, frees = 0;
  BufferPool pool(
      [&](size_t n) -> absl::StatusOr<void*> {
        ++allocs;
        return std::malloc(n);
      },
      [&](void* p) {
        ++frees;
        std::free(p);
      });
  auto a = pool.Allocate(8192);
  ASSERT_TRUE(a.ok());
  pool.PutSpare(a->bytes, *a);
  EXPECT_EQ(pool.spare_bytes(), 8192u);
  EXPECT_FALSE(pool.TakeSpare(4096).has_value()) << "classes do not mix";
  std::optional<RawBuffer> again = pool.TakeSpare(8192);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->ptr, a->ptr);
  pool.PutSpare(again->bytes, *again);
  for (RawBuffer b : pool.TakeSparesAbove(0)) pool.Free(b);
  EXPECT_EQ(pool.spare_bytes(), 0u);
  EXPECT_EQ(allocs, 1);
  EXPECT_EQ(frees, 1);
}

}  // namespace
}  // namespace tensorpager::internal
