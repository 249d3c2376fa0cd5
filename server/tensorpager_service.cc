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

double Ratio(double num, double den) { return den > 0 ? num / den : 0; }

// How long a client's usage report stays in Status without a refresh.
constexpr absl::Duration kClientReportTtl = absl::Seconds(30);
constexpr size_t kMaxClients = 1024;
// A usage report is kept for kClientReportTtl: bound what one may hold.
constexpr int kMaxGpusPerReport = 64;
constexpr int kMaxAccessReports = 10000;

void ToProto(const ResourceSnapshot& in, const ServerConfig& config,
             v1::ResourcePressure* out) {
  out->set_resource(in.name);
  out->set_present(in.present);
  out->set_level(ToProto(in.level));
  out->set_used_bytes(in.used_bytes);
  out->set_total_bytes(in.total_bytes);
  out->set_usage_ratio(in.ratio);
  out->set_source(in.source);
  out->set_smoothed_ratio(in.smoothed_ratio);
  out->set_slope_per_second(in.slope_per_second);
  out->set_seconds_to_critical(in.seconds_to_critical.value_or(-1));
  if (in.psi) {
    out->set_psi_some_avg10(in.psi->some_avg10);
    out->set_psi_full_avg10(in.psi->full_avg10);
  }
  const auto& t = in.name == kHostRamResource ? config.ram_thresholds
                                              : config.gpu_thresholds;
  out->set_threshold_medium(t[0]);
  out->set_threshold_high(t[1]);
  out->set_threshold_critical(t[2]);
}

}  // namespace

