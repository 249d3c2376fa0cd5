#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/metrics/text_format.h"

namespace tensorpager::metrics {
namespace {

std::string Value(double v) {
  std::string out;
  AppendValue(v, &out);
  return out;
}

TEST(MetricsTextFormatTest, ValuesUseTheShortestRoundTripSpelling) {
  EXPECT_EQ(Value(0), "0");
  EXPECT_EQ(Value(42), "42");
  EXPECT_EQ(Value(1.5), "1.5");
  EXPECT_EQ(Value(0.1), "0.1");
  EXPECT_EQ(Value(-2.25), "-2.25");
  EXPECT_EQ(Value(123456789), "123456789");
  EXPECT_EQ(Value(1e21), "1e+21");
  EXPECT_EQ(Value(1e-7), "1e-07");
  // 2^53 + 2: past the last exactly representable run of integers, still
  // printed so that it parses back to the same double.
  EXPECT_EQ(std::stod(Value(9007199254740994.0)), 9007199254740994.0);
}

TEST(MetricsTextFormatTest, SpecialValuesAreSpelledAsPrometheusParsesThem) {
  EXPECT_EQ(Value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Value(std::nan("")), "NaN");
}

TEST(MetricsTextFormatTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  std::string out;
  AppendEscapedLabelValue("a\\b\"c\nd'e\tf", &out);
  EXPECT_EQ(out, R"(a\\b\"c\nd'e	f)");
}

TEST(MetricsTextFormatTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  std::string out;
  AppendEscapedHelp("two\nlines, a \\ and \"quotes\"", &out);
  EXPECT_EQ(out, R"(two\nlines, a \\ and "quotes")");
}

TEST(MetricsTextFormatTest, HeaderHasHelpThenType) {
  std::string out;
  AppendFamilyHeader("tp_x_bytes", "Bytes.\nMore.", MetricType::kGauge, &out);
  EXPECT_EQ(out, "# HELP tp_x_bytes Bytes.\\nMore.\n# TYPE tp_x_bytes gauge\n");
}

TEST(MetricsTextFormatTest, SampleLinesWithAndWithoutLabels) {
  const std::vector<std::string> names = {"tier", "op"};
  const std::vector<std::string> values = {"ram", "say \"hi\""};
  std::string out;
  AppendSample("tp_ops_total", "", {}, {}, "", 3, &out);
  AppendSample("tp_ops_total", "", names, values, "", 4, &out);
  AppendSample("tp_lat_seconds", "_bucket", names, values, "0.5", 5, &out);
  AppendSample("tp_lat_seconds", "_bucket", {}, {}, "+Inf", 6, &out);
  EXPECT_EQ(out,
            "tp_ops_total 3\n"
            "tp_ops_total{tier=\"ram\",op=\"say \\\"hi\\\"\"} 4\n"
            "tp_lat_seconds_bucket{tier=\"ram\",op=\"say \\\"hi\\\"\","
            "le=\"0.5\"} 5\n"
            "tp_lat_seconds_bucket{le=\"+Inf\"} 6\n");
}

TEST(MetricsTextFormatTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));        // é
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));       // €
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));   // U+1F600
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC3\x28"));          // bad continuation
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8(absl::string_view("\x80", 1)));
}

}  // namespace
}  // namespace tensorpager::metrics
