// Moves block bytes between the server and host or device memory: Access
// streams land in place (device placements through the pipelined staging
// ring), WriteBlock streams are fed from host memory or straight off a
// device. Spreads streams over several gRPC connections.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_BLOCK_TRANSPORT_H_
#define TENSORPAGER_CLIENT_SDK_SRC_BLOCK_TRANSPORT_H_

#include <grpcpp/channel.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "client_sdk/src/cache_backend.h"
#include "client_sdk/src/stream_pool.h"
#include "client_sdk/src/wire_chunks.h"
#include "tensorpager/client_options.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::internal {

// Memory for `length` bytes of `block` on the fetch's placement.
using RangeAllocateFn = absl::FunctionRef<absl::StatusOr<void*>(
    const v1::BlockInfo& block, uint64_t length)>;

class BlockTransport final : public CacheBackend {
 public:
  BlockTransport(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                 const ClientOptions& options, StreamPool* streams);

  // For control RPCs.
  v1::TensorPager::Stub& control() { return *stubs_.front(); }

  // Streams the range `request` names into memory from `allocate`. A
  // touch-only request allocates nothing.
  absl::StatusOr<v1::BlockInfo> Fetch(const v1::AccessRequest& request,
                                      Placement where, RangeAllocateFn allocate,
                                      bool* hit);
  absl::StatusOr<v1::WriteBlockResponse> Store(BlockIdView id, Placement from,
                                               const void* data, uint64_t size,
                                               uint64_t offset,
                                               std::optional<bool> durable);

  absl::StatusOr<v1::BlockInfo> FetchBlock(BlockIdView id, Placement where,
                                           AllocateFn allocate) override;
  absl::Status StoreBlock(BlockIdView id, Placement from, const void* data,
                          uint64_t size) override;
  absl::StatusOr<v1::BlockInfo> DescribeBlock(BlockIdView id) override;

 private:
  // One connection and its registered data methods.
  struct Connection {
    std::shared_ptr<grpc::Channel> channel;
    grpc::internal::RpcMethod access;
    grpc::internal::RpcMethod write;
  };

  const Connection& Next() {
    return connections_[next_.fetch_add(1, std::memory_order_relaxed) %
                        connections_.size()];
  }

  std::vector<std::unique_ptr<v1::TensorPager::Stub>> stubs_;
  std::vector<Connection> connections_;
  std::atomic<uint32_t> next_{0};
  const ClientOptions& options_;
  StreamPool* streams_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_BLOCK_TRANSPORT_H_
