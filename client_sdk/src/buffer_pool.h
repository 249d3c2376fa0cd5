// Memory of one local-cache pool (host or one device) in size classes, with
// freed buffers kept as spares for reuse: cudaMalloc and cudaHostAlloc cost
// far more than a copy of the block, and cudaFree synchronises the device.
//
// Not synchronised: the owner guards the spare lists with its lock, and
// calls Allocate/Free (thread-safe, slow) outside it.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_BUFFER_POOL_H_
#define TENSORPAGER_CLIENT_SDK_SRC_BUFFER_POOL_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace tensorpager::internal {

struct RawBuffer {
  void* ptr = nullptr;
  uint64_t bytes = 0;  // the size class
};

class BufferPool {
 public:
  using AllocFn = std::function<absl::StatusOr<void*>(size_t)>;
  using FreeFn = std::function<void(void*)>;

  BufferPool(AllocFn alloc, FreeFn free);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  // Frees the spares; buffers handed out must have come back.
  ~BufferPool();

  // The size class of a request: 4 KiB at least, powers of two up to 1 MiB,
  // then whole MiB, so equal-sized blocks (KV pages) share a class.
  static uint64_t ClassBytes(uint64_t bytes);

  // A spare of exactly `class_bytes`, or a null buffer.
  RawBuffer TakeSpare(uint64_t class_bytes);
  void PutSpare(RawBuffer buffer);
  // Removes spares until at most `keep_bytes` remain; the caller frees the
  // returned buffers (outside its lock).
  std::vector<RawBuffer> TakeSparesAbove(uint64_t keep_bytes);
  uint64_t spare_bytes() const { return spare_bytes_; }

  absl::StatusOr<RawBuffer> Allocate(uint64_t class_bytes) const;
  void Free(RawBuffer buffer) const;

 private:
  AllocFn alloc_;
  FreeFn free_;
  absl::flat_hash_map<uint64_t, std::vector<void*>> spares_;
  uint64_t spare_bytes_ = 0;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_BUFFER_POOL_H_
