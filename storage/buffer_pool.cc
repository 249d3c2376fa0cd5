#include "storage/buffer_pool.h"

#include <optional>
#include <utility>
#include <vector>

namespace tensorpager::storage {

std::shared_ptr<BufferPool> BufferPool::Create() {
  return std::make_shared<BufferPool>(Passkey{});
}

base::AlignedBuffer BufferPool::Take(uint64_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<base::AlignedBuffer> b =
        free_.TakeSpare(base::AlignUp(size == 0 ? 1 : size));
    if (b.has_value()) {
      cached_bytes_ = free_.spare_bytes();
      ++reused_;
      b->Resize(size);
      return std::move(*b);
    }
    ++allocated_;
  }
  return base::AlignedBuffer(size);
}

void BufferPool::Give(base::AlignedBuffer buffer) {
  if (!buffer.ok()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.spare_bytes() + buffer.capacity() <=
        limit_.load(std::memory_order_relaxed)) {
      free_.PutSpare(buffer.capacity(), std::move(buffer));
      cached_bytes_ = free_.spare_bytes();
      return;
    }
  }
  // Over the limit: `buffer` is freed here, outside the pool's lock.
}

namespace {

// Owns a shared buffer and hands it back to its pool when the last
// reference goes.
struct Returning {
  Returning(std::weak_ptr<BufferPool> p, base::AlignedBuffer b)
      : pool(std::move(p)), buffer(std::move(b)) {}
  ~Returning() {
    if (std::shared_ptr<BufferPool> live = pool.lock()) {
      live->Give(std::move(buffer));
    }
  }
  Returning(const Returning&) = delete;
  Returning& operator=(const Returning&) = delete;
  std::weak_ptr<BufferPool> pool;
  base::AlignedBuffer buffer;
};

}  // namespace

std::shared_ptr<const base::AlignedBuffer> BufferPool::Share(
    base::AlignedBuffer buffer) {
  auto holder =
      std::make_shared<Returning>(weak_from_this(), std::move(buffer));
  const base::AlignedBuffer* data = &holder->buffer;
  return std::shared_ptr<const base::AlignedBuffer>(std::move(holder), data);
}

void BufferPool::Trim() {
  // Called after every swap-in and first write: usually nothing to do.
  if (cached_bytes_.load(std::memory_order_relaxed) <=
      limit_.load(std::memory_order_relaxed)) {
    return;
  }
  std::vector<base::AlignedBuffer> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped = free_.TakeSparesAbove(limit_.load(std::memory_order_relaxed));
    cached_bytes_ = free_.spare_bytes();
  }
  // `dropped` unmaps here, outside the lock.
}

BufferPoolStats BufferPool::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {cached_bytes_.load(), reused_, allocated_};
}

}  // namespace tensorpager::storage
