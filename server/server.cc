#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/pressure/nvml_gpu_source.h"
#include "server/server_credentials.h"
#include "storage/base/allocator_tuning.h"
#include "storage/base/byte_size.h"
#include "storage/base/log.h"
#include "storage/base/output_file.h"

namespace tensorpager::server {

using base::FormatByteSize;
using base::WriteOutputFile;

namespace {

constexpr char kServiceName[] = "tensorpager.v1.TensorPager";
constexpr int kHttp2FrameBytes = 4 << 20;
constexpr int kHttp2WindowBytes = 16 << 20;

// Pollers see the whole file or none; a FIFO (or /dev/null) is written in
// place rather than replaced (output_file.h).
absl::Status WriteReadyFile(const std::string& path, int grpc_port,
                            int metrics_port) {
  const absl::Status s = WriteOutputFile(
      path, absl::StrCat("grpc_port=", grpc_port,
                         "\nmetrics_port=", metrics_port, "\n"));
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("--ready_file: ", s.message()));
}

PressureThresholds Thresholds(const std::array<double, 3>& t) {
  return PressureThresholds{t[0], t[1], t[2]};
}

// Share of the configured RAM budget kept at each host pressure level: the
// tier gives memory back to the inference server as the host fills up.
double BudgetFactor(PressureLevel level) {
  switch (level) {
    case PressureLevel::kLow:
      return 1.0;
    case PressureLevel::kMedium:
      return 0.85;
    case PressureLevel::kHigh:
      return 0.6;
    case PressureLevel::kCritical:
      return 0.3;
  }
  return 1.0;
}

}  // namespace

absl::Status Server::ChooseProfile(std::unique_ptr<GpuSource>* gpu) {
  absl::StatusOr<ProfileKind> requested = ParseProfileKind(config_.profile);
  if (!requested.ok()) return requested.status();
  absl::StatusOr<std::unique_ptr<NvmlGpuSource>> nvml = NvmlGpuSource::Open();
  if (nvml.ok()) *gpu = *std::move(nvml);
  HardwareDetectOptions detect;
  detect.data_dir = std::filesystem::absolute(config_.data_dir).string();
  detect.gpu_source = gpu->get();
  absl::StatusOr<HardwareInfo> hardware = DetectHardware(detect);
  if (!hardware.ok()) return hardware.status();
  profile_ = server::ChooseProfile(*requested, *hardware);
  const ProfileDefaults& d = profile_.defaults;
  const auto unset = [&](const char* name) {
    return !config_.explicit_settings.contains(name);
  };
  if (unset("algorithm")) config_.algorithm = d.algorithm;
  if (unset("swap_threshold")) {
    config_.swap_threshold = d.swap_threshold;
    config_.swap_target = std::min(config_.swap_target, d.swap_threshold);
  }
  if (unset("io_block_size")) config_.io_block_bytes = d.io_block_bytes;
  if (unset("io_queue_depth")) config_.io_queue_depth = d.io_queue_depth;
  if (unset("max_concurrent_swaps")) {
    config_.max_concurrent_swaps = d.max_concurrent_swaps;
  }
  if (unset("ram_budget") || config_.ram_budget_bytes == 0) {
    config_.ram_budget_bytes = static_cast<uint64_t>(
        d.ram_budget_fraction * static_cast<double>(hardware->ram_bytes));
  }
  TP_LOG(INFO) << profile_.reason;
  return ValidateConfig(config_);
}

