#include "server/pressure/level_tracker.h"

#include <algorithm>

namespace tensorpager::server {

LevelTracker::LevelTracker(PressureThresholds thresholds, double hysteresis)
    : thresholds_(thresholds), hysteresis_(hysteresis) {}

PressureLevel LevelTracker::Update(double ratio) {
  PressureLevel kept = level_;
  while (kept != PressureLevel::kLow &&
         ratio < thresholds_.ThresholdFor(kept) - hysteresis_) {
    kept = static_cast<PressureLevel>(static_cast<int>(kept) - 1);
  }
  level_ = std::max(kept, LevelForRatio(ratio, thresholds_));
  return level_;
}

}  // namespace tensorpager::server
