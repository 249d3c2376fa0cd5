// Smoothed usage and its rate of change for one resource, and from them a
// prediction of when the resource reaches CRITICAL, so the policy thread
// can start swapping before the level is reached rather than after.
#ifndef TENSORPAGER_SERVER_PRESSURE_TREND_TRACKER_H_
#define TENSORPAGER_SERVER_PRESSURE_TREND_TRACKER_H_

#include <optional>

#include "absl/time/time.h"

namespace tensorpager::server {

struct Trend {
  // Exponentially weighted moving average of the usage ratio.
  double smoothed_ratio = 0.0;
  // Smoothed change of the usage ratio per second (0.01: one percent of the
  // total per second); negative while usage falls.
  double slope_per_second = 0.0;
};

class TrendTracker {
 public:
  // `window` is the EWMA time constant: a sample `window` old weighs 1/e as
  // much as the newest. Samples may arrive at irregular intervals.
  explicit TrendTracker(absl::Duration window);

  // Samples must come in time order; one not later than the previous is
  // ignored for the slope (a clock that did not advance says nothing
  // about the rate).
  Trend Update(absl::Time now, double ratio);
  const Trend& trend() const { return trend_; }
  void Reset();

 private:
  absl::Duration window_;
  Trend trend_;
  std::optional<absl::Time> last_time_;
  double last_ratio_ = 0.0;
  bool have_slope_ = false;
};

// Seconds until `ratio` reaches `critical` at `slope_per_second`: 0 when
// already there, none when the slope is below `min_rising_slope` (usage
// flat or falling: no prediction is better than a meaningless huge one).
std::optional<double> SecondsToCritical(double ratio, double slope_per_second,
                                        double critical,
                                        double min_rising_slope);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PRESSURE_TREND_TRACKER_H_
