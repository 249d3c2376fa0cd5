#include "server/pressure/pressure_monitor.h"

#include <atomic>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/unit/pressure_fake_gpu_source.h"
#include "tests/unit/pressure_fake_root.h"

namespace tensorpager::server {
namespace {

using testing::FakeGpuControl;
using testing::FakeGpuSource;
using testing::FakeRoot;
using testing::kGiB;

// Only trends and report expiry read this clock, so tests step time
// explicitly instead of sleeping.
class FakeClock {
 public:
  absl::Time Now() {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }

 private:
  std::mutex mu_;  // guards now_
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

class PressureMonitorTest : public ::testing::Test {
 protected:
  PressureMonitorTest() {
    // A host without memory cgroup: /proc/meminfo decides.
    SetRam(0.5);
  }

  // Host RAM usage as a fraction of 16 GiB.
  void SetRam(double ratio) {
    const uint64_t total = 16 * kGiB;
    root_.WriteMeminfo(total, total - static_cast<uint64_t>(
                                          ratio * static_cast<double>(total)));
  }

  PressureMonitorOptions Options() {
    PressureMonitorOptions options;
    options.root = root_.path();
    options.use_nvml = false;
    options.clock = [this] { return clock_.Now(); };
    return options;
  }

  std::unique_ptr<PressureMonitor> Make(PressureMonitorOptions options) {
    absl::StatusOr<std::unique_ptr<PressureMonitor>> monitor =
        PressureMonitor::Create(std::move(options));
    EXPECT_TRUE(monitor.ok()) << monitor.status();
    return monitor.ok() ? *std::move(monitor) : nullptr;
  }

  std::unique_ptr<PressureMonitor> MakeWithGpus() {
    PressureMonitorOptions options = Options();
    options.gpu_source = std::make_unique<FakeGpuSource>(gpus_);
    return Make(std::move(options));
  }

  // Advances the fake clock one second and samples.
  void Step(PressureMonitor& monitor) {
    clock_.Advance(absl::Seconds(1));
    monitor.SampleOnce();
  }

  static ResourceSnapshot Get(const PressureMonitor& monitor,
                              absl::string_view name) {
    std::optional<ResourceSnapshot> snapshot = monitor.Find(name);
    EXPECT_TRUE(snapshot.has_value()) << name;
    return snapshot.value_or(ResourceSnapshot{});
  }

