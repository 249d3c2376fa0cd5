#include "server/tensorpager_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/proto_convert.h"
#include "server/proto_enums.h"

namespace tensorpager::server {
namespace {
constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
constexpr int kMaxAccessReports = 10000;
}  // namespace

TensorPagerService::TensorPagerService(storage::BlockStore* store,
                                       const ServerConfig* config,
                                       PressureMonitor* pressure,
                                       const HardwareProfile* profile,
                                       auth::Authenticator* auth,
                                       PeerIdentity* peers)
    : store_(store),
      config_(config),
      pressure_(pressure),
      profile_(profile),
      auth_(auth),
      started_(absl::Now()),
      peers_(*peers),
      inflight_(config->max_inflight_bytes),
      data_path_(store, &inflight_),
      batches_(store, &data_path_, &inflight_,
               BatchCalls::Limits{.max_blocks = config->max_batch_blocks,
                                  .max_bytes = config->max_batch_bytes}),
      watch_slots_("WatchPressure streams", config->max_watch_streams,
                   config->max_watch_streams_per_client),
      data_slots_("WriteBlock and Access streams and GetBlocks replies",
                  config->max_data_streams,
                  config->max_data_streams_per_client),
      segments_(
          SharedMemorySegments::Limits{
              .max_segments_per_user = config->max_segments_per_client,
              .max_rings_per_user = config->max_rings_per_client},
          [this](const auth::Caller& owner, const shared_memory::RingRequest& r,
                 absl::Span<std::byte> data, absl::Span<std::byte> segment) {
            return ServeRing(owner, r, data, segment);
          }) {
  UseStreamedBatchHandlers();
}

std::string TensorPagerService::CallerOf(grpc::ServerContext* context) {
  const std::string peer = context->peer();
  if (std::optional<uid_t> uid = peers_.UidOf(peer)) {
    return absl::StrCat("uid ", *uid);
  }
  // A remote host (or a Unix socket peer) is one caller, whatever port.
  const size_t colon = peer.rfind(':');
  return absl::StrCat("host ", colon == std::string::npos || colon < 5
                                   ? peer
                                   : peer.substr(0, colon));
}

grpc::Status TensorPagerService::RegisterBlock(
    grpc::ServerContext* context, const v1::RegisterBlockRequest* request,
    v1::RegisterBlockResponse* response) {
  auth::Caller caller;
  if (grpc::Status s = Admit(context, request->namespace_(), &caller);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<storage::BlockKey> key =
      storage::BlockKey::Make(request->namespace_(), request->id());
  if (!key.ok()) return ToGrpc(key.status());
  absl::StatusOr<storage::BlockAttributes> attrs =
      AttributesFromRequest(*request);
  if (!attrs.ok()) return ToGrpc(attrs.status());
  // An existing block costs nothing more (its registration fails below).
  if (!store_->Get(*key).ok()) {
    std::optional<storage::NamespaceUsage> usage;
    if (absl::Status s = AdmitNewBlock(caller, attrs->size_bytes, &usage);
        !s.ok()) {
      return ToGrpc(s);
    }
  }
  absl::StatusOr<storage::BlockInfo> info =
      store_->Register(*key, *std::move(attrs));
  if (!info.ok()) return ToGrpc(info.status());
  ToProto(*info, response->mutable_block());
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::WriteBlock(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::WriteBlockRequest>* reader,
    v1::WriteBlockResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<CallSlots::Slot> slot = data_slots_.Enter(CallerOf(context));
  if (!slot.ok()) return ToGrpc(slot.status());
  v1::WriteBlockRequest msg;
  if (!reader->Read(&msg)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "WriteBlock stream carried no message; the first "
                        "message must name the block");
  }
  if (absl::Status s = NamespaceAllowed(*caller, msg.namespace_()); !s.ok()) {
    return ToGrpc(s);
  }
  absl::StatusOr<storage::BlockKey> key =
      storage::BlockKey::Make(msg.namespace_(), msg.id());
  if (!key.ok()) return ToGrpc(key.status());
  absl::StatusOr<uint64_t> block_size = data_path_.BlockSize(*key);
  if (!block_size.ok()) return ToGrpc(block_size.status());
  const uint64_t size = *block_size;
  const uint64_t offset = msg.offset();
  if (offset >= size) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("offset ", offset, " lies outside block ",
                                     key->ToString(), " of ", size, " bytes"));
  }
  const uint64_t declared = msg.total_bytes();
  if (declared > size - offset) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("total_bytes ", declared, " at offset ",
                                     offset, " does not fit block ",
                                     key->ToString(), " of ", size, " bytes"));
  }
  std::optional<bool> durable;
  if (msg.has_durable()) durable = msg.durable();

  absl::StatusOr<DataPath::StagedWrite> staging = data_path_.Stage(
      *key, offset, declared != 0 ? declared : size - offset, "WriteBlock");
  if (!staging.ok()) return ToGrpc(staging.status());
  uint64_t received = 0;
  uint64_t index = 0;
  do {
    if (index > 0 &&
        ((!msg.id().empty() && msg.id() != key->id) ||
         (!msg.namespace_().empty() && msg.namespace_() != key->ns))) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "every message of one WriteBlock stream must name "
                          "the same block (or leave the name empty)");
    }
    if (msg.data().size() > kMaxWriteChunkBytes) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("message ", index, " carries ", msg.data().size(),
                       " bytes; chunks are at most ", kMaxWriteChunkBytes,
                       " bytes"));
    }
    if (msg.data().size() > staging->capacity() - received) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("stream carries more than ", staging->capacity(),
                       " bytes, past the end of block ", key->ToString(), " (",
                       size, " bytes, offset ", offset,
                       declared ? ", total_bytes declared" : "", ")"));
    }
    std::copy(msg.data().begin(), msg.data().end(),
              reinterpret_cast<char*>(staging->data()) + received);
    received += msg.data().size();
    ++index;
  } while (reader->Read(&msg));

  if (declared != 0 && received != declared) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("stream carried ", received,
                                     " bytes but total_bytes "
                                     "declared ",
                                     declared, "; nothing was written"));
  }
  if (received == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "WriteBlock stream carried no data");
  }
  absl::StatusOr<storage::WriteResult> result =
      staging->Commit(received, durable);
  if (!result.ok()) return ToGrpc(result.status());
  ToProto(*result, response);
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::Access(
    grpc::ServerContext* context, const v1::AccessRequest* request,
    grpc::ServerWriter<v1::AccessResponse>* writer) {
  if (grpc::Status s = Admit(context, request->namespace_()); !s.ok()) {
    return s;
  }
  absl::StatusOr<CallSlots::Slot> slot = data_slots_.Enter(CallerOf(context));
  if (!slot.ok()) return ToGrpc(slot.status());
  absl::StatusOr<storage::BlockKey> key =
      storage::BlockKey::Make(request->namespace_(), request->id());
  if (!key.ok()) return ToGrpc(key.status());
  const uint32_t chunk = request->chunk_bytes() == 0 ? kDefaultAccessChunkBytes
                                                     : request->chunk_bytes();
  if (chunk > kMaxAccessChunkBytes) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("chunk_bytes is at most ", kMaxAccessChunkBytes));
  }
  storage::ReadOptions options;
  options.offset = request->offset();
  options.length = request->length();
  options.touch_only = request->touch_only();
  absl::StatusOr<storage::ReadResult> read = data_path_.Read(*key, options);
  if (!read.ok()) return ToGrpc(read.status());

  v1::AccessResponse response;
  ToProto(read->block, response.mutable_block());
  response.set_hit(read->hit);
  response.set_offset(read->offset);
  if (read->data == nullptr) {
    writer->Write(response);
    return grpc::Status::OK;
  }
  const char* base = reinterpret_cast<const char*>(read->data->data());
  uint64_t sent = 0;
  do {
    const uint64_t n = std::min<uint64_t>(chunk, read->length - sent);
    response.set_offset(read->offset + sent);
    response.set_data(base + read->offset + sent, n);
    if (!writer->Write(response)) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "client went away during Access");
    }
    sent += n;
    response.clear_block();
    response.clear_hit();
  } while (sent < read->length && !context->IsCancelled());
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::Swap(grpc::ServerContext* context,
                                      const v1::SwapRequest* request,
                                      v1::SwapResponse* response) {
  // Blocks named by id are the caller's to move; bytes chosen by the
  // policy may be anyone's.
  if (grpc::Status s = request->ids_size() > 0
                           ? Admit(context, request->namespace_())
                           : AdmitAdmin(context, "Swap by target_bytes");
      !s.ok()) {
    return s;
  }
  const bool out = request->direction() == v1::SWAP_OUT;
  if (!out && request->direction() != v1::SWAP_IN) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "direction must be SWAP_OUT or SWAP_IN");
  }
  absl::StatusOr<storage::SwapResult> result;
  if (request->ids_size() > 0) {
    if (request->target_bytes() != 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "give either ids or target_bytes, not both");
    }
    std::vector<storage::BlockKey> keys;
    for (const std::string& id : request->ids()) {
      absl::StatusOr<storage::BlockKey> key =
          storage::BlockKey::Make(request->namespace_(), id);
      if (!key.ok()) return ToGrpc(key.status());
      keys.push_back(*std::move(key));
    }
    result = out ? store_->SwapOut(keys) : store_->SwapIn(keys);
  } else if (request->target_bytes() > 0) {
    result = out ? store_->SwapOutBytes(request->target_bytes())
                 : store_->SwapInBytes(request->target_bytes());
  } else {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "name blocks in ids or give target_bytes > 0");
  }
  if (!result.ok()) return ToGrpc(result.status());
  for (const storage::BlockKey& k : result->moved) {
    v1::BlockRef* ref = response->add_moved();
    ref->set_namespace_(k.ns);
    ref->set_id(k.id);
  }
  for (const storage::BlockKey& k : result->already_there) {
    v1::BlockRef* ref = response->add_already_there();
    ref->set_namespace_(k.ns);
    ref->set_id(k.id);
  }
  response->set_blocks_moved(result->moved.size());
  response->set_bytes_moved(result->bytes_moved);
  response->set_duration_us(absl::ToInt64Microseconds(result->duration));
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::SetPinned(const v1::PinRequest* request,
                                           bool pinned,
                                           v1::PinResponse* response) {
  absl::StatusOr<storage::BlockKey> key =
      storage::BlockKey::Make(request->namespace_(), request->id());
  if (!key.ok()) return ToGrpc(key.status());
  absl::StatusOr<storage::BlockInfo> info = store_->SetPinned(*key, pinned);
  if (!info.ok()) return ToGrpc(info.status());
  ToProto(*info, response->mutable_block());
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::Pin(grpc::ServerContext* context,
                                     const v1::PinRequest* request,
                                     v1::PinResponse* response) {
  if (grpc::Status s = Admit(context, request->namespace_()); !s.ok()) {
    return s;
  }
  return SetPinned(request, true, response);
}

grpc::Status TensorPagerService::Unpin(grpc::ServerContext* context,
                                       const v1::PinRequest* request,
                                       v1::PinResponse* response) {
  if (grpc::Status s = Admit(context, request->namespace_()); !s.ok()) {
    return s;
  }
  return SetPinned(request, false, response);
}

grpc::Status TensorPagerService::UnregisterBlock(
    grpc::ServerContext* context, const v1::UnregisterBlockRequest* request,
    v1::UnregisterBlockResponse* response) {
  if (grpc::Status s = Admit(context, request->namespace_()); !s.ok()) {
    return s;
  }
  absl::StatusOr<storage::BlockKey> key =
      storage::BlockKey::Make(request->namespace_(), request->id());
  if (!key.ok()) return ToGrpc(key.status());
  absl::StatusOr<storage::BlockStore::Freed> freed = store_->Unregister(*key);
  if (!freed.ok()) return ToGrpc(freed.status());
  response->set_ram_bytes_freed(freed->ram_bytes);
  response->set_disk_bytes_freed(freed->disk_bytes);
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::GetBlock(grpc::ServerContext* context,
                                          const v1::GetBlockRequest* request,
                                          v1::GetBlockResponse* response) {
  if (grpc::Status s = Admit(context, request->namespace_()); !s.ok()) {
    return s;
  }
  absl::StatusOr<storage::BlockKey> key =
      storage::BlockKey::Make(request->namespace_(), request->id());
  if (!key.ok()) return ToGrpc(key.status());
  absl::StatusOr<storage::BlockInfo> info = store_->Get(*key);
  if (!info.ok()) return ToGrpc(info.status());
  ToProto(*info, response->mutable_block());
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::ListBlocks(
    grpc::ServerContext* context, const v1::ListBlocksRequest* request,
    v1::ListBlocksResponse* response) {
  if (grpc::Status s =
          request->all_namespaces()
              ? AdmitAdmin(context, "ListBlocks with all_namespaces")
              : Admit(context, request->namespace_());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<storage::ListFilter> filter = FilterFromRequest(*request);
  if (!filter.ok()) return ToGrpc(filter.status());
  const uint32_t page_size = request->page_size() == 0
                                 ? kDefaultPageSize
                                 : std::min(request->page_size(), kMaxPageSize);
  absl::StatusOr<storage::ListPage> page =
      store_->List(*filter, page_size, request->page_token());
  if (!page.ok()) return ToGrpc(page.status());
  for (const storage::BlockInfo& info : page->blocks) {
    ToProto(info, response->add_blocks());
  }
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::SetPolicy(grpc::ServerContext* context,
                                           const v1::SetPolicyRequest* request,
                                           v1::SetPolicyResponse* response) {
  if (grpc::Status s = AdmitAdmin(context, "SetPolicy"); !s.ok()) return s;
  const std::optional<policy::Algorithm> next = FromProto(request->algorithm());
  if (!next) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "algorithm must be LRU, CLOCK or ADAPTIVE");
  }
  const storage::StoreStats before = store_->Stats();
  store_->SetAlgorithm(*next);
  response->set_previous(ToProto(before.algorithm));
  response->set_algorithm(request->algorithm());
  response->set_resident_blocks(before.blocks_in_ram);
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::ReportAccesses(
    grpc::ServerContext* context, const v1::ReportAccessesRequest* request,
    v1::ReportAccessesResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return ToGrpc(caller.status());
  if (request->accesses_size() > kMaxAccessReports) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("at most ", kMaxAccessReports,
                                     " accesses per report; send several"));
  }
  std::vector<storage::BlockStore::AccessReport> reports;
  reports.reserve(request->accesses_size());
  for (const v1::AccessReport& a : request->accesses()) {
    if (absl::Status s = NamespaceAllowed(*caller, a.namespace_()); !s.ok()) {
      return ToGrpc(s);
    }
    absl::StatusOr<storage::BlockKey> key =
        storage::BlockKey::Make(a.namespace_(), a.id());
    if (!key.ok()) return ToGrpc(key.status());
    reports.push_back({*std::move(key), a.count()});
  }
  const storage::BlockStore::ReportResult r = store_->ReportAccesses(reports);
  response->set_accepted(r.accepted);
  response->set_unknown(r.unknown);
  return grpc::Status::OK;
}

}  // namespace tensorpager::server
