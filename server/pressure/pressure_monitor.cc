#include "server/pressure/pressure_monitor.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "server/pressure/nvml_gpu_source.h"

namespace tensorpager::server {
namespace {

// How often WaitForChange re-checks its cancellation callback.
constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(100);
constexpr absl::Duration kMaxWaitSlice = absl::Hours(1);

absl::Status ValidateOptions(const PressureMonitorOptions& options) {
  if (options.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pressure interval must be positive, got ",
                     absl::FormatDuration(options.interval)));
  }
  if (absl::Status s =
          ValidateThresholds(options.ram_thresholds, "RAM pressure thresholds");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidateThresholds(options.gpu_thresholds, "GPU pressure thresholds");
      !s.ok()) {
    return s;
  }
  const double lowest =
      std::min(options.ram_thresholds.medium, options.gpu_thresholds.medium);
  if (!(options.hysteresis >= 0.0 && options.hysteresis < lowest)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pressure hysteresis must be in [0, ", lowest,
        ") (below the lowest MEDIUM threshold), got ", options.hysteresis));
  }
  if (absl::Status s = ValidatePsiThresholds(options.psi); !s.ok()) return s;
  if (options.trend_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pressure trend window must be positive, got ",
                     absl::FormatDuration(options.trend_window)));
  }
  if (!(options.min_rising_slope > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_rising_slope must be positive, got ", options.min_rising_slope));
  }
  if (options.client_report_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("client GPU report TTL must be positive, got ",
                     absl::FormatDuration(options.client_report_ttl)));
  }
  if (options.max_client_reports == 0 || options.event_history == 0) {
    return absl::InvalidArgumentError(
        "max_client_reports and event_history must be at least 1");
  }
  return absl::OkStatus();
}

std::string GpuName(uint32_t device) { return absl::StrCat("gpu", device); }

}  // namespace

PressureMonitor::Subscription::Subscription(Subscription&& other) noexcept
    : monitor_(std::exchange(other.monitor_, nullptr)),
      id_(std::exchange(other.id_, 0)) {}

PressureMonitor::Subscription& PressureMonitor::Subscription::operator=(
    Subscription&& other) noexcept {
  if (this != &other) {
    Reset();
    monitor_ = std::exchange(other.monitor_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

PressureMonitor::Subscription::~Subscription() { Reset(); }

void PressureMonitor::Subscription::Reset() {
  if (monitor_ != nullptr) monitor_->Unsubscribe(id_);
  monitor_ = nullptr;
  id_ = 0;
}

absl::StatusOr<std::unique_ptr<PressureMonitor>> PressureMonitor::Create(
    PressureMonitorOptions options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  auto monitor = absl::WrapUnique(new PressureMonitor(std::move(options)));
  // Without host RAM figures the monitor is useless; fail at startup with
  // the reason instead of serving "not present" forever.
  if (absl::StatusOr<HostMemoryReading> first = monitor->host_reader_.Read();
      !first.ok()) {
    return first.status();
  }
  monitor->SampleOnce();
  return monitor;
}

PressureMonitor::PressureMonitor(PressureMonitorOptions options)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : [] { return absl::Now(); }),
      host_reader_(RootedFs(options_.root)),
      gpu_source_(std::move(options_.gpu_source)),
      client_reports_(options_.client_report_ttl, options_.max_client_reports) {
  if (gpu_source_ == nullptr && options_.use_nvml) {
    absl::StatusOr<std::unique_ptr<NvmlGpuSource>> nvml = NvmlGpuSource::Open();
    if (nvml.ok()) {
      gpu_source_ = *std::move(nvml);
    } else {
      gpu_unavailable_ = absl::StrCat("NVML: ", nvml.status().message());
    }
  } else if (gpu_source_ == nullptr) {
    gpu_unavailable_ = "NVML disabled";
  }
  description_ = absl::StrCat(
      "host RAM: ", host_reader_.description(), "; GPU: ",
      gpu_source_ != nullptr ? gpu_source_->name() : gpu_unavailable_,
      " + SDK client reports");
}

PressureMonitor::~PressureMonitor() { Stop(); }

absl::Status PressureMonitor::Start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return absl::FailedPreconditionError(
          "pressure monitor was stopped; create a new one");
    }
    if (started_) {
      return absl::FailedPreconditionError(
          "pressure monitor is already running");
    }
    started_ = true;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void PressureMonitor::Stop() {
  std::lock_guard lifecycle(lifecycle_mu_);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PressureMonitor::Run() {
  pthread_setname_np(pthread_self(), "tp-pressure");
  const auto interval = absl::ToChronoNanoseconds(options_.interval);
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    SampleOnce();
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, interval, [this] { return stopping_; });
  }
}