  FakeRoot root_;
  FakeClock clock_;
  std::shared_ptr<FakeGpuControl> gpus_ = std::make_shared<FakeGpuControl>();
};

TEST_F(PressureMonitorTest, RejectsInconsistentOptions) {
  std::vector<PressureMonitorOptions> bad;
  bad.push_back(Options());
  bad.back().interval = absl::ZeroDuration();
  bad.push_back(Options());
  bad.back().ram_thresholds = {0.9, 0.8, 0.95};
  bad.push_back(Options());
  bad.back().gpu_thresholds = {0.5, 0.6, 1.5};
  bad.push_back(Options());
  bad.back().hysteresis = 0.7;
  bad.push_back(Options());
  bad.back().hysteresis = -0.1;
  bad.push_back(Options());
  bad.back().trend_window = absl::ZeroDuration();
  bad.push_back(Options());
  bad.back().min_rising_slope = 0.0;
  bad.push_back(Options());
  bad.back().client_report_ttl = absl::Seconds(-1);
  bad.push_back(Options());
  bad.back().event_history = 0;
  bad.push_back(Options());
  bad.back().psi.high_full_avg10 = 0.0;
  for (PressureMonitorOptions& options : bad) {
    EXPECT_EQ(PressureMonitor::Create(std::move(options)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(PressureMonitorTest, FailsWithoutMeminfo) {
  root_.Remove("/proc/meminfo");
  EXPECT_EQ(PressureMonitor::Create(Options()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PressureMonitorTest, FirstSampleIsAvailableAtOnce) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  const PressureState state = monitor->Current();
  ASSERT_EQ(state.resources.size(), 2u);
  const ResourceSnapshot& ram = state.resources[0];
  EXPECT_EQ(ram.name, "host_ram");
  EXPECT_TRUE(ram.present);
  EXPECT_EQ(ram.level, PressureLevel::kLow);
  EXPECT_EQ(ram.total_bytes, 16 * kGiB);
  EXPECT_EQ(ram.used_bytes, 8 * kGiB);
  EXPECT_DOUBLE_EQ(ram.ratio, 0.5);
  EXPECT_EQ(ram.source, "/proc/meminfo");
  EXPECT_EQ(ram.sampled_at, clock_.Now());
  // No NVML and no SDK reports: the GPU part says so.
  const ResourceSnapshot& gpu = state.resources[1];
  EXPECT_EQ(gpu.name, "gpu0");
  EXPECT_FALSE(gpu.present);
  EXPECT_EQ(gpu.source, "none");
  EXPECT_TRUE(absl::StrContains(gpu.detail, "NVML disabled")) << gpu.detail;
  // Host RAM appearing is the one event so far.
  EXPECT_EQ(state.sequence, 1u);
  EXPECT_TRUE(absl::StrContains(monitor->description(), "/proc/meminfo"))
      << monitor->description();
}

TEST_F(PressureMonitorTest, LevelsFollowUsageWithHysteresis) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  const uint64_t start = monitor->Current().sequence;
  std::vector<PressureLevel> levels;
  for (double ratio : {0.72, 0.86, 0.83, 0.97, 0.93, 0.79, 0.6}) {
    SetRam(ratio);
    Step(*monitor);
    levels.push_back(Get(*monitor, "host_ram").level);
  }
  EXPECT_EQ(levels, (std::vector<PressureLevel>{
                        PressureLevel::kMedium, PressureLevel::kHigh,
                        PressureLevel::kHigh, PressureLevel::kCritical,
                        PressureLevel::kCritical, PressureLevel::kMedium,
                        PressureLevel::kLow}));
  // One event per change: MEDIUM, HIGH, CRITICAL, MEDIUM, LOW.
  absl::StatusOr<PressureChanges> changes =
      monitor->WaitForChange(start, absl::Now());
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->events.size(), 5u);
  EXPECT_FALSE(changes->events_missed);
  EXPECT_EQ(changes->events[0].previous_level, PressureLevel::kLow);
  EXPECT_EQ(changes->events[0].current.level, PressureLevel::kMedium);
  EXPECT_EQ(changes->events[2].current.level, PressureLevel::kCritical);
  EXPECT_EQ(changes->events[3].previous_level, PressureLevel::kCritical);
  EXPECT_EQ(changes->events[3].current.level, PressureLevel::kMedium);
  for (size_t i = 0; i < changes->events.size(); ++i) {
    EXPECT_EQ(changes->events[i].sequence, start + 1 + i);
    EXPECT_EQ(changes->events[i].current.name, "host_ram");
  }
  EXPECT_EQ(changes->sequence, start + 5);
}

TEST_F(PressureMonitorTest, PsiRaisesTheLevelWhileUsageLooksFine) {
  root_.WritePsi("/proc/pressure/memory", 0.0, 0.0);
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  EXPECT_EQ(Get(*monitor, "host_ram").level, PressureLevel::kLow);

  root_.WritePsi("/proc/pressure/memory", 35.0, 8.0);
  Step(*monitor);
  ResourceSnapshot ram = Get(*monitor, "host_ram");
  EXPECT_DOUBLE_EQ(ram.ratio, 0.5);
  EXPECT_EQ(ram.level, PressureLevel::kHigh);
  ASSERT_TRUE(ram.psi.has_value());
  EXPECT_DOUBLE_EQ(ram.psi->full_avg10, 8.0);

  root_.WritePsi("/proc/pressure/memory", 90.0, 45.0);
  Step(*monitor);
  EXPECT_EQ(Get(*monitor, "host_ram").level, PressureLevel::kCritical);

  root_.WritePsi("/proc/pressure/memory", 0.5, 0.0);
  Step(*monitor);
  EXPECT_EQ(Get(*monitor, "host_ram").level, PressureLevel::kLow);
}

TEST_F(PressureMonitorTest, TrendPredictsTimeToCritical) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  // +1% of RAM per second from 50%.
  for (int second = 1; second <= 20; ++second) {
    SetRam(0.5 + 0.01 * second);
    Step(*monitor);
  }
  ResourceSnapshot ram = Get(*monitor, "host_ram");
  EXPECT_NEAR(ram.ratio, 0.70, 1e-6);
  // Page-rounding of the fake meminfo (kB) leaves tiny errors.
  EXPECT_NEAR(ram.slope_per_second, 0.01, 1e-4);
  EXPECT_LT(ram.smoothed_ratio, ram.ratio);
  ASSERT_TRUE(ram.seconds_to_critical.has_value());
  EXPECT_NEAR(*ram.seconds_to_critical, 25.0, 0.5);

  // Usage levels off: after a while there is no prediction.
  for (int second = 0; second < 120; ++second) Step(*monitor);
  ram = Get(*monitor, "host_ram");
  EXPECT_FALSE(ram.seconds_to_critical.has_value());
  EXPECT_NEAR(ram.smoothed_ratio, 0.70, 1e-3);
}

TEST_F(PressureMonitorTest, FakeGpuSourceDevicesHaveLevels) {
  gpus_->Set({GpuMemory{0, "Fake A100", 10 * kGiB, 80 * kGiB},
              GpuMemory{1, "Fake A100", 78 * kGiB, 80 * kGiB}});
  std::unique_ptr<PressureMonitor> monitor = MakeWithGpus();
  ASSERT_NE(monitor, nullptr);
  const ResourceSnapshot gpu0 = Get(*monitor, "gpu0");
  EXPECT_TRUE(gpu0.present);
  EXPECT_EQ(gpu0.source, "fake");
  EXPECT_EQ(gpu0.detail, "Fake A100");
  EXPECT_EQ(gpu0.level, PressureLevel::kLow);
  EXPECT_FALSE(gpu0.psi.has_value());
  const ResourceSnapshot gpu1 = Get(*monitor, "gpu1");
  EXPECT_EQ(gpu1.level, PressureLevel::kCritical);
  EXPECT_EQ(gpu1.used_bytes, 78 * kGiB);
  EXPECT_EQ(gpu1.seconds_to_critical, 0.0);
}

TEST_F(PressureMonitorTest, GpuThresholdsAreSeparateFromRam) {
  gpus_->Set({GpuMemory{0, "", 60 * kGiB, 100 * kGiB}});
  PressureMonitorOptions options = Options();
  options.gpu_source = std::make_unique<FakeGpuSource>(gpus_);
  options.gpu_thresholds = {0.5, 0.55, 0.9};
  std::unique_ptr<PressureMonitor> monitor = Make(std::move(options));
  ASSERT_NE(monitor, nullptr);
  SetRam(0.6);
  Step(*monitor);
  EXPECT_EQ(Get(*monitor, "gpu0").level, PressureLevel::kHigh);
  EXPECT_EQ(Get(*monitor, "host_ram").level, PressureLevel::kLow);
}

TEST_F(PressureMonitorTest, SdkReportsStandInForMissingNvmlAndExpire) {
  PressureMonitorOptions options = Options();
  options.client_report_ttl = absl::Seconds(10);
  std::unique_ptr<PressureMonitor> monitor = Make(std::move(options));
  ASSERT_NE(monitor, nullptr);
  EXPECT_EQ(monitor->ReportClientGpuUsage("", 0, 1, 2).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(
      monitor->ReportClientGpuUsage("worker-1", 0, 72 * kGiB, 80 * kGiB).ok());
  const uint64_t before = monitor->Current().sequence;
  Step(*monitor);
  ResourceSnapshot gpu = Get(*monitor, "gpu0");
  EXPECT_TRUE(gpu.present);
  EXPECT_EQ(gpu.source, "sdk");
  EXPECT_EQ(gpu.level, PressureLevel::kHigh);
  EXPECT_TRUE(absl::StrContains(gpu.detail, "1 SDK client")) << gpu.detail;

  clock_.Advance(absl::Seconds(20));
  monitor->SampleOnce();
  gpu = Get(*monitor, "gpu0");
  EXPECT_FALSE(gpu.present);
  EXPECT_EQ(gpu.level, PressureLevel::kLow);

  absl::StatusOr<PressureChanges> changes =
      monitor->WaitForChange(before, absl::Now());
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->events.size(), 2u);
  EXPECT_FALSE(changes->events[0].previous_present);
  EXPECT_TRUE(changes->events[0].current.present);
  EXPECT_EQ(changes->events[0].current.level, PressureLevel::kHigh);
  EXPECT_TRUE(changes->events[1].previous_present);
  EXPECT_EQ(changes->events[1].previous_level, PressureLevel::kHigh);
  EXPECT_FALSE(changes->events[1].current.present);
}

TEST_F(PressureMonitorTest, GpuSourceWinsOverSdkForItsDevices) {
  gpus_->Set({GpuMemory{0, "Fake H100", 8 * kGiB, 80 * kGiB}});
  std::unique_ptr<PressureMonitor> monitor = MakeWithGpus();
  ASSERT_NE(monitor, nullptr);
  ASSERT_TRUE(monitor->ReportClientGpuUsage("c", 0, 79 * kGiB, 80 * kGiB).ok());
  ASSERT_TRUE(monitor->ReportClientGpuUsage("c", 1, 40 * kGiB, 80 * kGiB).ok());
  Step(*monitor);
  EXPECT_EQ(Get(*monitor, "gpu0").source, "fake");
  EXPECT_EQ(Get(*monitor, "gpu0").used_bytes, 8 * kGiB);
  EXPECT_EQ(Get(*monitor, "gpu1").source, "sdk");
  EXPECT_EQ(Get(*monitor, "gpu1").used_bytes, 40 * kGiB);

  // A vanished device is announced once and then dropped.
  monitor->ForgetClient("c");
  const uint64_t before = monitor->Current().sequence;
  Step(*monitor);
  EXPECT_FALSE(monitor->Find("gpu1").has_value());
  absl::StatusOr<PressureChanges> changes =
      monitor->WaitForChange(before, absl::Now());
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->events.size(), 1u);
  EXPECT_EQ(changes->events[0].current.name, "gpu1");
  EXPECT_FALSE(changes->events[0].current.present);
}

TEST_F(PressureMonitorTest, FailingGpuSourceMarksDevicesAbsent) {
  gpus_->Set({GpuMemory{0, "Fake", kGiB, 80 * kGiB}});
  std::unique_ptr<PressureMonitor> monitor = MakeWithGpus();
  ASSERT_NE(monitor, nullptr);
  EXPECT_TRUE(Get(*monitor, "gpu0").present);
  gpus_->Fail(absl::UnavailableError("GPU has fallen off the bus"));
  Step(*monitor);
  const ResourceSnapshot gpu = Get(*monitor, "gpu0");
  EXPECT_FALSE(gpu.present);
  EXPECT_TRUE(absl::StrContains(gpu.detail, "fallen off the bus"))
      << gpu.detail;
}

TEST_F(PressureMonitorTest, CallbacksSeeEveryChangeUntilUnsubscribed) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  std::vector<std::pair<std::string, PressureLevel>> seen;
  PressureMonitor::Subscription subscription =
      monitor->Subscribe([&seen](const PressureEvent& event) {
        seen.emplace_back(event.current.name, event.current.level);
      });
  SetRam(0.9);
  Step(*monitor);
  Step(*monitor);  // no change, no event
  SetRam(0.96);
  Step(*monitor);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0],
            std::make_pair(std::string("host_ram"), PressureLevel::kHigh));
  EXPECT_EQ(seen[1].second, PressureLevel::kCritical);

