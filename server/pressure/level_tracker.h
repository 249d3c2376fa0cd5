// Turns a stream of usage ratios into a pressure level with hysteresis, so a
// resource hovering at a threshold does not flap between two levels (each
// flap would wake the policy thread and every WatchPressure stream).
#ifndef TENSORPAGER_SERVER_PRESSURE_LEVEL_TRACKER_H_
#define TENSORPAGER_SERVER_PRESSURE_LEVEL_TRACKER_H_

#include "server/pressure/pressure_level.h"

namespace tensorpager::server {

class LevelTracker {
 public:
  // Rises to a level as soon as the ratio reaches its threshold; falls below
  // a level only once the ratio is `hysteresis` below that level's
  // threshold. `thresholds` must be valid and 0 <= hysteresis < medium.
  LevelTracker(PressureThresholds thresholds, double hysteresis);

  PressureLevel Update(double ratio);
  PressureLevel level() const { return level_; }
  // Back to kLow, e.g. when the resource disappears.
  void Reset() { level_ = PressureLevel::kLow; }

 private:
  PressureThresholds thresholds_;
  double hysteresis_;
  PressureLevel level_ = PressureLevel::kLow;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_LEVEL_TRACKER_H_
