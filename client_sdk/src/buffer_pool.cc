#include "client_sdk/src/buffer_pool.h"

#include <bit>

namespace tensorpager::internal {
namespace {

constexpr uint64_t kMinClass = 4096;
constexpr uint64_t kMiB = 1ull << 20;

}  // namespace

BufferPool::BufferPool(AllocFn alloc, FreeFn free)
    : alloc_(std::move(alloc)), free_(std::move(free)) {}

BufferPool::~BufferPool() {
  for (RawBuffer b : TakeSparesAbove(0)) Free(b);
}

uint64_t BufferPool::ClassBytes(uint64_t bytes) {
  if (bytes <= kMinClass) return kMinClass;
  if (bytes <= kMiB) return std::bit_ceil(bytes);
  return (bytes + kMiB - 1) / kMiB * kMiB;
}

absl::StatusOr<RawBuffer> BufferPool::Allocate(uint64_t class_bytes) const {
  absl::StatusOr<void*> ptr = alloc_(class_bytes);
  if (!ptr.ok()) return ptr.status();
  return RawBuffer{*ptr, class_bytes};
}

void BufferPool::Free(RawBuffer buffer) const {
  if (buffer.ptr != nullptr) free_(buffer.ptr);
}

}  // namespace tensorpager::internal
