// The base log's line layouts: the server's (TP_LOG: UTC to the
// microsecond, file and line) and a library's (Logger: local time to the
// millisecond, component name), which tools and applications parse.
#include "storage/base/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace tensorpager::base {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;

TEST(LogTest, ServerLinesCarryUtcMicrosecondsAndTheirOrigin) {
  const absl::Time when = absl::FromUnixSeconds(0) + absl::Microseconds(5);
  EXPECT_EQ(FormatLogLine(Severity::kWarning, when, LogClock::kUtcMicros,
                          "x.cc:3] ", "hi"),
            "W1970-01-01T00:00:00.000005Z x.cc:3] hi\n");
  EXPECT_EQ(FormatLogLine(Severity::kError, when, LogClock::kUtcMicros, "", "")
                .front(),
            'E');
}

TEST(LogTest, LoggerLinesNameTheComponentAndGoToTheSink) {
  std::vector<std::string> lines;
  Logger log([&](absl::string_view line) { lines.emplace_back(line); },
             "tensorpager-sdk");
  log.Info("hello");
  log.WarningOnce("topic", "first");
  log.WarningOnce("topic", "second");
  log.Warning("again");
  ASSERT_EQ(lines.size(), 3u);
  const std::string time = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}";
  EXPECT_THAT(
      lines, ElementsAre(MatchesRegex("I" + time + " tensorpager-sdk: hello"),
                         MatchesRegex("W" + time + " tensorpager-sdk: first"),
                         MatchesRegex("W" + time + " tensorpager-sdk: again")));
}

}  // namespace
}  // namespace tensorpager::base
