// What the local cache needs from the server: fetch a block into memory it
// provides, store a block's bytes, and describe a block. BlockTransport is
// the real implementation; unit tests use an in-memory one.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_CACHE_BACKEND_H_
#define TENSORPAGER_CLIENT_SDK_SRC_CACHE_BACKEND_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/base/block_key.h"
#include "tensorpager/placement.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::internal {

// Called once per fetch, with the block's description, before any byte
// arrives; returns memory for the whole block on the fetch's placement.
using AllocateFn =
    absl::FunctionRef<absl::StatusOr<void*>(const v1::BlockInfo& block)>;

class CacheBackend {
 public:
  virtual ~CacheBackend() = default;

  virtual absl::StatusOr<v1::BlockInfo> FetchBlock(storage::BlockKeyView id,
                                                   Placement where,
                                                   AllocateFn allocate) = 0;
  virtual absl::Status StoreBlock(storage::BlockKeyView id, Placement from,
                                  const void* data, uint64_t size) = 0;
  virtual absl::StatusOr<v1::BlockInfo> DescribeBlock(
      storage::BlockKeyView id) = 0;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_CACHE_BACKEND_H_
