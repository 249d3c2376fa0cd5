#include "client_sdk/src/usage_reporter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_sdk/src/rpc_util.h"

namespace tensorpager::internal {
namespace {

// Keeps one ReportAccesses message far below the 4 MiB message limit.
constexpr size_t kMaxReportsPerRequest = 8192;
constexpr absl::Duration kFinalReportTimeout = absl::Seconds(2);
// Reports are hints: a stalled server must not hold the thread for long.
constexpr absl::Duration kReportTimeout = absl::Seconds(5);

}  // namespace

UsageReporter::UsageReporter(v1::TensorPager::Stub* stub, std::string client_id,
                             const ClientOptions& options,
                             DeviceRuntime* runtime, LocalCache* cache,
                             base::Logger* log, bool apply_pressure)
    : stub_(stub),
      client_id_(std::move(client_id)),
      options_(options),
      runtime_(runtime),
      cache_(cache),
      log_(log),
      apply_pressure_(apply_pressure) {
  thread_ = std::thread([this] { Loop(); });
}

void UsageReporter::Loop() {
  const absl::Duration usage_every = options_.reporting.usage_interval;
  absl::Time next_usage = absl::Now();
  std::vector<v1::AccessReport> reports;
  while (!stopping_.load()) {
    absl::Duration wait = options_.reporting.access_interval;
    if (usage_every > absl::ZeroDuration()) {
      wait = std::min(wait,
                      std::max(next_usage - absl::Now(), absl::ZeroDuration()));
    }
    reports.clear();
    cache_->TakeReports(wait, &reports);
    SendAccesses(&reports);
    if (usage_every > absl::ZeroDuration() && absl::Now() >= next_usage &&
        !stopping_.load()) {
      SendUsage();
      next_usage = absl::Now() + usage_every;
    }
  }
  reports.clear();
  cache_->TakeReports(absl::ZeroDuration(), &reports);
  SendAccesses(&reports);
}

void UsageReporter::SendAccesses(std::vector<v1::AccessReport>* reports) {
  for (size_t start = 0; start < reports->size();
       start += kMaxReportsPerRequest) {
    const size_t end = std::min(reports->size(), start + kMaxReportsPerRequest);
    v1::ReportAccessesRequest req;
    req.set_client_id(client_id_);
    uint64_t accesses = 0;
    for (size_t i = start; i < end; ++i) {
      accesses += (*reports)[i].count();
      *req.add_accesses() = std::move((*reports)[i]);
    }
    grpc::ClientContext ctx;
    SetDeadline(ctx, stopping_.load()
                         ? kFinalReportTimeout
                         : std::min(options_.timeout, kReportTimeout));
    v1::ReportAccessesResponse resp;
    const absl::Status s = FromGrpc(stub_->ReportAccesses(&ctx, req, &resp));
    if (s.ok()) {
      cache_->CountReported(accesses);
    } else if (s.code() == absl::StatusCode::kUnimplemented) {
      log_->WarningOnce("report-unimplemented",
                        "the server does not implement ReportAccesses; "
                        "accesses served by the local cache stay unreported");
    } else {
      // The counts are hints for the server's policy: drop them rather
      // than pile them up while the server is away.
      log_->WarningOnce(
          absl::StrCat("report-", s.code()),
          absl::StrCat("ReportAccesses failed (", s.ToString(), "); dropping ",
                       accesses, " access counts"));
    }
  }
}

void UsageReporter::SendUsage() {
  v1::ReportClientUsageRequest req;
  req.set_client_id(client_id_);
  req.set_host_cache_bytes(cache_->HeldBytes(Placement::Host()));
  for (int d = 0; d < runtime_->device_count(); ++d) {
    uint64_t free_bytes = 0, total_bytes = 0;
    if (absl::Status s = runtime_->MemoryInfo(d, &free_bytes, &total_bytes);
        !s.ok()) {
      log_->WarningOnce(
          absl::StrCat("meminfo-", d),
          absl::StrCat("cannot read GPU ", d, " memory use: ", s.ToString()));
      continue;
    }
    v1::GpuUsage* g = req.add_gpus();
    g->set_device(d);
    g->set_used_bytes(total_bytes - free_bytes);
    g->set_total_bytes(total_bytes);
    g->set_cached_bytes(cache_->HeldBytes(Placement::Device(d)));
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::min(options_.timeout, kReportTimeout));
  v1::ReportClientUsageResponse resp;
  const absl::Status s = FromGrpc(stub_->ReportClientUsage(&ctx, req, &resp));
  if (s.code() == absl::StatusCode::kUnimplemented) {
    log_->WarningOnce("usage-unimplemented",
                      "the server does not implement ReportClientUsage; its "
                      "Status will not show this client's GPU use");
    return;
  }
  if (!s.ok()) {
    log_->WarningOnce(absl::StrCat("usage-", s.code()),
                      absl::StrCat("ReportClientUsage failed: ", s.ToString()));
    return;
  }
  if (!apply_pressure_) return;
  for (const v1::ResourcePressure& p : resp.pressure()) {
    if (p.present()) cache_->ApplyPressure(p.resource(), p.level());
  }
}

void UsageReporter::Stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  cache_->StopWaiting();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tensorpager::internal
