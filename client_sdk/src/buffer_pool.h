// Memory of one local-cache pool (host or one device) in size classes, with
// freed buffers kept as spares for reuse: cudaMalloc and cudaHostAlloc cost
// far more than a copy of the block, and cudaFree synchronises the device.
// The spares are a base::SpareList; this adds the SDK's size classes and
// the pool's alloc/free functions.
//
// Not synchronised: the owner guards the spare lists with its lock, and
// calls Allocate/Free (thread-safe, slow) outside it.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_BUFFER_POOL_H_
#define TENSORPAGER_CLIENT_SDK_SRC_BUFFER_POOL_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "storage/base/spare_list.h"

namespace tensorpager::internal {

struct RawBuffer {
  void* ptr = nullptr;
  uint64_t bytes = 0;  // the size class
};

// Spares are kept by RawBuffer::bytes (PutSpare(b.bytes, b)).
class BufferPool : public base::SpareList<RawBuffer> {
 public:
  using AllocFn = std::function<absl::StatusOr<void*>(size_t)>;
  using FreeFn = std::function<void(void*)>;

  BufferPool(AllocFn alloc, FreeFn free);
  // Frees the spares; buffers handed out must have come back.
  ~BufferPool();

  // The size class of a request: 4 KiB at least, powers of two up to 1 MiB,
  // then whole MiB, so equal-sized blocks (KV pages) share a class.
  static uint64_t ClassBytes(uint64_t bytes);

  absl::StatusOr<RawBuffer> Allocate(uint64_t class_bytes) const;
  void Free(RawBuffer buffer) const;

 private:
  AllocFn alloc_;
  FreeFn free_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_BUFFER_POOL_H_
