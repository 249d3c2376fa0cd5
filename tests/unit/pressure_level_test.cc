#include "server/pressure/pressure_level.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "server/pressure/level_tracker.h"
#include "server/pressure/psi.h"

namespace tensorpager::server {
namespace {

TEST(PressureLevelTest, RatiosMapToDefaultThresholds) {
  const PressureThresholds t;
  EXPECT_EQ(LevelForRatio(0.0, t), PressureLevel::kLow);
  EXPECT_EQ(LevelForRatio(0.6999, t), PressureLevel::kLow);
  EXPECT_EQ(LevelForRatio(0.70, t), PressureLevel::kMedium);
  EXPECT_EQ(LevelForRatio(0.85, t), PressureLevel::kHigh);
  EXPECT_EQ(LevelForRatio(0.9499, t), PressureLevel::kHigh);
  EXPECT_EQ(LevelForRatio(0.95, t), PressureLevel::kCritical);
  EXPECT_EQ(LevelForRatio(1.0, t), PressureLevel::kCritical);
  EXPECT_EQ(PressureLevelName(PressureLevel::kHigh), "HIGH");
  EXPECT_EQ(PressureLevelName(PressureLevel::kCritical), "CRITICAL");
}

TEST(PressureLevelTest, ThresholdsMustBeIncreasingFractions) {
  EXPECT_TRUE(ValidateThresholds({0.5, 0.6, 1.0}, "ram").ok());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (PressureThresholds bad :
       {PressureThresholds{0.8, 0.7, 0.9}, PressureThresholds{0.0, 0.5, 0.9},
        PressureThresholds{0.5, 0.9, 1.1}, PressureThresholds{0.5, 0.5, 0.9},
        PressureThresholds{nan, 0.8, 0.9}}) {
    absl::Status status = ValidateThresholds(bad, "gpu thresholds");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("gpu thresholds"), absl::string_view::npos)
        << status;
  }
}

TEST(LevelTrackerTest, RisesAtOnceAndFallsOnlyPastTheMargin) {
  LevelTracker tracker(PressureThresholds{}, 0.05);
  EXPECT_EQ(tracker.Update(0.50), PressureLevel::kLow);
  EXPECT_EQ(tracker.Update(0.86), PressureLevel::kHigh);
  // Inside the margin below HIGH's 0.85: stays HIGH.
  EXPECT_EQ(tracker.Update(0.84), PressureLevel::kHigh);
  EXPECT_EQ(tracker.Update(0.8001), PressureLevel::kHigh);
  EXPECT_EQ(tracker.Update(0.79), PressureLevel::kMedium);
  // Back above MEDIUM's threshold but below HIGH's: no flap back up.
  EXPECT_EQ(tracker.Update(0.84), PressureLevel::kMedium);
  EXPECT_EQ(tracker.Update(0.66), PressureLevel::kMedium);
  EXPECT_EQ(tracker.Update(0.64), PressureLevel::kLow);
}

TEST(LevelTrackerTest, FallsSeveralLevelsInOneStep) {
  LevelTracker tracker(PressureThresholds{}, 0.05);
  EXPECT_EQ(tracker.Update(0.99), PressureLevel::kCritical);
  EXPECT_EQ(tracker.Update(0.82), PressureLevel::kHigh);
  EXPECT_EQ(tracker.Update(0.10), PressureLevel::kLow);
  EXPECT_EQ(tracker.Update(0.97), PressureLevel::kCritical);
  tracker.Reset();
  EXPECT_EQ(tracker.level(), PressureLevel::kLow);
}

TEST(LevelTrackerTest, ZeroMarginFollowsTheRawLevel) {
  LevelTracker tracker(PressureThresholds{}, 0.0);
  EXPECT_EQ(tracker.Update(0.86), PressureLevel::kHigh);
  EXPECT_EQ(tracker.Update(0.8499), PressureLevel::kMedium);
}

TEST(PsiTest, ParsesSomeAndFullLines) {
  absl::StatusOr<PsiStats> psi = ParsePsi(
      "some avg10=12.50 avg60=3.25 avg300=1.00 total=123456\n"
      "full avg10=4.75 avg60=0.50 avg300=0.10 total=6543\n");
  ASSERT_TRUE(psi.ok()) << psi.status();
  EXPECT_DOUBLE_EQ(psi->some_avg10, 12.5);
  EXPECT_DOUBLE_EQ(psi->some_avg60, 3.25);
  EXPECT_DOUBLE_EQ(psi->full_avg10, 4.75);
  EXPECT_DOUBLE_EQ(psi->full_avg60, 0.5);
}

TEST(PsiTest, FullLineIsOptionalSomeIsNot) {
  absl::StatusOr<PsiStats> psi =
      ParsePsi("some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n");
  ASSERT_TRUE(psi.ok()) << psi.status();
  EXPECT_DOUBLE_EQ(psi->full_avg10, 0.0);
  EXPECT_EQ(ParsePsi("").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ParsePsi("some avg10=x avg60=1\n").status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(ParsePsi("some avg10=1 avg60=1\nfull total=3\n").status().code(),
            absl::StatusCode::kInternal);
}

TEST(PsiTest, StallTimeMapsToLevels) {
  const PsiThresholds t;  // some10 >= 10: MEDIUM, full10 >= 5: HIGH, >= 20
  EXPECT_EQ(LevelForPsi({0.0, 0.0, 0.0, 0.0}, t), PressureLevel::kLow);
  EXPECT_EQ(LevelForPsi({9.9, 0.0, 4.9, 0.0}, t), PressureLevel::kLow);
  EXPECT_EQ(LevelForPsi({10.0, 0.0, 0.0, 0.0}, t), PressureLevel::kMedium);
  EXPECT_EQ(LevelForPsi({30.0, 0.0, 5.0, 0.0}, t), PressureLevel::kHigh);
  EXPECT_EQ(LevelForPsi({60.0, 0.0, 20.0, 0.0}, t), PressureLevel::kCritical);
  EXPECT_TRUE(ValidatePsiThresholds(t).ok());
  EXPECT_EQ(ValidatePsiThresholds({0.0, 5.0, 20.0}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tensorpager::server
