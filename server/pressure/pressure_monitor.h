// Samples host RAM and GPU memory on its own thread, turns usage into
// pressure levels with hysteresis and trends, and tells subscribers when a
// level changes: the policy thread through a callback, WatchPressure
// streams through WaitForChange.
#ifndef TENSORPAGER_SERVER_PRESSURE_PRESSURE_MONITOR_H_
#define TENSORPAGER_SERVER_PRESSURE_PRESSURE_MONITOR_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/pressure/client_gpu_reports.h"
#include "server/pressure/gpu_source.h"
#include "server/pressure/host_memory_reader.h"
#include "server/pressure/level_tracker.h"
#include "server/pressure/pressure_level.h"
#include "server/pressure/pressure_snapshot.h"
#include "server/pressure/psi.h"
#include "server/pressure/trend_tracker.h"

namespace tensorpager::server {

struct PressureMonitorOptions {
  // Where /proc and /sys are; tests use a temp dir laid out like them.
  std::string root = "/";
  absl::Duration interval = absl::Seconds(1);
  PressureThresholds ram_thresholds;
  PressureThresholds gpu_thresholds;
  // A level is left only once the ratio is this far below its threshold.
  double hysteresis = 0.05;
  // Stall percentages that raise host RAM's level regardless of usage.
  PsiThresholds psi;
  // EWMA time constant of the smoothed ratio and the slope.
  absl::Duration trend_window = absl::Seconds(10);
  // Slopes below this (ratio per second) count as "not rising".
  double min_rising_slope = 1e-4;
  absl::Duration client_report_ttl = absl::Seconds(30);
  size_t max_client_reports = 1024;
  // Level-change events kept for WaitForChange callers that fall behind.
  size_t event_history = 1024;
  // Null: NVML is loaded when use_nvml, else only SDK reports count.
  std::unique_ptr<GpuSource> gpu_source;
  bool use_nvml = true;
  // Time stamps for trends and report expiry (not for the sampling period
  // or WaitForChange deadlines); null means absl::Now.
  std::function<absl::Time()> clock;
};

class PressureMonitor {
 public:
  using Callback = std::function<void(const PressureEvent&)>;

  // Unsubscribes on destruction, waiting for a callback in progress to
  // finish. Must not outlive the monitor.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription();
    void Reset();

   private:
    friend class PressureMonitor;
    Subscription(PressureMonitor* monitor, uint64_t id)
        : monitor_(monitor), id_(id) {}
    PressureMonitor* monitor_ = nullptr;
    uint64_t id_ = 0;
  };

  // INVALID_ARGUMENT for inconsistent options; an error reading
  // /proc/meminfo below the root otherwise. Takes the first sample before
  // returning so Current() is meaningful at once; the thread starts with
  // Start().
  static absl::StatusOr<std::unique_ptr<PressureMonitor>> Create(
      PressureMonitorOptions options);

  // Stops and joins the sampling thread.
  ~PressureMonitor();
  PressureMonitor(const PressureMonitor&) = delete;
  PressureMonitor& operator=(const PressureMonitor&) = delete;

  // Starts sampling every `interval`. FAILED_PRECONDITION after Stop() or
  // when already running.
  absl::Status Start();
  // Ends the thread and wakes WaitForChange callers (they get UNAVAILABLE).
  // Idempotent; not to be called from a callback.
  void Stop();

  // One sampling round on the calling thread (the thread runs the same).
  void SampleOnce();

  PressureState Current() const;
  std::vector<ResourceSnapshot> Snapshots() const;
  std::optional<ResourceSnapshot> Find(absl::string_view resource) const;

  // Blocks until an event after `after_sequence` exists, `deadline` (wall
  // clock) passes (OK with no events), `cancelled` returns true (polled
  // every 100 ms; CANCELLED), or the monitor stops (UNAVAILABLE).
  // INVALID_ARGUMENT when `after_sequence` is ahead of the monitor.
  absl::StatusOr<PressureChanges> WaitForChange(
      uint64_t after_sequence, absl::Time deadline,
      const std::function<bool()>& cancelled = nullptr) const;

  // `callback` runs on the sampling thread for every event, in order. It
  // may read the monitor but must not subscribe or unsubscribe.
  [[nodiscard]] Subscription Subscribe(Callback callback);

  // GPU usage seen by an SDK client (device-wide used/total bytes).
  // INVALID_ARGUMENT / RESOURCE_EXHAUSTED as ClientGpuReports::Report.
  absl::Status ReportClientGpuUsage(absl::string_view client_id,
                                    uint32_t device, uint64_t used_bytes,
                                    uint64_t total_bytes);
  void ForgetClient(absl::string_view client_id);

  // One line for the startup log: host memory and GPU sources.
  const std::string& description() const { return description_; }

 private:
  struct ResourceState {
    ResourceState(const PressureThresholds& thresholds, double hysteresis,
                  absl::Duration trend_window)
        : level(thresholds, hysteresis), trend(trend_window) {}
    LevelTracker level;
    TrendTracker trend;
    bool present = false;
    PressureLevel last_level = PressureLevel::kLow;
  };
  // One resource as measured, before levels and trends.
  struct Observation {
    ResourceSnapshot snapshot;  // name, present, used, total, source, ...
    bool is_gpu = false;
  };

  explicit PressureMonitor(PressureMonitorOptions options);

  std::vector<Observation> Observe(absl::Time now);
  void ObserveGpus(absl::Time now, std::vector<Observation>* out);
  ResourceSnapshot Evaluate(const Observation& observation,
                            ResourceState* state, absl::Time now) const;
  void Run();
  void Unsubscribe(uint64_t id);

  PressureMonitorOptions options_;
  std::function<absl::Time()> clock_;
  HostMemoryReader host_reader_;
  std::unique_ptr<GpuSource> gpu_source_;
  std::string gpu_unavailable_;  // why there is no GPU source
  ClientGpuReports client_reports_;
  std::string description_;

  // std::mutex rather than absl::Mutex here, as in storage/: Debian's
  // prebuilt Abseil is not built for ThreadSanitizer, which then cannot see
  // absl::Mutex hand-offs. Lock order: lifecycle_mu_, sample_mu_, mu_,
  // callbacks_mu_.

  // Serializes sampling rounds so events are numbered and delivered in
  // order; held while callbacks run. Guards states_.
  std::mutex sample_mu_;
  absl::flat_hash_map<std::string, ResourceState> states_;

  // Guards the published state below; changed_ signals new events and stop.
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<ResourceSnapshot> snapshots_;
  std::deque<PressureEvent> history_;
  uint64_t sequence_ = 0;
  bool stopping_ = false;
  bool started_ = false;

  // Guards callbacks_ and next_callback_id_.
  std::mutex callbacks_mu_;
  std::map<uint64_t, Callback> callbacks_;
  uint64_t next_callback_id_ = 1;

  std::mutex lifecycle_mu_;  // guards thread_
  std::thread thread_;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_PRESSURE_MONITOR_H_