  PressureMonitor::Subscription moved = std::move(subscription);
  subscription.Reset();  // the moved-from handle owns nothing
  SetRam(0.1);
  Step(*monitor);
  EXPECT_EQ(seen.size(), 3u);
  moved.Reset();
  SetRam(0.99);
  Step(*monitor);
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(PressureMonitorTest, WaitForChangeTimesOutEmpty) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  const uint64_t now_seq = monitor->Current().sequence;
  absl::StatusOr<PressureChanges> changes =
      monitor->WaitForChange(now_seq, absl::Now() + absl::Milliseconds(20));
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_TRUE(changes->events.empty());
  EXPECT_EQ(changes->sequence, now_seq);
  EXPECT_EQ(monitor->WaitForChange(now_seq + 1, absl::Now()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PressureMonitorTest, WaitForChangeWakesOnAnotherThreadsSample) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  const uint64_t seq = monitor->Current().sequence;
  SetRam(0.9);
  std::thread sampler([&] { Step(*monitor); });
  absl::StatusOr<PressureChanges> changes =
      monitor->WaitForChange(seq, absl::InfiniteFuture());
  sampler.join();
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_EQ(changes->events.size(), 1u);
  EXPECT_EQ(changes->events[0].current.level, PressureLevel::kHigh);
}

TEST_F(PressureMonitorTest, WaitForChangeHonoursCancellation) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] { cancelled = true; });
  absl::StatusOr<PressureChanges> changes = monitor->WaitForChange(
      monitor->Current().sequence, absl::InfiniteFuture(),
      [&] { return cancelled.load(); });
  canceller.join();
  EXPECT_EQ(changes.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(PressureMonitorTest, StopReleasesWaiters) {
  std::unique_ptr<PressureMonitor> monitor = Make(Options());
  ASSERT_NE(monitor, nullptr);
  std::thread stopper([&] { monitor->Stop(); });
  absl::StatusOr<PressureChanges> changes = monitor->WaitForChange(
      monitor->Current().sequence, absl::InfiniteFuture());
  stopper.join();
  EXPECT_EQ(changes.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(monitor->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(PressureMonitorTest, SlowReaderLearnsItMissedEvents) {
  PressureMonitorOptions options = Options();
  options.event_history = 2;
  std::unique_ptr<PressureMonitor> monitor = Make(std::move(options));
  ASSERT_NE(monitor, nullptr);
  const uint64_t seq = monitor->Current().sequence;
  for (double ratio : {0.75, 0.9, 0.99, 0.1}) {
    SetRam(ratio);
    Step(*monitor);
  }
  absl::StatusOr<PressureChanges> changes =
      monitor->WaitForChange(seq, absl::Now());
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_TRUE(changes->events_missed);
  ASSERT_EQ(changes->events.size(), 2u);
  EXPECT_EQ(changes->events[1].current.level, PressureLevel::kLow);
  EXPECT_EQ(changes->sequence, seq + 4);
}

TEST_F(PressureMonitorTest, SamplingThreadPublishesChanges) {
  PressureMonitorOptions options = Options();
  options.interval = absl::Milliseconds(5);
  std::unique_ptr<PressureMonitor> monitor = Make(std::move(options));
  ASSERT_NE(monitor, nullptr);
  ASSERT_TRUE(monitor->Start().ok());
  EXPECT_EQ(monitor->Start().code(), absl::StatusCode::kFailedPrecondition);
  const uint64_t seq = monitor->Current().sequence;
  SetRam(0.97);
  absl::StatusOr<PressureChanges> changes =
      monitor->WaitForChange(seq, absl::InfiniteFuture());
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_FALSE(changes->events.empty());
  EXPECT_EQ(changes->events.back().current.level, PressureLevel::kCritical);
  monitor->Stop();
  monitor->Stop();
}

// The monitor on this machine's real /proc and /sys (and NVML when the
// driver is installed).
TEST(PressureMonitorRealMachineTest, SnapshotIsSane) {
  PressureMonitorOptions options;
  absl::StatusOr<std::unique_ptr<PressureMonitor>> monitor =
      PressureMonitor::Create(std::move(options));
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  std::cout << "[ real machine ] " << (*monitor)->description() << "\n";
  const std::vector<ResourceSnapshot> snapshots = (*monitor)->Snapshots();
  ASSERT_GE(snapshots.size(), 2u);
  const ResourceSnapshot& ram = snapshots[0];
  EXPECT_EQ(ram.name, "host_ram");
  EXPECT_TRUE(ram.present) << ram.detail;
  EXPECT_GT(ram.total_bytes, 0u);
  EXPECT_LE(ram.used_bytes, ram.total_bytes);
  EXPECT_GE(ram.ratio, 0.0);
  EXPECT_LE(ram.ratio, 1.0);
  for (const ResourceSnapshot& snapshot : snapshots) {
    std::cout << "[ real machine ] " << snapshot.name
              << " present=" << snapshot.present
              << " level=" << PressureLevelName(snapshot.level)
              << " used=" << snapshot.used_bytes
              << " total=" << snapshot.total_bytes
              << " source=" << snapshot.source << " " << snapshot.detail
              << "\n";
    if (!snapshot.present) continue;
    EXPECT_GT(snapshot.total_bytes, 0u) << snapshot.name;
    EXPECT_LE(snapshot.used_bytes, snapshot.total_bytes) << snapshot.name;
  }
}

}  // namespace
}  // namespace tensorpager::server
