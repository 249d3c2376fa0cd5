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
  // Runs a batch through the ring of `arena`: the request is serialized
  // into the arena with a reply area of `reply_bytes` after it. nullopt:
  // not taken (no ring or no room); then the RPCs go.
  std::optional<absl::Status> CallRing(SharedArena& arena, uint32_t op,
                                       const google::protobuf::MessageLite& in,
                                       uint64_t reply_bytes,
                                       google::protobuf::MessageLite* out);
  absl::StatusOr<v1::PutBlocksResponse> PutInline(
      v1::PutBlocksRequest request,
      absl::Span<const absl::Span<const std::byte>> sources);
  absl::StatusOr<v1::GetBlocksResponse> GetInline(
      v1::GetBlocksRequest request,
      absl::Span<const absl::Span<std::byte>> outs);
  // Cuts blocks of `sizes` into consecutive parts of about equal bytes, at
  // most one per connection and none below kMinPartBytes (one at least).
  std::vector<std::pair<int, int>> Parts(
      absl::Span<const uint64_t> sizes) const;
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
