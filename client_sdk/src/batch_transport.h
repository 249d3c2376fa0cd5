// Carries one batch call (within the server's limits) to the server, by
// the fastest way that works: the shared-memory ring (one ring request
// for the whole batch, block bytes copied once into or out of the
// arena), else the batch RPC naming arena ranges, else the batch RPC with
// the bytes in its messages (a server on another host, an arena that is
// full or gone). Splitting a caller's batch into calls is the Client's.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_BATCH_TRANSPORT_H_
#define TENSORPAGER_CLIENT_SDK_SRC_BATCH_TRANSPORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client_sdk/src/block_transport.h"
#include "client_sdk/src/shared_arena.h"
#include "tensorpager/batch.h"
#include "tensorpager/client_options.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::internal {

class BatchTransport {
 public:
  // Neither is owned; both must outlive this.
  BatchTransport(BlockTransport* blocks, const ClientOptions& options)
      : blocks_(blocks), options_(options) {}

  // The server's limits of one call (StatusResponse.max_batch_*), asked
  // once; a server that does not say gets the defaults of tensorpagerd.
  struct Limits {
    uint32_t max_blocks = 4096;
    uint64_t max_bytes = 32ull << 20;
  };
  Limits limits();

  // `response` may live on the caller's arena.
  absl::Status Lookup(const v1::LookupRequest& request,
                      v1::LookupResponse* response);
  // `request`'s blocks name no source yet; block i's bytes are sources[i].
  absl::StatusOr<v1::PutBlocksResponse> Put(
      v1::PutBlocksRequest request,
      absl::Span<const absl::Span<const std::byte>> sources);
  // Block i goes to the front of outs[i]; a block larger than its buffer
  // fails alone (INVALID_ARGUMENT).
  absl::StatusOr<v1::GetBlocksResponse> Get(
      v1::GetBlocksRequest request,
      absl::Span<const absl::Span<std::byte>> outs);

  BatchPath path();

 private:
  // A batch posted to the ring: the arena range of its request and, at
  // reply_offset, its reply area; the ring slot it waits on.
  struct Posted {
    SharedArena::Range range;
    uint64_t reply_offset = 0;
    uint64_t reply_bytes = 0;
    uint32_t slot = 0;
  };
  // Runs a batch through the ring of `arena`: the request is serialized
  // into the arena with a reply area of `reply_bytes` after it. nullopt:
  // not taken (no ring or no room); then the RPCs go. CallRing is
  // PostRing, then AwaitRing.
  std::optional<absl::Status> CallRing(SharedArena& arena, uint32_t op,
                                       const google::protobuf::MessageLite& in,
                                       uint64_t reply_bytes,
                                       google::protobuf::MessageLite* out);
  std::optional<Posted> PostRing(SharedArena& arena, uint32_t op,
                                 const google::protobuf::MessageLite& in,
                                 uint64_t reply_bytes);
  std::optional<absl::Status> AwaitRing(SharedArena& arena,
                                        const Posted& posted,
                                        google::protobuf::MessageLite* out);
  // A put through the ring in parts, each posted as soon as its blocks are
  // copied into `range` (at `offsets`), so that client and server copy
  // side by side. nullopt: the ring did not take the first part, and
  // nothing was sent. Parts the ring did not take go through the RPCs.
  std::optional<absl::StatusOr<v1::PutBlocksResponse>> PutThroughRing(
      SharedArena& arena, const SharedArena::Range& range,
      absl::Span<const uint64_t> offsets, const v1::PutBlocksRequest& request,
      absl::Span<const absl::Span<const std::byte>> sources);
  // A put whose blocks name arena ranges, by the shared-memory RPC; by
  // messages when the arena is lost.
  absl::StatusOr<v1::PutBlocksResponse> PutPartByRpc(
      v1::PutBlocksRequest request,
      absl::Span<const absl::Span<const std::byte>> sources);
  absl::StatusOr<v1::PutBlocksResponse> PutInline(
      v1::PutBlocksRequest request,
      absl::Span<const absl::Span<const std::byte>> sources);
  absl::StatusOr<v1::GetBlocksResponse> GetInline(
      v1::GetBlocksRequest request,
      absl::Span<const absl::Span<std::byte>> outs);
  // Cuts blocks of `sizes` into consecutive parts of about equal bytes, at
  // most `max_parts` and none below kMinPartBytes (one at least).
  std::vector<std::pair<int, int>> Parts(absl::Span<const uint64_t> sizes,
                                         int max_parts) const;
  // Starts every request's call at once (`start` issues one with gRPC's
  // callback API) and waits for all; calls that found the server
  // unavailable go again, up to max_retries. Each call's status.
  template <typename Request, typename Response, typename Start>
  std::vector<grpc::Status> SideBySide(const std::vector<Request>& requests,
                                       std::vector<Response>& responses,
                                       Start start);
  // One reply of the parts' replies, in order; the blocks of a part whose
  // call failed whole fail with its status. The first call's error when
  // every call failed.
  template <typename Response>
  absl::StatusOr<Response> Merge(const std::vector<std::pair<int, int>>& parts,
                                 const std::vector<grpc::Status>& statuses,
                                 std::vector<Response>& responses);

  BlockTransport* blocks_;
  const ClientOptions& options_;
  std::once_flag limits_once_;
  Limits limits_;
};

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_BATCH_TRANSPORT_H_