TensorPagerService::TensorPagerService(storage::BlockStore* store,
                                       const ServerConfig* config,
                                       PressureMonitor* pressure,
                                       const HardwareProfile* profile,
                                       auth::Authenticator* auth)
    : store_(store),
      config_(config),
      pressure_(pressure),
      profile_(profile),
      auth_(auth),
      started_(absl::Now()),
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
    if (absl::Status s = AdmitNewBlock(caller, attrs->size_bytes); !s.ok()) {
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

grpc::Status TensorPagerService::Status(grpc::ServerContext* context,
                                        const v1::StatusRequest*,
                                        v1::StatusResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return ToGrpc(caller.status());
  const storage::StoreStats s = store_->Stats();
  response->set_version(TENSORPAGER_VERSION);
  response->set_algorithm(ToProto(s.algorithm));
  response->set_swap_threshold(config_->swap_threshold);
  response->set_max_block_bytes(config_->max_block_bytes);
  response->set_blocks_registered(s.blocks_registered);
  response->set_blocks_in_ram(s.blocks_in_ram);
  response->set_blocks_on_disk(s.blocks_on_disk);
  response->set_blocks_pinned(s.blocks_pinned);
  response->set_blocks_lost(s.blocks_lost);
  response->set_blocks_empty(s.blocks_empty);
  response->set_pinned_bytes(s.pinned_bytes);

  v1::TierStatus* ram = response->mutable_ram();
  ram->set_blocks(s.blocks_in_ram);
  ram->set_bytes(s.ram_bytes);
  ram->set_capacity_bytes(s.ram_budget_bytes);
  ram->set_used_bytes(s.ram_bytes);
  ram->set_utilization(Ratio(s.ram_bytes, s.ram_budget_bytes));
  v1::TierStatus* disk = response->mutable_disk();
  disk->set_blocks(s.blocks_on_disk);
  disk->set_bytes(s.disk_bytes);
  disk->set_capacity_bytes(s.disk.capacity_bytes);
  disk->set_used_bytes(s.disk.used_bytes);
  disk->set_utilization(Ratio(s.disk.used_bytes, s.disk.capacity_bytes));
  disk->set_stored_bytes(s.disk_stored_bytes);
  disk->set_compressed_blocks(s.blocks_compressed);

  v1::Efficiency* e = response->mutable_efficiency();
  e->set_accesses(s.ram_hits + s.disk_hits + s.misses);
  e->set_ram_hits(s.ram_hits);
  e->set_disk_hits(s.disk_hits);
  e->set_misses(s.misses);
  e->set_hit_rate(Ratio(s.ram_hits, s.ram_hits + s.disk_hits));
  e->set_swap_outs(s.swap_outs);
  e->set_swap_ins(s.swap_ins);
  e->set_bytes_swapped_out(s.bytes_swapped_out);
  e->set_bytes_swapped_in(s.bytes_swapped_in);
  e->set_avg_swap_out_ms(
      Ratio(absl::ToDoubleMilliseconds(s.swap_out_time), s.swap_outs));
  e->set_avg_swap_in_ms(
      Ratio(absl::ToDoubleMilliseconds(s.swap_in_time), s.swap_ins));
  e->set_swap_space_utilization(
      Ratio(s.disk.used_bytes, s.disk.capacity_bytes));

  response->set_io_engine(s.io_engine);
  response->set_data_dir(config_->data_dir);
  response->set_uptime_seconds(absl::ToInt64Seconds(absl::Now() - started_));
  response->set_swap_target(config_->swap_target);
  e->set_prefetched(s.prefetched);
  e->set_prefetch_hits(s.prefetch_hits);
  e->set_prefetch_wasted(s.prefetch_wasted);
  e->set_accesses_reported(s.accesses_reported);
  response->set_shared_memory_segments(segments_.size());
  response->set_shared_memory_rings(segments_.rings());
  response->set_inflight_bytes(inflight_.used());
  response->set_max_inflight_bytes(inflight_.limit());
  response->set_open_data_streams(data_slots_.open());
  response->set_open_watch_streams(watch_slots_.open());
  response->set_max_batch_blocks(config_->max_batch_blocks);
  response->set_max_batch_bytes(config_->max_batch_bytes);
  e->set_compression_ratio(s.compression_ratio());
  e->set_compress_attempts(s.compress_attempts);
  e->set_compress_skipped(s.compress_skipped);
  FillPressure(response->mutable_pressure());
  response->set_profile(std::string(ProfileKindName(profile_->kind)));
  response->set_profile_reason(profile_->reason);
  {
    MutexLock lock(&clients_mu_);
    const int64_t oldest = absl::ToUnixMillis(absl::Now() - kClientReportTtl);
    for (auto it = clients_.begin(); it != clients_.end();) {
      if (it->second.reported_unix_ms() < oldest) {
        it = clients_.erase(it);
      } else {
        *response->add_clients() = it->second;
        ++it;
      }
    }
  }
  FillTenantShares(*caller, response);
  return grpc::Status::OK;
}

void TensorPagerService::FillPressure(
    google::protobuf::RepeatedPtrField<v1::ResourcePressure>* out) const {
  for (const ResourceSnapshot& r : pressure_->Snapshots()) {
    ToProto(r, *config_, out->Add());
  }
}

grpc::Status TensorPagerService::WatchPressure(
    grpc::ServerContext* context, const v1::WatchPressureRequest* request,
    grpc::ServerWriter<v1::PressureEvent>* writer) {
  // Pressure is the host's, no tenant's: any authenticated caller.
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<CallSlots::Slot> slot = watch_slots_.Enter(CallerOf(context));
  if (!slot.ok()) return ToGrpc(slot.status());
  PressureState state = pressure_->Current();
  uint64_t sequence = state.sequence;
  auto send = [&](const ResourceSnapshot& r, PressureLevel previous) {
    v1::PressureEvent event;
    event.set_resource(r.name);
    event.set_previous_level(ToProto(previous));
    event.set_level(ToProto(r.level));
    event.set_unix_ms(absl::ToUnixMillis(r.sampled_at));
    ToProto(r, *config_, event.mutable_state());
    return writer->Write(event);
  };
  if (request->send_current()) {
    for (const ResourceSnapshot& r : state.resources) {
      if (!send(r, r.level)) return grpc::Status::OK;
    }
  }
  for (;;) {
    absl::StatusOr<PressureChanges> changes =
        pressure_->WaitForChange(sequence, absl::Now() + absl::Seconds(1),
                                 [context] { return context->IsCancelled(); });
    if (!changes.ok()) {
      if (changes.status().code() == absl::StatusCode::kCancelled) {
        return grpc::Status::OK;
      }
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "tensorpagerd is shutting down; reconnect");
    }
    if (changes->events_missed) {
      for (const ResourceSnapshot& r : pressure_->Current().resources) {
        if (!send(r, r.level)) return grpc::Status::OK;
      }
    }
    for (const PressureEvent& e : changes->events) {
      if (!send(e.current, e.previous_level)) return grpc::Status::OK;
    }
    sequence = changes->sequence;
  }
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

grpc::Status TensorPagerService::ReportClientUsage(
    grpc::ServerContext* context, const v1::ReportClientUsageRequest* request,
    v1::ReportClientUsageResponse* response) {
  absl::StatusOr<auth::Caller> caller = Authenticate(context);
  if (!caller.ok()) return ToGrpc(caller.status());
  const std::string& id = request->client_id();
  if (id.empty() || id.size() > storage::kMaxIdBytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "client_id must be 1 to 256 bytes");
  }
  if (request->gpus_size() > kMaxGpusPerReport) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("a report lists ", request->gpus_size(), " GPUs; at most ",
                     kMaxGpusPerReport, " are allowed"));
  }
  for (const v1::GpuUsage& g : request->gpus()) {
    if (g.device() >= static_cast<uint32_t>(kMaxGpusPerReport)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("gpu device ", g.device(),
                                       " is out of range; devices are 0 to ",
                                       kMaxGpusPerReport - 1));
    }
    if (g.total_bytes() == 0 || g.used_bytes() > g.total_bytes()) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("gpu ", g.device(),
                       ": need 0 < total_bytes and used_bytes <= total_bytes"));
    }
  }
  {
    MutexLock lock(&clients_mu_);
    if (!clients_.contains(id) && clients_.size() >= kMaxClients) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "too many clients report usage; retry later");
    }
    v1::ClientUsage& usage = clients_[id];
    usage.set_client_id(id);
    *usage.mutable_gpus() = request->gpus();
    usage.set_host_cache_bytes(request->host_cache_bytes());
    usage.set_reported_unix_ms(absl::ToUnixMillis(absl::Now()));
  }
  for (const v1::GpuUsage& g : request->gpus()) {
    if (absl::Status s = pressure_->ReportClientGpuUsage(
            id, g.device(), g.used_bytes(), g.total_bytes());
        !s.ok()) {
      return ToGrpc(s);
    }
  }
  // Fold the report in now, so the reply, Status and watchers see it
  // without waiting for the next sampling round.
  if (request->gpus_size() > 0) pressure_->SampleOnce();
  FillPressure(response->mutable_pressure());
  return grpc::Status::OK;
}

}  // namespace tensorpager::server