std::vector<PressureMonitor::Observation> PressureMonitor::Observe(
    absl::Time now) {
  std::vector<Observation> observed;
  Observation host;
  host.snapshot.name = kHostRamResource;
  if (absl::StatusOr<HostMemoryReading> reading = host_reader_.Read();
      reading.ok()) {
    host.snapshot.present = true;
    host.snapshot.used_bytes = reading->used_bytes;
    host.snapshot.total_bytes = reading->total_bytes;
    host.snapshot.source = std::move(reading->source);
    host.snapshot.detail = std::move(reading->note);
    host.snapshot.psi = reading->psi;
  } else {
    host.snapshot.source = "none";
    host.snapshot.detail = std::string(reading.status().message());
  }
  observed.push_back(std::move(host));
  ObserveGpus(now, &observed);
  return observed;
}

void PressureMonitor::ObserveGpus(absl::Time now,
                                  std::vector<Observation>* out) {
  std::map<uint32_t, Observation> gpus;
  std::string nvml_problem = gpu_unavailable_;
  if (gpu_source_ != nullptr) {
    absl::StatusOr<std::vector<GpuMemory>> sampled = gpu_source_->Sample();
    if (sampled.ok()) {
      for (GpuMemory& gpu : *sampled) {
        Observation& o = gpus[gpu.device];
        o.is_gpu = true;
        o.snapshot.present = gpu.total_bytes > 0;
        o.snapshot.used_bytes = gpu.used_bytes;
        o.snapshot.total_bytes = gpu.total_bytes;
        o.snapshot.source = std::string(gpu_source_->name());
        o.snapshot.detail = std::move(gpu.name);
      }
    } else {
      nvml_problem =
          absl::StrCat(gpu_source_->name(), ": ", sampled.status().message());
    }
  }
  // The server's own view wins; SDK reports fill in devices it cannot see.
  for (const ReportedGpu& reported : client_reports_.Current(now)) {
    Observation& o = gpus[reported.device];
    if (o.snapshot.present) continue;
    o.is_gpu = true;
    o.snapshot.present = true;
    o.snapshot.used_bytes = reported.used_bytes;
    o.snapshot.total_bytes = reported.total_bytes;
    o.snapshot.source = "sdk";
    o.snapshot.detail =
        absl::StrCat("reported by ", reported.clients, " SDK client",
                     reported.clients == 1 ? "" : "s", ", newest ",
                     absl::FormatDuration(absl::Trunc(
                         now - reported.newest_report, absl::Milliseconds(1))),
                     " ago");
  }
  if (gpus.empty()) {
    Observation& o = gpus[0];
    o.is_gpu = true;
    o.snapshot.source = "none";
    o.snapshot.detail =
        absl::StrCat(nvml_problem.empty() ? "no devices" : nvml_problem,
                     "; no SDK client reports");
  }
  for (auto& [device, observation] : gpus) {
    observation.snapshot.name = GpuName(device);
    if (!observation.snapshot.present && observation.snapshot.source.empty()) {
      observation.snapshot.source = "none";
      observation.snapshot.detail = nvml_problem;
    }
    out->push_back(std::move(observation));
  }
}

ResourceSnapshot PressureMonitor::Evaluate(const Observation& observation,
                                           ResourceState* state,
                                           absl::Time now) const {
  ResourceSnapshot snapshot = observation.snapshot;
  snapshot.sampled_at = now;
  if (!snapshot.present) {
    state->level.Reset();
    state->trend.Reset();
    snapshot.level = PressureLevel::kLow;
    snapshot.used_bytes = 0;
    snapshot.total_bytes = 0;
    return snapshot;
  }
  const PressureThresholds& thresholds =
      observation.is_gpu ? options_.gpu_thresholds : options_.ram_thresholds;
  snapshot.ratio =
      snapshot.total_bytes == 0
          ? 0.0
          : std::min(1.0, static_cast<double>(snapshot.used_bytes) /
                              static_cast<double>(snapshot.total_bytes));
  snapshot.level = state->level.Update(snapshot.ratio);
  if (snapshot.psi.has_value()) {
    snapshot.level =
        std::max(snapshot.level, LevelForPsi(*snapshot.psi, options_.psi));
  }
  const Trend trend = state->trend.Update(now, snapshot.ratio);
  snapshot.smoothed_ratio = trend.smoothed_ratio;
  snapshot.slope_per_second = trend.slope_per_second;
  snapshot.seconds_to_critical =
      SecondsToCritical(snapshot.ratio, trend.slope_per_second,
                        thresholds.critical, options_.min_rising_slope);
  return snapshot;
}

