// The batch RPCs of the service (Lookup, PutBlocks, GetBlocks,
// UnregisterBlocks): what they do is BatchCalls' (batch_calls.h); here,
// only what the gRPC transport adds: shared-memory ranges are checked for
// the calling user with their capability, as every shared-memory RPC's.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/proto_convert.h"
#include "server/tensorpager_service.h"  // the class these members belong to

namespace tensorpager::server {
namespace {

// Ranges of attached segments, each checked for the caller and held
// mapped until the call answers. The caller's uid is asked of the kernel
// (a scan of /proc/net/tcp) only when a range needs it: batches whose
// bytes travel in the messages never do.
class LeasedRanges final : public SharedRanges {
 public:
  LeasedRanges(const SharedMemorySegments& segments, PeerIdentity& peers,
               std::string peer, const auth::Caller& caller)
      : segments_(segments),
        peers_(peers),
        peer_(std::move(peer)),
        tenant_caller_(caller) {}

  absl::StatusOr<absl::Span<std::byte>> Resolve(
      const v1::SharedRange& range) override {
    if (!caller_) caller_ = peers_.UidOf(peer_);
    absl::StatusOr<SharedMemorySegments::Lease> lease =
        segments_.Resolve(tenant_caller_, *caller_, range.segment_id(),
                          range.capability(), range.offset(), range.length());
    if (!lease.ok()) return lease.status();
    leases_.push_back(*std::move(lease));
    return leases_.back().bytes();
  }

 private:
  const SharedMemorySegments& segments_;
  PeerIdentity& peers_;
  const std::string peer_;
  const auth::Caller& tenant_caller_;
  // Asked once, on the first range: the uid, or nullopt when the kernel
  // names none.
  std::optional<std::optional<uid_t>> caller_;
  std::vector<SharedMemorySegments::Lease> leases_;
};

}  // namespace

void TensorPagerService::UseStreamedBatchHandlers() {
  // The batch data calls' handlers become the streamed ones (see
  // StreamedPutBlocks). gRPC's generated services add their methods in the
  // proto's order, so the descriptor's index is the service's. The
  // Service takes ownership of each handler.
  auto index_of = [](const char* method) {
    return v1::GetBlocksRequest::descriptor()
        ->file()
        ->FindServiceByName("TensorPager")
        ->FindMethodByName(method)
        ->index();
  };
  MarkMethodStreamed(
      index_of("PutBlocks"),
      std::make_unique<grpc::internal::StreamedUnaryHandler<
          PutBlocksWire, v1::PutBlocksResponse>>(
          [this](
              grpc::ServerContext* context,
              grpc::ServerUnaryStreamer<PutBlocksWire, v1::PutBlocksResponse>*
                  stream) { return StreamedPutBlocks(context, stream); })
          .release());
  MarkMethodStreamed(
      index_of("GetBlocks"),
      std::make_unique<grpc::internal::StreamedUnaryHandler<
          v1::GetBlocksRequest, GetBlocksWire>>(
          [this](grpc::ServerContext* context,
                 grpc::ServerUnaryStreamer<v1::GetBlocksRequest, GetBlocksWire>*
                     stream) { return StreamedGetBlocks(context, stream); })
          .release());
}

grpc::Status TensorPagerService::Lookup(grpc::ServerContext* context,
                                        const v1::LookupRequest* request,
                                        v1::LookupResponse* response) {
  if (grpc::Status s = Admit(context, request->namespace_()); !s.ok()) {
    return s;
  }
  return ToGrpc(batches_.Lookup(*request, response));
}

grpc::Status TensorPagerService::StreamedPutBlocks(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<PutBlocksWire, v1::PutBlocksResponse>* stream) {
  PutBlocksWire request;
  if (!stream->Read(&request)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "PutBlocks: the call carried no request message, or "
                        "one that does not parse");
  }
  auth::Caller caller;
  if (grpc::Status s = Admit(context, request.request.namespace_(), &caller);
      !s.ok()) {
    return s;
  }
  v1::PutBlocksResponse response;
  LeasedRanges ranges(segments_, peers_, context->peer(), caller);
  if (absl::Status s = batches_.Put(request.request, ranges, &response,
                                    &request.data, AdmitNewFor(caller));
      !s.ok()) {
    return ToGrpc(s);
  }
  if (!stream->Write(response)) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        "PutBlocks: the client went away before the reply");
  }
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::StreamedGetBlocks(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<v1::GetBlocksRequest, GetBlocksWire>* stream) {
  v1::GetBlocksRequest request;
  if (!stream->Read(&request)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "GetBlocks: the call carried no request message, or "
                        "one that does not parse");
  }
  auth::Caller caller;
  if (grpc::Status s = Admit(context, request.namespace_(), &caller); !s.ok()) {
    return s;
  }
  // A reply that carries the blocks holds this thread until the client
  // has taken them (a stalled peer would hold it until its deadline), so
  // it counts as a data stream of its caller, as an Access does.
  std::optional<CallSlots::Slot> slot;
  if (request.destinations_size() == 0 && request.ids_size() > 0) {
    absl::StatusOr<CallSlots::Slot> entered =
        data_slots_.Enter(CallerOf(context));
    if (!entered.ok()) return ToGrpc(entered.status());
    slot.emplace(*std::move(entered));
  }
  GetBlocksWire reply;
  LeasedRanges ranges(segments_, peers_, context->peer(), caller);
  if (absl::Status s =
          batches_.Get(request, ranges, &reply.response, &reply.bytes);
      !s.ok()) {
    return ToGrpc(s);
  }
  // The snapshots (and their in-flight hold) stay until gRPC has taken
  // the reply.
  if (!stream->Write(reply)) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        "GetBlocks: the client went away before the reply");
  }
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::UnregisterBlocks(
    grpc::ServerContext* context, const v1::UnregisterBlocksRequest* request,
    v1::UnregisterBlocksResponse* response) {
  if (grpc::Status s = Admit(context, request->namespace_()); !s.ok()) {
    return s;
  }
  return ToGrpc(batches_.Unregister(*request, response));
}

}  // namespace tensorpager::server
