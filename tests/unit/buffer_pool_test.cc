#include "storage/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstring>

namespace tensorpager::storage {
namespace {

TEST(BufferPoolTest, SharedBuffersComeBackForTheSameSize) {
  auto pool = BufferPool::Create();
  pool->SetLimit(64 << 20);
  base::AlignedBuffer a = pool->Take(4 << 20);
  ASSERT_TRUE(a.ok());
  const std::byte* address = a.data();
  std::memset(a.data(), 0x7f, a.size());
  {
    auto shared = pool->Share(std::move(a));
    EXPECT_EQ(pool->Stats().cached_bytes, 0u) << "still referenced";
  }
  EXPECT_EQ(pool->Stats().cached_bytes, 4u << 20);
  // A slightly smaller block of the same capacity reuses it, padding
  // zeroed.
  base::AlignedBuffer b = pool->Take((4 << 20) - 100);
  EXPECT_EQ(b.data(), address);
  EXPECT_EQ(b.size(), (4u << 20) - 100);
  for (uint64_t i = b.size(); i < b.capacity(); ++i) {
    ASSERT_EQ(b.data()[i], std::byte{0}) << i;
  }
  EXPECT_EQ(pool->Stats().reused, 1u);
  EXPECT_EQ(pool->Stats().allocated, 1u);
  // Another size class allocates fresh memory.
  base::AlignedBuffer c = pool->Take(1 << 20);
  EXPECT_NE(c.data(), address);
  EXPECT_EQ(pool->Stats().allocated, 2u);
}

TEST(BufferPoolTest, KeepsOnlyWhatTheLimitAllows) {
  auto pool = BufferPool::Create();
  pool->SetLimit(3 << 20);
  for (int i = 0; i < 5; ++i) pool->Give(base::AlignedBuffer(1 << 20));
  EXPECT_EQ(pool->Stats().cached_bytes, 3u << 20);
  pool->SetLimit(1 << 20);
  EXPECT_EQ(pool->Stats().cached_bytes, 3u << 20) << "trimmed lazily";
  pool->Trim();
  EXPECT_EQ(pool->Stats().cached_bytes, 1u << 20);
  pool->SetLimit(0);
  pool->Trim();
  EXPECT_EQ(pool->Stats().cached_bytes, 0u);
}

TEST(BufferPoolTest, BuffersOutliveThePool) {
  std::shared_ptr<const base::AlignedBuffer> survivor;
  {
    auto pool = BufferPool::Create();
    pool->SetLimit(16 << 20);
    base::AlignedBuffer b = pool->Take(8192);
    std::memset(b.data(), 1, b.size());
    survivor = pool->Share(std::move(b));
  }
  EXPECT_EQ(survivor->data()[8191], std::byte{1});
  survivor.reset();  // freed, not returned (ASan checks)
}

}  // namespace
}  // namespace tensorpager::storage
