// The shared-memory data path of the service: attaching and detaching a
// client's segment, the unary RPCs that move block bytes through it, and
// the request ring's handler. Every call names its segment by id and
// capability and comes from the user that attached it
// (shared_memory_segments.h); nothing is allocated before the block and
// the range are checked.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/proto_convert.h"
#include "server/tensorpager_service.h"  // the class these members belong to

namespace tensorpager::server {

grpc::Status TensorPagerService::AttachSharedMemory(
    grpc::ServerContext* context, const v1::AttachSharedMemoryRequest* request,
    v1::AttachSharedMemoryResponse* response) {
  if (!config_->shared_memory) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the shared-memory data path is off on this server "
                        "(--shared_memory=false); use WriteBlock and Access");
  }
  // /proc/<pid> names a process on this host only.
  const std::string peer = context->peer();
  if (!absl::StartsWith(peer, "unix:") &&
      !absl::StartsWith(peer, "ipv4:127.") &&
      !absl::StartsWith(peer, "ipv6:[::1]")) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("shared memory is for clients on this "
                                     "host; ",
                                     peer, " is not"));
  }
  // The server opens the client's memory only for the user the kernel
  // says is calling, never on the request's word.
  const std::optional<uid_t> uid = peers_.UidOf(peer);
  if (!uid) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("the server cannot tell which user is calling over ", peer,
                     "; shared memory needs a loopback TCP connection "
                     "(127.0.0.1 or [::1]); use WriteBlock and Access"));
  }
  absl::StatusOr<SharedMemorySegments::Attached> attached = segments_.Attach(
      *uid, request->pid(), request->fd(), request->size_bytes(),
      request->token(), request->ring());
  if (!attached.ok()) return ToGrpc(attached.status());
  response->set_segment_id(attached->segment_id);
  response->set_ring(attached->ring);
  response->set_capability(attached->capability);
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::DetachSharedMemory(
    grpc::ServerContext* context, const v1::DetachSharedMemoryRequest* request,
    v1::DetachSharedMemoryResponse*) {
  // An unidentified caller owns nothing: NOT_FOUND, as for a wrong segment.
  return ToGrpc(segments_.Detach(peers_.UidOf(context->peer()),
                                 request->segment_id(), request->capability()));
}

absl::StatusOr<storage::WriteResult> TensorPagerService::WriteFromShared(
    const storage::BlockKey& key, uint64_t offset, std::optional<bool> durable,
    absl::Span<const std::byte> source) {
  if (source.empty()) {
    return absl::InvalidArgumentError(
        "the shared range is empty: the write carries no data");
  }
  return data_path_.Write(key, offset, durable, source, "shared-memory write");
}

shared_memory::RingCompletion TensorPagerService::ServeRing(
    const shared_memory::RingRequest& request, absl::Span<std::byte> data) {
  shared_memory::RingCompletion completion;
  absl::StatusOr<storage::BlockKey> key =
      storage::BlockKey::Make(request.ns, request.id);
  if (!key.ok()) {
    completion.status = key.status();
    return completion;
  }
  v1::BlockInfo info;
  if (request.op == shared_memory::kWrite) {
    absl::StatusOr<storage::WriteResult> w =
        WriteFromShared(*key, request.offset, request.durable, data);
    completion.status = w.status();
    if (!w.ok()) return completion;
    completion.length = w->bytes_written;
    completion.durable = w->durable;
    ToProto(w->block, &info);
  } else {
    absl::StatusOr<storage::ReadResult> r =
        data_path_.ReadInto(*key, request.offset, request.length, data);
    completion.status = r.status();
    if (!r.ok()) return completion;
    completion.length = r->length;
    completion.hit = r->hit;
    ToProto(r->block, &info);
  }
  completion.info = info.SerializeAsString();
  return completion;
}

absl::StatusOr<TensorPagerService::SharedTarget>
TensorPagerService::ResolveShared(grpc::ServerContext* context,
                                  const std::string& ns, const std::string& id,
                                  const v1::SharedRange& range) {
  absl::StatusOr<storage::BlockKey> key = storage::BlockKey::Make(ns, id);
  if (!key.ok()) return key.status();
  // Every call proves its user again: a segment id and capability alone
  // do not hand another user's memory over.
  absl::StatusOr<SharedMemorySegments::Lease> lease =
      segments_.Resolve(peers_.UidOf(context->peer()), range.segment_id(),
                        range.capability(), range.offset(), range.length());
  if (!lease.ok()) return lease.status();
  return SharedTarget{*std::move(key), *std::move(lease)};
}

grpc::Status TensorPagerService::WriteBlockShared(
    grpc::ServerContext* context, const v1::WriteBlockSharedRequest* request,
    v1::WriteBlockResponse* response) {
  absl::StatusOr<SharedTarget> target = ResolveShared(
      context, request->namespace_(), request->id(), request->source());
  if (!target.ok()) return ToGrpc(target.status());
  std::optional<bool> durable;
  if (request->has_durable()) durable = request->durable();
  absl::StatusOr<storage::WriteResult> result = WriteFromShared(
      target->key, request->offset(), durable, target->lease.bytes());
  if (!result.ok()) return ToGrpc(result.status());
  ToProto(*result, response);
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::AccessShared(
    grpc::ServerContext* context, const v1::AccessSharedRequest* request,
    v1::AccessSharedResponse* response) {
  absl::StatusOr<SharedTarget> target = ResolveShared(
      context, request->namespace_(), request->id(), request->destination());
  if (!target.ok()) return ToGrpc(target.status());
  absl::StatusOr<storage::ReadResult> read = data_path_.ReadInto(
      target->key, request->offset(), request->length(), target->lease.bytes());
  if (!read.ok()) return ToGrpc(read.status());
  ToProto(read->block, response->mutable_block());
  response->set_hit(read->hit);
  response->set_length(read->length);
  return grpc::Status::OK;
}

}  // namespace tensorpager::server
