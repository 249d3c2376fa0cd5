#include "storage/buffer_pool.h"

#include <utility>

namespace tensorpager::storage {

std::shared_ptr<BufferPool> BufferPool::Create() {
  return std::make_shared<BufferPool>(Passkey{});
}

base::AlignedBuffer BufferPool::Take(uint64_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(base::AlignUp(size == 0 ? 1 : size));
    if (it != free_.end() && !it->second.empty()) {
      base::AlignedBuffer b = std::move(it->second.back());
      it->second.pop_back();
      cached_bytes_ -= b.capacity();
      ++reused_;
      b.Resize(size);
      return b;
    }
    ++allocated_;
  }
  return base::AlignedBuffer(size);
}

void BufferPool::Give(base::AlignedBuffer buffer) {
  if (!buffer.ok()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_bytes_ + buffer.capacity() <=
        limit_.load(std::memory_order_relaxed)) {
      cached_bytes_ += buffer.capacity();
      free_[buffer.capacity()].push_back(std::move(buffer));
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
    const uint64_t limit = limit_.load(std::memory_order_relaxed);
    for (auto it = free_.begin(); it != free_.end() && cached_bytes_ > limit;
         ++it) {
      while (!it->second.empty() && cached_bytes_ > limit) {
        cached_bytes_ -= it->second.back().capacity();
        dropped.push_back(std::move(it->second.back()));
        it->second.pop_back();
      }
    }
  }
  // `dropped` unmaps here, outside the lock.
}

BufferPoolStats BufferPool::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {cached_bytes_.load(), reused_, allocated_};
}

}  // namespace tensorpager::storage
