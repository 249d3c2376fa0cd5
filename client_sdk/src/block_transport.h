// Moves block bytes between the server and host or device memory: Access
// streams land in place (device placements through the pipelined staging
// ring), WriteBlock streams are fed from host memory or straight off a
// device. Spreads streams over several gRPC connections.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_BLOCK_TRANSPORT_H_
#define TENSORPAGER_CLIENT_SDK_SRC_BLOCK_TRANSPORT_H_

#include <grpcpp/channel.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "client_sdk/src/cache_backend.h"
#include "client_sdk/src/get_blocks_reply.h"
#include "client_sdk/src/put_blocks_request.h"
#include "client_sdk/src/shared_arena.h"
#include "client_sdk/src/stream_pool.h"
#include "client_sdk/src/wire_chunks.h"
#include "storage/base/log.h"
#include "tensorpager/client_options.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::internal {

// Memory for `length` bytes of `block` on the fetch's placement.
using RangeAllocateFn = absl::FunctionRef<absl::StatusOr<void*>(
    const v1::BlockInfo& block, uint64_t length)>;

class BlockTransport final : public CacheBackend {
 public:
  // `runtime` page-locks the arena for device transfers (may be null).
  BlockTransport(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                 const ClientOptions& options, StreamPool* streams,
                 DeviceRuntime* runtime);

  // For control RPCs.
  v1::TensorPager::Stub& control() { return *connections_.front().stub; }

  // Streams the range `request` names into memory from `allocate`. A
  // touch-only request allocates nothing.
  absl::StatusOr<v1::BlockInfo> Fetch(const v1::AccessRequest& request,
                                      Placement where, RangeAllocateFn allocate,
                                      bool* hit);
  absl::StatusOr<v1::WriteBlockResponse> Store(storage::BlockKeyView id,
                                               Placement from, const void* data,
                                               uint64_t size, uint64_t offset,
                                               std::optional<bool> durable);

  absl::StatusOr<v1::BlockInfo> FetchBlock(storage::BlockKeyView id,
                                           Placement where,
                                           AllocateFn allocate) override;
  absl::Status StoreBlock(storage::BlockKeyView id, Placement from,
                          const void* data, uint64_t size) override;
  absl::StatusOr<v1::BlockInfo> DescribeBlock(
      storage::BlockKeyView id) override;

  // Offers the shared-memory data path with an arena of `bytes`, set up on
  // the first transfer; where the server cannot attach it, `log` says why
  // once and streams stay in use.
  void OfferSharedMemory(uint64_t bytes, base::Logger* log);
  void DisableSharedMemory();
  // Block sizes let a fetch size its shared range without asking first.
  void NoteBlockSize(storage::BlockKeyView id, uint64_t size);
  uint64_t shared_transfers() const { return shared_transfers_.load(); }
  uint64_t shared_bytes() const { return shared_bytes_.load(); }
  uint64_t ring_transfers() const { return ring_transfers_.load(); }

  // For the batch calls (batch_transport.h), which share the arena and
  // the connections.
  // The arena, its segment attached on first use; null while the path is
  // off.
  SharedArena* Arena();
  bool shared_wanted() const { return shared_wanted_.load(); }
  // Why the shared-memory path is on or off, in words.
  std::string SharedPathReason();
  // Turns the path off for good, saying why in the log once.
  void RefuseSharedMemory(const std::string& reason, base::Logger* log);
  // A connection's stub for data calls, round robin.
  v1::TensorPager::Stub& data_stub() { return *Next().stub; }
  int connections() const { return static_cast<int>(connections_.size()); }
  // Starts a GetBlocks call on the next connection whose reply lands in
  // `reply`'s buffers as it arrives (get_blocks_reply.h).
  void StartGetBlocks(grpc::ClientContext* context,
                      const v1::GetBlocksRequest* request,
                      GetBlocksReply* reply,
                      std::function<void(grpc::Status)> done);
  // Starts a PutBlocks call on the next connection whose blocks' bytes
  // are lent to gRPC (put_blocks_request.h).
  void StartPutBlocks(grpc::ClientContext* context,
                      const PutBlocksLent* request,
                      v1::PutBlocksResponse* response,
                      std::function<void(grpc::Status)> done);
  // After an error from a shared call that named the arena's segment by
  // `capability`: true when the stream path should take over (the server
  // forgot the segment, or the range was too small). A forgotten segment
  // is attached again, unless `capability` is null (a ring request: the
  // ring lives in the segment, so the server that answered has it).
  bool SharedPathLost(const absl::Status& s, const std::string* capability);
  // A transfer done over shared memory, through the ring or a unary RPC.
  void CountShared(uint64_t bytes, bool ring);

 private:
  // nullopt: not taken (no arena, no room, size unknown); use a stream.
  // `staging` (device transfers) moves the bytes between the arena and the
  // device; null for host memory.
  std::optional<absl::StatusOr<v1::WriteBlockResponse>> StoreShared(
      storage::BlockKeyView id, const void* data, uint64_t size,
      uint64_t offset, std::optional<bool> durable, StagingStream* staging);
  std::optional<absl::StatusOr<v1::BlockInfo>> FetchShared(
      const v1::AccessRequest& request, RangeAllocateFn allocate, bool* hit,
      StagingStream* staging);
  uint64_t KnownSize(storage::BlockKeyView id);

  // One connection, its stub and its registered data methods.
  struct Connection {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::TensorPager::Stub> stub;
    grpc::internal::RpcMethod access;
    grpc::internal::RpcMethod write;
    grpc::internal::RpcMethod get_blocks;
    grpc::internal::RpcMethod put_blocks;
  };

  const Connection& Next() {
    return connections_[next_.fetch_add(1, std::memory_order_relaxed) %
                        connections_.size()];
  }

  std::vector<Connection> connections_;
  std::atomic<uint32_t> next_{0};
  // Shared memory: offered (bytes > 0), attached (arena_), or given up.
  std::mutex arena_mu_;
  uint64_t arena_bytes_ ABSL_GUARDED_BY(arena_mu_) = 0;
  std::string shared_reason_ ABSL_GUARDED_BY(arena_mu_) =
      "shared memory not offered yet";
  base::Logger* log_ = nullptr;
  std::unique_ptr<SharedArena> arena_;
  std::atomic<bool> arena_ready_{false};
  std::atomic<bool> shared_wanted_{false};  // offered and not given up
  std::atomic<uint64_t> shared_transfers_{0};
  std::atomic<uint64_t> shared_bytes_{0};
  std::atomic<uint64_t> ring_transfers_{0};
  std::mutex sizes_mu_;
  absl::flat_hash_map<storage::BlockKey, uint64_t, storage::BlockKeyHash,
                      storage::BlockKeyEq>
      sizes_ ABSL_GUARDED_BY(sizes_mu_);
  const ClientOptions& options_;
  StreamPool* streams_;
  DeviceRuntime* runtime_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_BLOCK_TRANSPORT_H_
