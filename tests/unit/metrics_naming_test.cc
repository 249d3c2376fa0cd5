#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics/naming.h"

namespace tensorpager::metrics {
namespace {

using ::testing::HasSubstr;

void ExpectRejected(absl::string_view name, MetricType type,
                    absl::string_view why) {
  const absl::Status s = ValidateMetricName(name, type);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(why))) << name;
}

TEST(MetricsNamingTest, AcceptsConventionalNames) {
  EXPECT_TRUE(
      ValidateMetricName("tensorpager_requests_total", MetricType::kCounter)
          .ok());
  EXPECT_TRUE(
      ValidateMetricName("tensorpager_ram_used_bytes", MetricType::kGauge)
          .ok());
  EXPECT_TRUE(ValidateMetricName("tensorpager_access_duration_seconds",
                                 MetricType::kHistogram)
                  .ok());
  EXPECT_TRUE(ValidateMetricName("_private_total", MetricType::kCounter).ok());
  EXPECT_TRUE(ValidateMetricName("tp_gpu0_level", MetricType::kGauge).ok());
  // The first word is the namespace; promtool does not read it as a unit
  // abbreviation.
  EXPECT_TRUE(ValidateMetricName("ms_queue_depth", MetricType::kGauge).ok());
}

TEST(MetricsNamingTest, CountersEndInTotalAndOnlyCountersDo) {
  ExpectRejected("tensorpager_requests", MetricType::kCounter, "_total");
  ExpectRejected("tensorpager_requests_total", MetricType::kGauge,
                 "counters only");
  ExpectRejected("tensorpager_requests_total", MetricType::kHistogram,
                 "counters only");
}

TEST(MetricsNamingTest, RejectsMalformedNames) {
  ExpectRejected("", MetricType::kGauge, "empty");
  ExpectRejected("9lives", MetricType::kGauge, "digit");
  ExpectRejected("tensorpager_ramUsed", MetricType::kGauge, "upper-case");
  ExpectRejected("tensorpager:ram_used_bytes", MetricType::kGauge,
                 "recording rules");
  ExpectRejected("tensorpager-ram", MetricType::kGauge, "'-'");
  ExpectRejected("tensorpager ram", MetricType::kGauge, "' '");
  ExpectRejected("__tensorpager_ram", MetricType::kGauge, "reserves");
}

TEST(MetricsNamingTest, RejectsWhatPromtoolLintFlags) {
  ExpectRejected("tensorpager_blocks_count", MetricType::kGauge, "_count");
  ExpectRejected("tensorpager_bytes_sum", MetricType::kGauge, "_sum");
  ExpectRejected("tensorpager_io_bucket", MetricType::kHistogram, "_bucket");
  ExpectRejected("tensorpager_queue_gauge", MetricType::kGauge, "type word");
  ExpectRejected("tensorpager_counter_resets_total", MetricType::kCounter,
                 "type word");
  ExpectRejected("tensorpager_access_milliseconds", MetricType::kHistogram,
                 "\"seconds\"");
  ExpectRejected("tensorpager_ram_kilobytes", MetricType::kGauge, "\"bytes\"");
  ExpectRejected("tensorpager_uptime_hours", MetricType::kGauge, "\"seconds\"");
  ExpectRejected("tensorpager_latency_ms", MetricType::kGauge, "\"ms\"");
  ExpectRejected("tensorpager_ram_mb", MetricType::kGauge, "abbreviation");
}

TEST(MetricsNamingTest, LabelNames) {
  EXPECT_TRUE(ValidateLabelNames(std::vector<std::string>{}).ok());
  EXPECT_TRUE(
      ValidateLabelNames(std::vector<std::string>{"method", "code", "_x"})
          .ok());
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"le"}, "reserved"},
      {{"quantile"}, "reserved"},
      {{"__name__"}, "reserves"},
      {{"1st"}, "digit"},
      {{"tier-name"}, "'-'"},
      {{"tierName"}, "upper-case"},
      {{""}, "empty"},
      {{"tier", "op", "tier"}, "repeated"},
  };
  for (const auto& [names, why] : bad) {
    const absl::Status s = ValidateLabelNames(names);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << names[0];
    EXPECT_THAT(std::string(s.message()), HasSubstr(why)) << names[0];
  }
}

TEST(MetricsNamingTest, HelpIsRequiredAndUtf8) {
  EXPECT_TRUE(ValidateHelp("Bytes held in the RAM tier.").ok());
  EXPECT_EQ(ValidateHelp("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateHelp("bad \xFF byte").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsNamingTest, SpecErrorsNameTheFamily) {
  const absl::Status s = ValidateSpec(
      {.name = "tensorpager_x_bytes", .help = "X.", .label_names = {"le"}},
      MetricType::kGauge);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensorpager_x_bytes"));
}

}  // namespace
}  // namespace tensorpager::metrics