void Server::OnPressure(const PressureEvent& event) {
  const ResourceSnapshot& now = event.current;
  TP_LOG(INFO) << "pressure " << now.name << ": "
               << PressureLevelName(event.previous_level) << " -> "
               << PressureLevelName(now.level) << " (usage "
               << static_cast<int>(now.ratio * 100) << "% of "
               << FormatByteSize(now.total_bytes) << ", " << now.source << ")";
  if (now.name != kHostRamResource) return;
  const auto budget = static_cast<uint64_t>(
      BudgetFactor(now.level) * static_cast<double>(base_ram_budget_));
  if (budget == store_->ram_budget()) return;
  TP_LOG(INFO) << "RAM tier budget " << FormatByteSize(store_->ram_budget())
               << " -> " << FormatByteSize(budget) << " for host pressure "
               << PressureLevelName(now.level);
  store_->SetRamBudget(budget);
  policy_thread_->Wake();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerConfig config) {
  std::unique_ptr<Server> server(new Server(std::move(config)));
  std::unique_ptr<GpuSource> gpu;
  if (absl::Status s = server->ChooseProfile(&gpu); !s.ok()) return s;
  const ServerConfig& c = server->config_;
  absl::StatusOr<storage::BlockStoreOptions> options = StoreOptionsFor(c);
  if (!options.ok()) return options.status();
  options->max_block_bytes =
      std::min(options->max_block_bytes, options->ram_budget_bytes);
  server->base_ram_budget_ = options->ram_budget_bytes;
  if (server->config_.max_inflight_bytes == 0) {
    server->config_.max_inflight_bytes =
        std::max(options->max_block_bytes, options->ram_budget_bytes / 4);
  }
  absl::StatusOr<std::unique_ptr<ServiceMetrics>> metrics =
      ServiceMetrics::Create();
  if (!metrics.ok()) return metrics.status();
  server->metrics_ = *std::move(metrics);
  options->observer = server->metrics_.get();
  TP_LOG(INFO) << "opening data dir " << c.data_dir << " (RAM tier budget "
               << FormatByteSize(options->ram_budget_bytes)
               << ", NVMe tier up to "
               << FormatByteSize(options->max_swap_bytes) << ", policy "
               << c.algorithm << ", compression " << c.compression
               << (c.compression_region_types_text.empty()
                       ? ""
                       : " with " + c.compression_region_types_text)
               << ", " << c.max_concurrent_swaps << " concurrent swaps)";
  absl::StatusOr<std::unique_ptr<storage::BlockStore>> store =
      storage::BlockStore::Open(*std::move(options));
  if (!store.ok()) return store.status();
  server->store_ = *std::move(store);
  // Recovery's scratch (a few dozen bytes per block, in vectors below the
  // mmap threshold) stays in the heap, which is not trimmed by itself
  // (allocator_tuning.h): hand it back before serving.
  base::ReturnFreeHeapPages(0);
  const storage::RecoveryReport& rec = server->store_->recovery();
  TP_LOG(INFO) << "recovered " << rec.blocks
               << " blocks: " << rec.blocks_on_disk << " on disk ("
               << FormatByteSize(rec.bytes_on_disk) << "), " << rec.blocks_lost
               << " lost (only in RAM at the last stop), in "
               << absl::FormatDuration(rec.duration) << "; I/O engine "
               << server->store_->Stats().io_engine;

  PressureMonitorOptions po;
  po.interval = absl::Milliseconds(c.pressure_interval_ms);
  po.ram_thresholds = Thresholds(c.ram_thresholds);
  po.gpu_thresholds = Thresholds(c.gpu_thresholds);
  po.gpu_source = std::move(gpu);
  po.use_nvml = false;  // the profile already opened NVML when present
  absl::StatusOr<std::unique_ptr<PressureMonitor>> pressure =
      PressureMonitor::Create(std::move(po));
  if (!pressure.ok()) return pressure.status();
  server->pressure_ = *std::move(pressure);
  TP_LOG(INFO) << "pressure monitor: " << server->pressure_->description();

  server->policy_thread_ = std::make_unique<PolicyThread>(
      server->store_.get(),
      PolicyThread::Options{c.swap_threshold, c.swap_target,
                            absl::Milliseconds(c.policy_interval_ms)});
  server->store_->SetRamHighWater(
      c.swap_threshold,
      [policy = server->policy_thread_.get()] { policy->Wake(); });
  Server* raw = server.get();
  server->pressure_subscription_ = server->pressure_->Subscribe(
      [raw](const PressureEvent& e) { raw->OnPressure(e); });
  if (std::optional<ResourceSnapshot> ram =
          server->pressure_->Find(kHostRamResource);
      ram && ram->level != PressureLevel::kLow) {
    server->OnPressure(PressureEvent{0, true, PressureLevel::kLow, *ram});
  }
  if (absl::Status s = server->pressure_->Start(); !s.ok()) return s;

  if (absl::Status s = server->metrics_->Attach(server->store_.get(),
                                                server->pressure_.get());
      !s.ok()) {
    return s;
  }
  if (c.tenants_file.empty()) {
    server->auth_ = std::make_unique<auth::Authenticator>();
  } else {
    absl::StatusOr<std::unique_ptr<auth::Authenticator>> auth =
        auth::Authenticator::Open(
            c.tenants_file,
            [raw](const std::string& peer) { return raw->peers_.UidOf(peer); });
    if (!auth.ok()) return auth.status();
    server->auth_ = *std::move(auth);
    if (absl::Status s = server->metrics_->AttachTenants(server->store_.get(),
                                                         server->auth_.get());
        !s.ok()) {
      return s;
    }
    // Eviction takes first from tenants above their share of the RAM
    // tier. A namespace two tenants share counts for the first listed.
    server->store_->SetShareGroups(
        [auth = server->auth_.get(),
         all_sealed = c.encryption_scope == "all"](absl::string_view ns) {
          for (const auto& tenant : auth->tenants()) {
            if (tenant->MayUse(ns)) {
              return storage::ShareGroup{tenant->name, tenant->quota.ram_bytes,
                                         tenant->quota.disk_bytes,
                                         all_sealed || tenant->encrypt};
            }
          }
          return storage::ShareGroup{};
        });
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(c);
  if (!credentials.ok()) return credentials.status();
  server->service_ = std::make_unique<TensorPagerService>(
      server->store_.get(), &server->config_, server->pressure_.get(),
      &server->profile_, server->auth_.get(), &server->peers_);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(c.grpc_address, *credentials, &server->grpc_port_);
  builder.RegisterService(server->service_.get());
  // Every call in flight holds a thread: a cap, so a flood of calls gets
  // RESOURCE_EXHAUSTED instead of exhausting the process's threads (the
  // service caps streams below this, so unary calls always find one).
  grpc::ResourceQuota quota("tensorpagerd");
  quota.SetMaxThreads(static_cast<int>(c.max_rpc_threads));
  builder.SetResourceQuota(quota);
  // Streams per connection: one connection cannot open unlimited calls.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 256);
  // Write chunks are 1 MiB; a batch carries up to --max_batch_bytes of
  // blocks and, per block, its name and attributes (an id and labels take
  // at most 2.3 KiB; 4 KiB leaves room for the envelope).
  const uint64_t message_bytes = std::max<uint64_t>(
      4 << 20,
      c.max_batch_bytes + uint64_t{c.max_batch_blocks} * 4096 + (1 << 20));
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<uint64_t>(message_bytes, std::numeric_limits<int>::max())));
  builder.SetMaxSendMessageSize(static_cast<int>(
      std::min<uint64_t>(message_bytes, std::numeric_limits<int>::max())));
  // Bulk transfers: big HTTP/2 frames and a deep stream window, so a 1 MiB
  // chunk is a few frames and the sender never stalls on flow control.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kHttp2FrameBytes);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                             kHttp2WindowBytes);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(server->metrics_->MakeInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", c.grpc_address,
                     "; is the port in use? pick another with --grpc_address"));
  }
  if (!c.unix_socket.empty()) {
    absl::StatusOr<mode_t> mode = ParseFileMode(c.unix_socket_mode);
    if (!mode.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--unix_socket_mode: ", mode.status().message()));
    }
    absl::StatusOr<std::unique_ptr<UnixSocketListener>> listener =
        UnixSocketListener::Start(
            UnixSocketOptions{c.unix_socket, *mode, c.unix_socket_group,
                              c.unix_socket_max_connections_per_uid},
            server->grpc_.get(), &server->peers_);
    if (!listener.ok()) return listener.status();
    server->unix_socket_ = *std::move(listener);
  }
  server->grpc_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  server->running_ = true;

  if (!c.encryption_key_file.empty()) {
    TP_LOG(INFO) << "NVMe tier encrypted with AES-256-GCM"
                 << (c.encryption_scope == "tenants"
                         ? " for the tenants marked 'encrypt: true'"
                         : "")
                 << "; new copies use the first key of "
                 << c.encryption_key_file;
  }
  TP_LOG(INFO) << "serving " << kServiceName << " on "
               << c.grpc_address.substr(0, c.grpc_address.rfind(':')) << ":"
               << server->grpc_port_ << ", " << DescribeTransportSecurity(c)
               << ", "
               << (c.tenants_file.empty()
                       ? std::string("no authentication (every caller may "
                                     "do everything)")
                       : absl::StrCat(server->auth_->tenants().size(),
                                      " tenant(s) from ", c.tenants_file));
  if (ServesOthersUnauthenticated(c)) {
    TP_LOG(WARNING) << "--allow_insecure: " << c.grpc_address
                    << " serves other hosts with no authentication; anyone "
                       "who reaches it may read, overwrite and delete every "
                       "block";
  }
  if (!c.metrics_address.empty()) {
    metrics::MetricsHttpServerOptions mo;
    mo.address = c.metrics_address;
    if (c.metrics_tls) {
      mo.tls = {c.tls_cert_file, c.tls_key_file, c.tls_client_ca_file};
    }
    if (c.metrics_require_token) {
      mo.authorize = [auth = server->auth_.get()](absl::string_view header) {
        auth::Credentials credentials;
        credentials.authorization = std::string(header);
        absl::StatusOr<auth::Caller> caller = auth->Authenticate(credentials);
        return caller.ok() && caller->admin();
      };
    }
    absl::StatusOr<std::unique_ptr<metrics::MetricsHttpServer>> http =
        metrics::MetricsHttpServer::Start(&server->metrics_->registry(), mo);
    if (!http.ok()) {
      return absl::Status(
          http.status().code(),
          absl::StrCat("metrics endpoint: ", http.status().message(),
                       "; pick another --metrics_address or leave it empty"));
    }
    server->metrics_http_ = *std::move(http);
    TP_LOG(INFO) << "Prometheus metrics on "
                 << (c.metrics_tls ? "https://" : "http://")
                 << c.metrics_address.substr(0, c.metrics_address.rfind(':'))
                 << ":" << server->metrics_http_->port() << "/metrics";
  }
  if (!c.ready_file.empty()) {
    if (absl::Status s = WriteReadyFile(c.ready_file, server->grpc_port_,
                                        server->metrics_port());
        !s.ok()) {
      return s;
    }
  }
  return server;
}

void Server::Shutdown() {
  if (!running_) return;
  running_ = false;
  TP_LOG(INFO) << "shutting down: finishing in-flight RPCs (up to "
               << config_.shutdown_grace_ms << " ms)";
  grpc_->GetHealthCheckService()->SetServingStatus(false);
  metrics_http_.reset();
  unix_socket_.reset();
  // WatchPressure streams end when the monitor stops.
  pressure_subscription_.Reset();
  pressure_->Stop();
  grpc_->Shutdown(std::chrono::system_clock::now() +
                  std::chrono::milliseconds(config_.shutdown_grace_ms));
  grpc_->Wait();
  store_->SetRamHighWater(1.0, nullptr);  // the thread it wakes is going
  policy_thread_.reset();
  service_.reset();
  store_.reset();
  TP_LOG(INFO) << "stopped; metadata closed cleanly";
}

Server::~Server() { Shutdown(); }

absl::Status Server::ReloadTenants() {
  if (auth_ == nullptr || !auth_->enabled()) {
    TP_LOG(INFO) << "SIGHUP: no --tenants_file to reload";
    return absl::OkStatus();
  }
  return auth_->Reload();
}

}  // namespace tensorpager::server
