// The shared-memory data path of the service: attaching and detaching a
// client's segment, the unary RPCs that move block bytes through it, and
// the request ring's handler. Every call names its segment by id and
// capability and comes from the user that attached it
// (shared_memory_segments.h); nothing is allocated before the block and
// the range are checked.
#include <limits>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "server/proto_convert.h"
#include "server/tensorpager_service.h"  // the class these members belong to
#include "storage/shared_memory/ring_server.h"

namespace tensorpager::server {

grpc::Status TensorPagerService::AttachSharedMemory(
    grpc::ServerContext* context, const v1::AttachSharedMemoryRequest* request,
    v1::AttachSharedMemoryResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return ToGrpc(caller.status());
  if (!config_->shared_memory) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the shared-memory data path is off on this server "
                        "(--shared_memory=false); use WriteBlock and Access");
  }
  // /proc/<pid> names a process on this host only.
  const std::string peer = context->peer();
  // "fd:" peers came through the Unix socket (unix_socket_listener.h).
  if (!absl::StartsWith(peer, "unix:") && !absl::StartsWith(peer, "fd:") &&
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
      *caller, *uid, request->pid(), request->fd(), request->size_bytes(),
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
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return ToGrpc(caller.status());
  // An unidentified caller owns nothing: NOT_FOUND, as for a wrong segment.
  return ToGrpc(segments_.Detach(*caller, peers_.UidOf(context->peer()),
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

namespace {

using OwnedMessages =
    std::vector<std::unique_ptr<google::protobuf::MessageLite>>;

// A message of the ring batch, on `arena`. Debian's prebuilt libprotobuf
// crashes in a ThreadSanitizer build when an arena destroys a message
// with a map field (PutBlock's labels), so such a build keeps the ring's
// messages on the heap instead (in `owned`).
template <typename T>
T* NewMessage(google::protobuf::Arena* arena, OwnedMessages* owned) {
#if defined(__SANITIZE_THREAD__)
  (void)arena;
  auto message = std::make_unique<T>();
  T* raw = message.get();
  owned->push_back(std::move(message));
  return raw;
#else
  (void)owned;
  return google::protobuf::Arena::CreateMessage<T>(arena);
#endif
}

// A ring batch's blocks lie in the ring's own segment: the ring's user
// proved ownership when it attached, and the segment stays mapped while
// its ring serves. The range's segment id and capability are not asked.
class RingRanges final : public SharedRanges {
 public:
  explicit RingRanges(absl::Span<std::byte> segment) : segment_(segment) {}

  absl::StatusOr<absl::Span<std::byte>> Resolve(
      const v1::SharedRange& range) override {
    if (!shared_memory::InDataArea(range.offset(), range.length(),
                                   segment_.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("range [", range.offset(), ", +", range.length(),
                       ") lies outside the ring segment's data area"));
    }
    return segment_.subspan(range.offset(), range.length());
  }

 private:
  absl::Span<std::byte> segment_;
};

}  // namespace

shared_memory::RingCompletion TensorPagerService::ServeRingBatch(
    const auth::Caller& owner, const shared_memory::RingRequest& request,
    absl::Span<std::byte> data, absl::Span<std::byte> segment) {
  shared_memory::RingCompletion completion;
  RingRanges ranges(segment);
  // Parsed once into our own memory: the client may scribble on the
  // segment while the batch runs.
  auto parse = [&](google::protobuf::MessageLite& message) {
    if (!message.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
      completion.status = absl::InvalidArgumentError(
          "the ring batch's request does not parse as its message");
      return false;
    }
    return true;
  };
  if (data.size() > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
    completion.status =
        absl::InvalidArgumentError("the ring batch's request is too large");
    return completion;
  }
  // The request's ids and the reply's entries live on one arena: a batch
  // of 128 small pages is otherwise hundreds of mallocs.
  google::protobuf::Arena arena;
  OwnedMessages owned;
  google::protobuf::MessageLite* reply = nullptr;
  if (request.op == shared_memory::kLookup) {
    auto* in = NewMessage<v1::LookupRequest>(&arena, &owned);
    auto* out = NewMessage<v1::LookupResponse>(&arena, &owned);
    if (!parse(*in)) return completion;
    completion.status = NamespaceAllowed(owner, in->namespace_());
    if (!completion.status.ok()) return completion;
    completion.status = batches_.Lookup(*in, out);
    reply = out;
  } else if (request.op == shared_memory::kPutBlocks) {
    auto* in = NewMessage<v1::PutBlocksRequest>(&arena, &owned);
    auto* out = NewMessage<v1::PutBlocksResponse>(&arena, &owned);
    if (!parse(*in)) return completion;
    completion.status = NamespaceAllowed(owner, in->namespace_());
    if (!completion.status.ok()) return completion;
    completion.status =
        batches_.Put(*in, ranges, out, nullptr, AdmitNewFor(owner));
    reply = out;
  } else {
    auto* in = NewMessage<v1::GetBlocksRequest>(&arena, &owned);
    auto* out = NewMessage<v1::GetBlocksResponse>(&arena, &owned);
    if (!parse(*in)) return completion;
    completion.status = NamespaceAllowed(owner, in->namespace_());
    if (!completion.status.ok()) return completion;
    completion.status = batches_.Get(*in, ranges, out, nullptr);
    reply = out;
  }
  if (!completion.status.ok()) return completion;
  const size_t bytes = reply->ByteSizeLong();
  if (bytes > request.length) {
    // Only a client that sized its reply area below the SDK's bound gets
    // here; what the batch did stands.
    completion.status = absl::ResourceExhaustedError(absl::StrCat(
        "the batch's reply takes ", bytes, " bytes; the reply area holds ",
        request.length, "; the batch was carried out, read its blocks again"));
    return completion;
  }
  reply->SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(segment.data() + request.offset));
  completion.length = bytes;
  return completion;
}

shared_memory::RingCompletion TensorPagerService::ServeRing(
    const auth::Caller& owner, const shared_memory::RingRequest& request,
    absl::Span<std::byte> data, absl::Span<std::byte> segment) {
  if (shared_memory::IsBatchOp(request.op)) {
    return ServeRingBatch(owner, request, data, segment);
  }
  shared_memory::RingCompletion completion;
  completion.status = NamespaceAllowed(owner, request.ns);
  if (!completion.status.ok()) return completion;
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
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return caller.status();
  if (absl::Status s = NamespaceAllowed(*caller, ns); !s.ok()) return s;
  absl::StatusOr<storage::BlockKey> key = storage::BlockKey::Make(ns, id);
  if (!key.ok()) return key.status();
  // Every call proves its user again: a segment id and capability alone
  // do not hand another user's memory over.
  absl::StatusOr<SharedMemorySegments::Lease> lease = segments_.Resolve(
      *caller, peers_.UidOf(context->peer()), range.segment_id(),
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
