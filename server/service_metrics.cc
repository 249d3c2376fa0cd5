#include "server/service_metrics.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/metrics/buckets.h"
#include "server/metrics/build_info.h"
#include "storage/block_types.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::server {
namespace {

// The gRPC status code names, as clients see them.
const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}

// What server.cc registers besides tensorpager.v1.TensorPager: gRPC's
// health service and server reflection (either version, by gRPC release).
// Their protos are not all in this binary's descriptor pool, so they are
// listed.
constexpr absl::string_view kLibraryMethods[] = {
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
};

// Path -> label ("/tensorpager.v1.TensorPager/Access" -> "Access") for
// every method tensorpagerd serves; the service's own come from its
// descriptor, so a new RPC gets its series without an edit here.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>>
ServedMethodLabels() {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::TensorPager::service_full_name());
  if (service == nullptr) {
    return absl::InternalError(absl::StrCat(
        "no descriptor for ", v1::TensorPager::service_full_name()));
  }
  absl::flat_hash_map<std::string, std::string> labels;
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string& name = service->method(i)->name();
    labels.emplace(absl::StrCat("/", service->full_name(), "/", name), name);
  }
  for (absl::string_view path : kLibraryMethods) {
    labels.emplace(path, path.substr(path.rfind('/') + 1));
  }
  return labels;
}

