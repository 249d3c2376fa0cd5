// What the pressure monitor publishes: one snapshot per resource, and an
// event whenever a resource's level or presence changes.
#ifndef TENSORPAGER_SERVER_PRESSURE_PRESSURE_SNAPSHOT_H_
#define TENSORPAGER_SERVER_PRESSURE_PRESSURE_SNAPSHOT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/pressure/pressure_level.h"
#include "server/pressure/psi.h"

namespace tensorpager::server {

inline constexpr char kHostRamResource[] = "host_ram";

struct ResourceSnapshot {
  std::string name;  // "host_ram", "gpu0", "gpu1", ...
  // False when the resource cannot be measured (no GPU, unreadable files);
  // the level is then kLow and the figures are 0.
  bool present = false;
  PressureLevel level = PressureLevel::kLow;
  uint64_t used_bytes = 0;
  uint64_t total_bytes = 0;
  double ratio = 0.0;  // used / total, clamped to [0, 1]
  double smoothed_ratio = 0.0;
  // Change of `ratio` per second; negative while usage falls.
  double slope_per_second = 0.0;
  // Predicted seconds until the CRITICAL threshold; 0 at or above it, none
  // while usage is not rising.
  std::optional<double> seconds_to_critical;
  // "cgroup v1", "cgroup v2", "/proc/meminfo", "nvml", "sdk" or "none".
  std::string source;
  // Human-readable extra: device name, which bound applied, why absent.
  std::string detail;
  std::optional<PsiStats> psi;  // host RAM only, when the kernel has PSI
  absl::Time sampled_at;
};

struct PressureEvent {
  uint64_t sequence = 0;  // 1, 2, ... in the order the changes happened
  bool previous_present = false;
  PressureLevel previous_level = PressureLevel::kLow;
  ResourceSnapshot current;
};

// The snapshots and the sequence number of the last event they reflect, read
// together so a stream can send them and then wait for later events.
struct PressureState {
  uint64_t sequence = 0;
  std::vector<ResourceSnapshot> resources;
};

struct PressureChanges {
  std::vector<PressureEvent> events;  // empty on timeout
  uint64_t sequence = 0;              // pass to the next WaitForChange
  // The history no longer held every event after the caller's sequence;
  // resend the full state (PressureMonitor::Current).
  bool events_missed = false;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_PRESSURE_SNAPSHOT_H_
