#include <cmath>
#include <optional>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/pressure/trend_tracker.h"

namespace tensorpager::server {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

TEST(TrendTrackerTest, FirstSampleSeedsTheAverage) {
  TrendTracker tracker(absl::Seconds(10));
  const Trend trend = tracker.Update(kStart, 0.4);
  EXPECT_DOUBLE_EQ(trend.smoothed_ratio, 0.4);
  EXPECT_DOUBLE_EQ(trend.slope_per_second, 0.0);
}

TEST(TrendTrackerTest, StepResponseFollowsTheTimeConstant) {
  TrendTracker tracker(absl::Seconds(10));
  tracker.Update(kStart, 0.2);
  // One time constant later, an EWMA has covered 1 - 1/e of a step.
  const Trend trend = tracker.Update(kStart + absl::Seconds(10), 0.8);
  EXPECT_NEAR(trend.smoothed_ratio, 0.2 + 0.6 * (1.0 - std::exp(-1.0)), 1e-12);
}

TEST(TrendTrackerTest, LinearRampGivesItsSlopeAtAnySamplingRate) {
  TrendTracker tracker(absl::Seconds(10));
  // 1% of the total per second, sampled at irregular intervals.
  const double offsets[] = {0.0, 1.0, 1.5, 4.0, 4.25, 9.0, 10.0};
  Trend trend;
  for (double t : offsets) {
    trend = tracker.Update(kStart + absl::Seconds(t), 0.5 + 0.01 * t);
  }
  EXPECT_NEAR(trend.slope_per_second, 0.01, 1e-12);
  // The smoothed ratio lags behind a rising ramp.
  EXPECT_LT(trend.smoothed_ratio, 0.6);
  EXPECT_GT(trend.smoothed_ratio, 0.5);
  const std::optional<double> eta =
      SecondsToCritical(0.6, trend.slope_per_second, 0.95, 1e-4);
  ASSERT_TRUE(eta.has_value());
  EXPECT_NEAR(*eta, 35.0, 1e-6);
}

TEST(TrendTrackerTest, SlopeDecaysWhenUsageLevelsOff) {
  TrendTracker tracker(absl::Seconds(5));
  for (int t = 0; t <= 5; ++t) {
    tracker.Update(kStart + absl::Seconds(t), 0.5 + 0.02 * t);
  }
  EXPECT_NEAR(tracker.trend().slope_per_second, 0.02, 1e-12);
  for (int t = 6; t <= 60; ++t) tracker.Update(kStart + absl::Seconds(t), 0.6);
  EXPECT_LT(tracker.trend().slope_per_second, 1e-4);
  EXPECT_GT(tracker.trend().slope_per_second, 0.0);
  EXPECT_NEAR(tracker.trend().smoothed_ratio, 0.6, 1e-4);
  EXPECT_FALSE(
      SecondsToCritical(0.6, tracker.trend().slope_per_second, 0.95, 1e-4)
          .has_value());
}

TEST(TrendTrackerTest, FallingUsageHasNegativeSlope) {
  TrendTracker tracker(absl::Seconds(10));
  tracker.Update(kStart, 0.9);
  const Trend trend = tracker.Update(kStart + absl::Seconds(2), 0.8);
  EXPECT_NEAR(trend.slope_per_second, -0.05, 1e-12);
  EXPECT_FALSE(
      SecondsToCritical(0.8, trend.slope_per_second, 0.95, 1e-4).has_value());
}

TEST(TrendTrackerTest, SampleWithoutTimeProgressIsIgnored) {
  TrendTracker tracker(absl::Seconds(10));
  tracker.Update(kStart, 0.3);
  tracker.Update(kStart + absl::Seconds(1), 0.4);
  const Trend before = tracker.trend();
  const Trend after = tracker.Update(kStart + absl::Seconds(1), 0.9);
  EXPECT_DOUBLE_EQ(after.smoothed_ratio, before.smoothed_ratio);
  EXPECT_DOUBLE_EQ(after.slope_per_second, before.slope_per_second);
  tracker.Reset();
  EXPECT_DOUBLE_EQ(tracker.Update(kStart, 0.7).smoothed_ratio, 0.7);
}

TEST(SecondsToCriticalTest, ZeroAtOrAboveCritical) {
  EXPECT_EQ(SecondsToCritical(0.95, 0.0, 0.95, 1e-4), 0.0);
  EXPECT_EQ(SecondsToCritical(0.99, -0.1, 0.95, 1e-4), 0.0);
}

TEST(SecondsToCriticalTest, NoneBelowTheMinimumSlope) {
  EXPECT_FALSE(SecondsToCritical(0.5, 5e-5, 0.95, 1e-4).has_value());
  EXPECT_FALSE(SecondsToCritical(0.5, NAN, 0.95, 1e-4).has_value());
  EXPECT_NEAR(*SecondsToCritical(0.5, 0.1, 0.95, 1e-4), 4.5, 1e-12);
}

}  // namespace
}  // namespace tensorpager::server
