// Pressure levels and the usage thresholds that define them.
#ifndef TENSORPAGER_SERVER_PRESSURE_PRESSURE_LEVEL_H_
#define TENSORPAGER_SERVER_PRESSURE_PRESSURE_LEVEL_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tensorpager::server {

// Ordered: a higher value is more pressure, so levels compare with < and
// combine with std::max.
enum class PressureLevel { kLow = 0, kMedium = 1, kHigh = 2, kCritical = 3 };

// "LOW", "MEDIUM", "HIGH", "CRITICAL" (the proto enum's value names).
absl::string_view PressureLevelName(PressureLevel level);

// Usage ratios (used / total) at which a resource enters each level.
struct PressureThresholds {
  double medium = 0.70;
  double high = 0.85;
  double critical = 0.95;

  // The ratio at which `level` starts; 0 for kLow.
  double ThresholdFor(PressureLevel level) const;
};

// INVALID_ARGUMENT unless 0 < medium < high < critical <= 1. `what` names
// the setting in the message ("ram thresholds").
absl::Status ValidateThresholds(const PressureThresholds& thresholds,
                                absl::string_view what);

// The level a ratio falls in, without hysteresis.
PressureLevel LevelForRatio(double ratio, const PressureThresholds& thresholds);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_PRESSURE_LEVEL_H_
