// The service's RPCs about the server rather than its blocks: Status,
// WatchPressure and ReportClientUsage (the rest of the class is in
// tensorpager_service.cc, batch_rpcs.cc, shared_memory_rpcs.cc and
// service_access.cc).
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/proto_convert.h"
#include "server/proto_enums.h"
#include "server/tensorpager_service.h"  // the class these members belong to

namespace tensorpager::server {
namespace {
double Ratio(double num, double den) { return den > 0 ? num / den : 0; }

// How long a client's usage report stays in Status without a refresh.
constexpr absl::Duration kClientReportTtl = absl::Seconds(30);
constexpr size_t kMaxClients = 1024;
// A usage report is kept for kClientReportTtl: bound what one may hold.
constexpr int kMaxGpusPerReport = 64;

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
