// Prometheus' own checker on our exposition: `promtool check metrics`
// parses the text and lints names (exit 3 on lint problems, 1 on parse
// errors). Needs /usr/bin/promtool (Debian package prometheus) or
// $PROMTOOL.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/metrics/buckets.h"
#include "server/metrics/build_info.h"
#include "server/metrics/registry.h"

namespace tensorpager::metrics {
namespace {

std::string FindPromtool() {
  if (const char* env = std::getenv("PROMTOOL"); env != nullptr && *env) {
    return env;
  }
  return "/usr/bin/promtool";
}

struct CheckResult {
  int exit_code = -1;
  std::string output;
};

// Runs `promtool check metrics` with `text` on stdin.
CheckResult PromtoolCheck(const std::string& promtool,
                          const std::string& text) {
  const std::string dir = ::testing::TempDir();
  // Unique per process: ctest runs this binary's tests in parallel.
  const std::string input =
      absl::StrCat(dir, "/metrics_promtool_input.", ::getpid(), ".txt");
  {
    std::ofstream f(input, std::ios::trunc | std::ios::binary);
    f << text;
  }
  const std::string command =
      absl::StrCat("'", promtool, "' check metrics < '", input, "' 2>&1");
  CheckResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    result.output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  std::remove(input.c_str());
  return result;
}

class MetricsPromtoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    promtool_ = FindPromtool();
    if (::access(promtool_.c_str(), X_OK) != 0) {
      GTEST_SKIP() << promtool_
                   << " not found; install the Debian package prometheus "
                      "(or set PROMTOOL) to run this check";
    }
  }
  std::string promtool_;
};

TEST_F(MetricsPromtoolTest, EveryMetricTypePassesPromtool) {
  Registry registry;
  absl::StatusOr<Family<Counter>*> requests = registry.AddCounter(
      {.name = "tensorpager_requests_total",
       .help = "RPCs handled, by method and gRPC status code.",
       .label_names = {"method", "code"}});
  ASSERT_TRUE(requests.ok()) << requests.status();
  (*requests)->WithLabels({"Access", "OK"}).Increment(41);
  (*requests)->WithLabels({"Write", "RESOURCE_EXHAUSTED"}).Increment();
  (*requests)->WithLabels({"Swap", ""}).Increment();  // empty value

  absl::StatusOr<Family<Counter>*> busy =
      registry.AddCounter({.name = "tensorpager_io_busy_seconds_total",
                           .help = "Time the I/O engine was busy."});
  ASSERT_TRUE(busy.ok());
  (*busy)->WithLabels({}).Add(1.25);

  absl::StatusOr<Family<Gauge>*> odd = registry.AddGauge(
      {.name = "tensorpager_odd_labels",
       .help = "Label values that need escaping: \\ \" and a\nnewline.",
       .label_names = {"namespace", "note"}});
  ASSERT_TRUE(odd.ok());
  (*odd)->WithLabels({"tenant \"a\"", "C:\\path\nline two"}).Set(-3.5);
  (*odd)->WithLabels({"caf\xC3\xA9 \xE2\x82\xAC", "unicode"}).Set(NAN);
  (*odd)->WithLabels({"inf", "x"}).Set(INFINITY);
  (*odd)->WithLabels({"tiny", "x"}).Set(1e-300);

  absl::StatusOr<std::vector<double>> bounds = ExponentialBuckets(1e-6, 4, 12);
  ASSERT_TRUE(bounds.ok());
  absl::StatusOr<Family<Histogram>*> latency =
      registry.AddHistogram({.name = "tensorpager_access_duration_seconds",
                             .help = "Access latency by tier.",
                             .label_names = {"tier"}},
                            *bounds);
  ASSERT_TRUE(latency.ok()) << latency.status();
  for (int i = 0; i < 100; ++i) {
    (*latency)->WithLabels({"ram"}).Observe(1e-6 * i);
    (*latency)->WithLabels({"nvme"}).Observe(1e-4 * i);
  }
  absl::StatusOr<Family<Histogram>*> sizes = registry.AddHistogram(
      {.name = "tensorpager_block_size_bytes", .help = "Block sizes."},
      {4096, 65536, 1 << 20});
  ASSERT_TRUE(sizes.ok());
  (*sizes)->WithLabels({}).Observe(8192);

  ASSERT_TRUE(registry
                  .AddGaugeCallback({.name = "tensorpager_tier_used_bytes",
                                     .help = "Bytes held per tier.",
                                     .label_names = {"tier"}},
                                    [](SampleSink& sink) {
                                      sink.Add({"ram"}, 1 << 30);
                                      sink.Add({"nvme"}, 5e9);
                                    })
                  .ok());
  ASSERT_TRUE(registry
                  .AddCounterCallback({.name = "tensorpager_swap_outs_total",
                                       .help = "Blocks swapped out."},
                                      [] { return 17.0; })
                  .ok());
  ASSERT_TRUE(AddBuildInfo(registry, CurrentBuildInfo()).ok());

  absl::StatusOr<std::string> text = registry.Render();
  ASSERT_TRUE(text.ok()) << text.status();
  const CheckResult result = PromtoolCheck(promtool_, *text);
  EXPECT_EQ(result.exit_code, 0) << "promtool says:\n"
                                 << result.output << "\nfor:\n"
                                 << *text;
}

// The harness must be able to fail: text that breaks the lint rules the
// registry enforces is rejected by promtool too.
TEST_F(MetricsPromtoolTest, PromtoolRejectsWhatTheRegistryRefuses) {
  const CheckResult lint =
      PromtoolCheck(promtool_,
                    "# HELP tp_requests Requests.\n# TYPE tp_requests counter\n"
                    "tp_requests 1\n");
  EXPECT_EQ(lint.exit_code, 3) << lint.output;
  EXPECT_NE(lint.output.find("_total"), std::string::npos) << lint.output;

  const CheckResult parse =
      PromtoolCheck(promtool_, "# TYPE tp_x gauge\ntp_x{a=\"unterminated} 1\n");
  EXPECT_NE(parse.exit_code, 0) << parse.output;
}

}  // namespace
}  // namespace tensorpager::metrics