class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(ServiceMetrics* metrics, const std::string& method)
      : metrics_(metrics), method_(method), start_(absl::Now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->RecordRpc(method_, methods->GetSendStatus().error_code(),
                          absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  ServiceMetrics* metrics_;
  const std::string& method_;  // from MethodLabel(), lives as long
  const absl::Time start_;
};

class RpcInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(ServiceMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // gRPC takes ownership of the returned interceptor.
    return std::make_unique<RpcInterceptor>(
               metrics_, metrics_->MethodLabel(
                             info->method() == nullptr ? "" : info->method()))
        .release();
  }

 private:
  ServiceMetrics* metrics_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ServiceMetrics>> ServiceMetrics::Create() {
  std::unique_ptr<ServiceMetrics> m(new ServiceMetrics());
  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> labels =
      ServedMethodLabels();
  if (!labels.ok()) return labels.status();
  m->method_labels_ = *std::move(labels);
  metrics::Registry& r = m->registry_;
  absl::StatusOr<std::vector<double>> latency =
      metrics::ExponentialBuckets(0.0001, 2, 18);  // 100 us .. 13 s
  if (!latency.ok()) return latency.status();

  auto rpcs = r.AddCounter({"tensorpager_rpc_requests_total",
                            "RPCs handled, by method and status code.",
                            {"method", "code"}});
  if (!rpcs.ok()) return rpcs.status();
  m->rpcs_ = *rpcs;
  auto rpc_seconds =
      r.AddHistogram({"tensorpager_rpc_duration_seconds",
                      "Time from an RPC's arrival to its status, by method.",
                      {"method"}},
                     *latency);
  if (!rpc_seconds.ok()) return rpc_seconds.status();
  m->rpc_seconds_ = *rpc_seconds;

  auto out_bytes = r.AddCounter({"tensorpager_swap_out_bytes_total",
                                 "Bytes moved from the RAM tier to the NVMe "
                                 "tier (or dropped as clean copies).",
                                 {}});
  auto in_bytes = r.AddCounter({"tensorpager_swap_in_bytes_total",
                                "Bytes moved from the NVMe tier to the RAM "
                                "tier.",
                                {}});
  auto out_seconds = r.AddHistogram(
      {"tensorpager_swap_out_duration_seconds",
       "Duration of one swap-out batch (write, sync, metadata commit).",
       {}},
      *latency);
  auto in_seconds =
      r.AddHistogram({"tensorpager_swap_in_duration_seconds",
                      "Duration of one block's swap-in (read and checksum).",
                      {}},
                     *latency);
  auto accesses = r.AddCounter({"tensorpager_accesses_total",
                                "Access RPCs by result: ram_hit, disk_hit "
                                "(swapped in), miss (unknown), lost.",
                                {"result"}});
  for (const absl::Status& s :
       {out_bytes.status(), in_bytes.status(), out_seconds.status(),
        in_seconds.status(), accesses.status()}) {
    if (!s.ok()) return s;
  }
  m->swap_out_bytes_ = &(*out_bytes)->WithLabels({});
  m->swap_in_bytes_ = &(*in_bytes)->WithLabels({});
  m->swap_out_seconds_ = &(*out_seconds)->WithLabels({});
  m->swap_in_seconds_ = &(*in_seconds)->WithLabels({});
  m->accesses_ = {&(*accesses)->WithLabels({"ram_hit"}),
                  &(*accesses)->WithLabels({"disk_hit"}),
                  &(*accesses)->WithLabels({"miss"}),
                  &(*accesses)->WithLabels({"lost"})};
  if (absl::Status s = metrics::AddBuildInfo(r, metrics::CurrentBuildInfo());
      !s.ok()) {
    return s;
  }
  return m;
}

storage::StoreStats ServiceMetrics::CachedStats() const {
  MutexLock lock(&stats_mu_);
  const absl::Time now = absl::Now();
  if (now - stats_at_ > absl::Milliseconds(500)) {
    stats_ = store_->Stats();
    stats_at_ = now;
  }
  return stats_;
}

absl::Status ServiceMetrics::Attach(const storage::BlockStore* store,
                                    const PressureMonitor* pressure) {
  store_ = store;
  metrics::Registry& r = registry_;
  using metrics::SampleSink;
  auto gauge = [&](const char* name, const char* help,
                   std::function<double(const storage::StoreStats&)> f) {
    return r.AddGaugeCallback({name, help, {}},
                              [this, f] { return f(CachedStats()); });
  };
  auto counter = [&](const char* name, const char* help,
                     std::function<double(const storage::StoreStats&)> f) {
    return r.AddCounterCallback({name, help, {}},
                                [this, f] { return f(CachedStats()); });
  };
  const std::vector<absl::Status> results = {
      r.AddGaugeCallback(
          {"tensorpager_tier_blocks",
           "Blocks per tier (a clean RAM copy of a disk block counts in both).",
           {"tier"}},
          [this](SampleSink& sink) {
            const storage::StoreStats s = CachedStats();
            sink.Add({"ram"}, s.blocks_in_ram);
            sink.Add({"disk"}, s.blocks_on_disk);
          }),
      r.AddGaugeCallback({"tensorpager_tier_bytes",
                          "Logical bytes of the blocks held per tier.",
                          {"tier"}},
                         [this](SampleSink& sink) {
                           const storage::StoreStats s = CachedStats();
                           sink.Add({"ram"}, s.ram_bytes);
                           sink.Add({"disk"}, s.disk_bytes);
                         }),
      r.AddGaugeCallback({"tensorpager_region_blocks",
                          "Registered blocks per region type.",
                          {"region_type"}},
                         [this](SampleSink& sink) {
                           const storage::StoreStats s = CachedStats();
                           for (int i = 1; i < storage::kNumRegionTypes; ++i) {
                             sink.Add({storage::RegionTypeName(
                                          static_cast<storage::RegionType>(i))},
                                      s.blocks_by_region[i]);
                           }
                         }),
      r.AddGaugeCallback({"tensorpager_region_bytes",
                          "Logical bytes of registered blocks per region type.",
                          {"region_type"}},
                         [this](SampleSink& sink) {
                           const storage::StoreStats s = CachedStats();
                           for (int i = 1; i < storage::kNumRegionTypes; ++i) {
                             sink.Add({storage::RegionTypeName(
                                          static_cast<storage::RegionType>(i))},
                                      s.bytes_by_region[i]);
                           }
                         }),
      gauge("tensorpager_blocks_registered", "Blocks registered.",
            [](const auto& s) { return s.blocks_registered; }),
      gauge("tensorpager_pinned_blocks", "Pinned blocks (never leave RAM).",
            [](const auto& s) { return s.blocks_pinned; }),
      gauge("tensorpager_pinned_bytes", "Logical bytes of pinned blocks.",
            [](const auto& s) { return s.pinned_bytes; }),
      gauge("tensorpager_blocks_lost",
            "Blocks whose bytes did not survive (restart or checksum).",
            [](const auto& s) { return s.blocks_lost; }),
      gauge("tensorpager_ram_budget_bytes",
            "Current byte budget of the RAM tier (shrinks under pressure).",
            [](const auto& s) { return s.ram_budget_bytes; }),
      gauge("tensorpager_disk_capacity_bytes",
            "Largest size of the NVMe tier (--max_swap_size).",
            [](const auto& s) { return s.disk.capacity_bytes; }),
      gauge("tensorpager_disk_used_bytes",
            "Bytes of the NVMe tier held by block extents.",
            [](const auto& s) { return s.disk.used_bytes; }),
      gauge("tensorpager_disk_free_bytes", "Free bytes of the NVMe tier.",
            [](const auto& s) { return s.disk.free_bytes; }),
      gauge("tensorpager_disk_fragmentation_ratio",
            "1 - largest free range / free bytes of the NVMe tier.",
            [](const auto& s) { return s.disk.fragmentation; }),
      gauge("tensorpager_disk_stored_bytes",
            "Bytes of the NVMe tier's block images as stored (after "
            "compression).",
            [](const auto& s) { return s.disk_stored_bytes; }),
      gauge("tensorpager_compression_ratio",
            "Logical / stored bytes over the NVMe tier's blocks (0 when the "
            "tier is empty).",
            [](const auto& s) { return s.compression_ratio(); }),
      gauge("tensorpager_compressed_blocks",
            "Blocks whose disk copy is stored compressed.",
            [](const auto& s) { return s.blocks_compressed; }),
      counter("tensorpager_compress_attempts_total",
              "Disk copies written with a codec asked for.",
              [](const auto& s) { return s.compress_attempts; }),
      counter("tensorpager_compress_skipped_total",
              "Disk copies stored raw because they compressed worse than "
              "--compression_min_ratio.",
              [](const auto& s) { return s.compress_skipped; }),
      gauge("tensorpager_buffer_pool_bytes",
            "Free block buffers kept for reuse (within the RAM budget).",
            [](const auto& s) { return s.buffers.cached_bytes; }),
      counter("tensorpager_buffers_reused_total",
              "Block buffers served from the pool instead of fresh memory.",
              [](const auto& s) { return s.buffers.reused; }),
      counter("tensorpager_buffers_allocated_total",
              "Block buffers that needed fresh memory.",
              [](const auto& s) { return s.buffers.allocated; }),
      gauge("tensorpager_io_inflight_requests",
            "Block reads and writes in flight in the I/O engine.",
            [](const auto& s) { return s.io_in_flight; }),
      counter("tensorpager_prefetched_blocks_total",
              "Sequence members swapped in ahead of use.",
              [](const auto& s) { return s.prefetched; }),
      counter("tensorpager_prefetch_hits_total",
              "Prefetched blocks accessed afterwards.",
              [](const auto& s) { return s.prefetch_hits; }),
      counter("tensorpager_prefetch_wasted_total",
              "Prefetched blocks that left RAM before any access.",
              [](const auto& s) { return s.prefetch_wasted; }),
      counter("tensorpager_reported_accesses_total",
              "Accesses SDK clients served locally and reported in batches.",
              [](const auto& s) { return s.accesses_reported; }),
      r.AddGaugeCallback({"tensorpager_pressure_ratio",
                          "Usage ratio (used / total) per resource.",
                          {"resource"}},
                         [pressure](SampleSink& sink) {
                           for (const ResourceSnapshot& p :
                                pressure->Snapshots()) {
                             if (p.present) sink.Add({p.name}, p.ratio);
                           }
                         }),
      r.AddGaugeCallback({"tensorpager_pressure_smoothed_ratio",
                          "Exponentially smoothed usage ratio per resource.",
                          {"resource"}},
                         [pressure](SampleSink& sink) {
                           for (const ResourceSnapshot& p :
                                pressure->Snapshots()) {
                             if (p.present)
                               sink.Add({p.name}, p.smoothed_ratio);
                           }
                         }),
      r.AddGaugeCallback(
          {"tensorpager_pressure_slope_per_second",
           "Trend of the usage ratio per resource (ratio per second).",
           {"resource"}},
          [pressure](SampleSink& sink) {
            for (const ResourceSnapshot& p : pressure->Snapshots()) {
              if (p.present) sink.Add({p.name}, p.slope_per_second);
            }
          }),
      r.AddGaugeCallback(
          {"tensorpager_pressure_seconds_to_critical",
           "Predicted seconds until CRITICAL at the current trend "
           "(absent while usage is not rising).",
           {"resource"}},
          [pressure](SampleSink& sink) {
            for (const ResourceSnapshot& p : pressure->Snapshots()) {
              if (p.present && p.seconds_to_critical) {
                sink.Add({p.name}, *p.seconds_to_critical);
              }
            }
          }),
      r.AddGaugeCallback(
          {"tensorpager_pressure_level",
           "Pressure level per resource: 0 LOW, 1 MEDIUM, 2 HIGH, 3 "
           "CRITICAL.",
           {"resource"}},
          [pressure](SampleSink& sink) {
            for (const ResourceSnapshot& p : pressure->Snapshots()) {
              if (p.present) {
                sink.Add({p.name}, static_cast<double>(p.level));
              }
            }
          }),
  };
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void ServiceMetrics::OnSwapOut(uint64_t bytes, absl::Duration duration) {
  swap_out_bytes_->Increment(bytes);
  swap_out_seconds_->Observe(absl::ToDoubleSeconds(duration));
}

void ServiceMetrics::OnSwapIn(uint64_t bytes, absl::Duration duration) {
  swap_in_bytes_->Increment(bytes);
  swap_in_seconds_->Observe(absl::ToDoubleSeconds(duration));
}

void ServiceMetrics::OnAccess(storage::AccessResult result) {
  accesses_[static_cast<int>(result)]->Increment();
}

const std::string& ServiceMetrics::MethodLabel(absl::string_view path) const {
  const auto it = method_labels_.find(path);
  return it == method_labels_.end() ? other_method_label_ : it->second;
}

void ServiceMetrics::RecordRpc(const std::string& method, grpc::StatusCode code,
                               absl::Duration latency) {
  rpcs_->WithLabels({method, CodeName(code)}).Increment();
  rpc_seconds_->WithLabels({method}).Observe(absl::ToDoubleSeconds(latency));
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServiceMetrics::MakeInterceptorFactory() {
  return std::make_unique<RpcInterceptorFactory>(this);
}

}  // namespace tensorpager::server
