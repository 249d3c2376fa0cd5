#include "server/pressure/trend_tracker.h"

#include <cmath>

namespace tensorpager::server {

TrendTracker::TrendTracker(absl::Duration window) : window_(window) {}

Trend TrendTracker::Update(absl::Time now, double ratio) {
  if (!last_time_.has_value()) {
    trend_ = Trend{.smoothed_ratio = ratio, .slope_per_second = 0.0};
    last_time_ = now;
    last_ratio_ = ratio;
    return trend_;
  }
  const double dt = absl::ToDoubleSeconds(now - *last_time_);
  if (dt <= 0.0) return trend_;
  // Weight for irregular intervals: the EWMA a fixed-rate filter with time
  // constant `window_` would have after `dt`.
  const double alpha = 1.0 - std::exp(-dt / absl::ToDoubleSeconds(window_));
  trend_.smoothed_ratio += alpha * (ratio - trend_.smoothed_ratio);
  const double instant_slope = (ratio - last_ratio_) / dt;
  if (have_slope_) {
    trend_.slope_per_second +=
        alpha * (instant_slope - trend_.slope_per_second);
  } else {
    trend_.slope_per_second = instant_slope;
    have_slope_ = true;
  }
  last_time_ = now;
  last_ratio_ = ratio;
  return trend_;
}

void TrendTracker::Reset() {
  trend_ = Trend{};
  last_time_.reset();
  last_ratio_ = 0.0;
  have_slope_ = false;
}

std::optional<double> SecondsToCritical(double ratio, double slope_per_second,
                                        double critical,
                                        double min_rising_slope) {
  if (ratio >= critical) return 0.0;
  if (!(slope_per_second >= min_rising_slope) || slope_per_second <= 0.0) {
    return std::nullopt;
  }
  return (critical - ratio) / slope_per_second;
}

}  // namespace tensorpager::server