void PressureMonitor::SampleOnce() {
  std::lock_guard sample_lock(sample_mu_);
  const absl::Time now = clock_();
  std::vector<Observation> observed = Observe(now);

  std::vector<ResourceSnapshot> snapshots;
  std::vector<PressureEvent> events;
  auto record = [&](ResourceState& state, ResourceSnapshot snapshot) {
    if (snapshot.present != state.present ||
        snapshot.level != state.last_level) {
      events.push_back(PressureEvent{.sequence = 0,
                                     .previous_present = state.present,
                                     .previous_level = state.last_level,
                                     .current = snapshot});
    }
    state.present = snapshot.present;
    state.last_level = snapshot.level;
    return snapshot;
  };

  absl::flat_hash_set<std::string> seen;
  for (const Observation& observation : observed) {
    const PressureThresholds& thresholds =
        observation.is_gpu ? options_.gpu_thresholds : options_.ram_thresholds;
    auto [it, inserted] =
        states_.try_emplace(observation.snapshot.name, thresholds,
                            options_.hysteresis, options_.trend_window);
    snapshots.push_back(
        record(it->second, Evaluate(observation, &it->second, now)));
    seen.insert(observation.snapshot.name);
  }
  // A device that vanished (its SDK reports expired) announces it once.
  for (auto it = states_.begin(); it != states_.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    ResourceSnapshot gone;
    gone.name = it->first;
    gone.source = "none";
    gone.detail = "no longer reported";
    gone.sampled_at = now;
    record(it->second, std::move(gone));
    states_.erase(it++);
  }

  {
    std::lock_guard lock(mu_);
    for (PressureEvent& event : events) {
      event.sequence = ++sequence_;
      history_.push_back(event);
    }
    while (history_.size() > options_.event_history) history_.pop_front();
    snapshots_ = std::move(snapshots);
  }
  if (events.empty()) return;
  changed_.notify_all();
  std::lock_guard callbacks_lock(callbacks_mu_);
  for (const PressureEvent& event : events) {
    for (const auto& [id, callback] : callbacks_) callback(event);
  }
}

PressureState PressureMonitor::Current() const {
  std::lock_guard lock(mu_);
  return PressureState{.sequence = sequence_, .resources = snapshots_};
}

std::vector<ResourceSnapshot> PressureMonitor::Snapshots() const {
  std::lock_guard lock(mu_);
  return snapshots_;
}

std::optional<ResourceSnapshot> PressureMonitor::Find(
    absl::string_view resource) const {
  std::lock_guard lock(mu_);
  for (const ResourceSnapshot& snapshot : snapshots_) {
    if (snapshot.name == resource) return snapshot;
  }
  return std::nullopt;
}

absl::StatusOr<PressureChanges> PressureMonitor::WaitForChange(
    uint64_t after_sequence, absl::Time deadline,
    const std::function<bool()>& cancelled) const {
  std::unique_lock lock(mu_);
  if (after_sequence > sequence_) {
    return absl::InvalidArgumentError(
        absl::StrCat("pressure sequence ", after_sequence,
                     " is ahead of the monitor's latest event ", sequence_));
  }
  auto ready = [this, after_sequence] {
    return stopping_ || sequence_ > after_sequence;
  };
  while (!ready()) {
    if (cancelled && cancelled()) {
      return absl::CancelledError("pressure watch cancelled");
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return PressureChanges{.events = {}, .sequence = sequence_};
    }
    // Bounded slices keep the chrono arithmetic finite for an infinite
    // deadline and let the cancellation check run.
    const absl::Duration slice = std::min(
        deadline - now, cancelled ? kCancelPollInterval : kMaxWaitSlice);
    changed_.wait_for(lock, absl::ToChronoNanoseconds(slice), ready);
  }
  if (sequence_ <= after_sequence) {
    return absl::UnavailableError("pressure monitor stopped");
  }
  PressureChanges changes{.events = {}, .sequence = sequence_};
  changes.events_missed =
      history_.empty() || history_.front().sequence > after_sequence + 1;
  for (const PressureEvent& event : history_) {
    if (event.sequence > after_sequence) changes.events.push_back(event);
  }
  return changes;
}

PressureMonitor::Subscription PressureMonitor::Subscribe(Callback callback) {
  std::lock_guard lock(callbacks_mu_);
  const uint64_t id = next_callback_id_++;
  callbacks_.emplace(id, std::move(callback));
  return Subscription(this, id);
}

void PressureMonitor::Unsubscribe(uint64_t id) {
  std::lock_guard lock(callbacks_mu_);
  callbacks_.erase(id);
}

absl::Status PressureMonitor::ReportClientGpuUsage(absl::string_view client_id,
                                                   uint32_t device,
                                                   uint64_t used_bytes,
                                                   uint64_t total_bytes) {
  return client_reports_.Report(client_id, device, used_bytes, total_bytes,
                                clock_());
}

void PressureMonitor::ForgetClient(absl::string_view client_id) {
  client_reports_.Forget(client_id);
}

}  // namespace tensorpager::server
