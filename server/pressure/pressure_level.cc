#include "server/pressure/pressure_level.h"

#include "absl/strings/str_cat.h"

namespace tensorpager::server {

absl::string_view PressureLevelName(PressureLevel level) {
  switch (level) {
    case PressureLevel::kLow:
      return "LOW";
    case PressureLevel::kMedium:
      return "MEDIUM";
    case PressureLevel::kHigh:
      return "HIGH";
    case PressureLevel::kCritical:
      return "CRITICAL";
  }
  return "UNKNOWN";
}

double PressureThresholds::ThresholdFor(PressureLevel level) const {
  switch (level) {
    case PressureLevel::kLow:
      return 0.0;
    case PressureLevel::kMedium:
      return medium;
    case PressureLevel::kHigh:
      return high;
    case PressureLevel::kCritical:
      return critical;
  }
  return 0.0;
}

absl::Status ValidateThresholds(const PressureThresholds& thresholds,
                                absl::string_view what) {
  // Written as negations so that NaN fails every check.
  if (!(thresholds.medium > 0.0 && thresholds.medium < thresholds.high &&
        thresholds.high < thresholds.critical && thresholds.critical <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": need 0 < medium < high < critical <= 1, got medium=",
        thresholds.medium, " high=", thresholds.high,
        " critical=", thresholds.critical));
  }
  return absl::OkStatus();
}

PressureLevel LevelForRatio(double ratio,
                            const PressureThresholds& thresholds) {
  if (ratio >= thresholds.critical) return PressureLevel::kCritical;
  if (ratio >= thresholds.high) return PressureLevel::kHigh;
  if (ratio >= thresholds.medium) return PressureLevel::kMedium;
  return PressureLevel::kLow;
}

}  // namespace tensorpager::server
