#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics/buckets.h"
#include "server/metrics/build_info.h"
#include "server/metrics/registry.h"

namespace tensorpager::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string RenderOrDie(const Registry& registry) {
  absl::StatusOr<std::string> text = registry.Render();
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(MetricsRegistryTest, GoldenExposition) {
  Registry registry;
  absl::StatusOr<Family<Counter>*> requests =
      registry.AddCounter({.name = "tensorpager_requests_total",
                           .help = "RPCs handled, by method and code.",
                           .label_names = {"method", "code"}});
  ASSERT_TRUE(requests.ok()) << requests.status();
  (*requests)->WithLabels({"Write", "OK"}).Increment(2);
  (*requests)->WithLabels({"Access", "OK"}).Increment(5);
  (*requests)->WithLabels({"Access", "NOT_FOUND"}).Increment();

  absl::StatusOr<Family<Gauge>*> ram = registry.AddGauge(
      {.name = "tensorpager_ram_used_bytes", .help = "Bytes in the RAM tier."});
  ASSERT_TRUE(ram.ok()) << ram.status();
  (*ram)->WithLabels({}).Set(1536);

  absl::StatusOr<Family<Histogram>*> latency =
      registry.AddHistogram({.name = "tensorpager_access_duration_seconds",
                             .help = "Access latency."},
                            {0.5, 1, 4});
  ASSERT_TRUE(latency.ok()) << latency.status();
  Histogram& h = (*latency)->WithLabels({});
  for (double v : {0.25, 0.5, 2.0, 8.0}) h.Observe(v);

  ASSERT_TRUE(registry
                  .AddGaugeCallback({.name = "tensorpager_tier_blocks",
                                     .help = "Blocks per tier.",
                                     .label_names = {"tier"}},
                                    [](SampleSink& sink) {
                                      sink.Add({"ram"}, 3);
                                      sink.Add({"nvme"}, 7);
                                    })
                  .ok());
  ASSERT_TRUE(registry
                  .AddCounterCallback(
                      {.name = "tensorpager_swaps_total", .help = "Swap-outs."},
                      [] { return 12.0; })
                  .ok());
  // A labeled family with no children yet is left out.
  ASSERT_TRUE(registry
                  .AddCounter({.name = "tensorpager_errors_total",
                               .help = "Errors.",
                               .label_names = {"code"}})
                  .ok());

  EXPECT_EQ(RenderOrDie(registry),
            R"(# HELP tensorpager_access_duration_seconds Access latency.
# TYPE tensorpager_access_duration_seconds histogram
tensorpager_access_duration_seconds_bucket{le="0.5"} 2
tensorpager_access_duration_seconds_bucket{le="1"} 2
tensorpager_access_duration_seconds_bucket{le="4"} 3
tensorpager_access_duration_seconds_bucket{le="+Inf"} 4
tensorpager_access_duration_seconds_sum 10.75
tensorpager_access_duration_seconds_count 4
# HELP tensorpager_ram_used_bytes Bytes in the RAM tier.
# TYPE tensorpager_ram_used_bytes gauge
tensorpager_ram_used_bytes 1536
# HELP tensorpager_requests_total RPCs handled, by method and code.
# TYPE tensorpager_requests_total counter
tensorpager_requests_total{method="Access",code="NOT_FOUND"} 1
tensorpager_requests_total{method="Access",code="OK"} 5
tensorpager_requests_total{method="Write",code="OK"} 2
# HELP tensorpager_swaps_total Swap-outs.
# TYPE tensorpager_swaps_total counter
tensorpager_swaps_total 12
# HELP tensorpager_tier_blocks Blocks per tier.
# TYPE tensorpager_tier_blocks gauge
tensorpager_tier_blocks{tier="nvme"} 7
tensorpager_tier_blocks{tier="ram"} 3
)");
}

TEST(MetricsRegistryTest, UnlabeledFamiliesShowZeroBeforeTheFirstUpdate) {
  Registry registry;
  ASSERT_TRUE(
      registry.AddCounter({.name = "tp_events_total", .help = "Events."}).ok());
  EXPECT_EQ(RenderOrDie(registry),
            "# HELP tp_events_total Events.\n# TYPE tp_events_total counter\n"
            "tp_events_total 0\n");
}

TEST(MetricsRegistryTest, LabelValuesAndHelpAreEscaped) {
  Registry registry;
  absl::StatusOr<Family<Gauge>*> g =
      registry.AddGauge({.name = "tp_odd_things",
                         .help = "Help with a \\ backslash\nand a newline.",
                         .label_names = {"path"}});
  ASSERT_TRUE(g.ok());
  (*g)->WithLabels({"C:\\dir\\\"quoted\"\nnext"}).Set(1);
  EXPECT_EQ(RenderOrDie(registry),
            R"(# HELP tp_odd_things Help with a \\ backslash\nand a newline.
# TYPE tp_odd_things gauge
tp_odd_things{path="C:\\dir\\\"quoted\"\nnext"} 1
)");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeAndInclusive) {
  Registry registry;
  absl::StatusOr<Family<Histogram>*> family = registry.AddHistogram(
      {.name = "tp_io_size_bytes", .help = "I/O sizes.", .label_names = {"op"}},
      {1024, 4096, 65536, std::numeric_limits<double>::infinity()});
  ASSERT_TRUE(family.ok()) << family.status();
  Histogram& reads = (*family)->WithLabels({"read"});
  reads.Observe(1024);  // on a bound: counted in that bucket (le = <=)
  reads.Observe(1025);
  reads.Observe(4096);
  reads.Observe(1e9);
  reads.Observe(std::nan(""));  // NaN: only in +Inf, as Prometheus does
  reads.Observe(-5);
  const Histogram::Snapshot s = reads.TakeSnapshot();
  EXPECT_THAT(s.cumulative_counts, ElementsAre(2, 4, 4, 6));
  EXPECT_TRUE(std::isnan(s.sum));

  Histogram& writes = (*family)->WithLabels({"write"});
  writes.Observe(100);
  EXPECT_THAT(RenderOrDie(registry),
              HasSubstr("tp_io_size_bytes_bucket{op=\"write\",le=\"1024\"} 1\n"
                        "tp_io_size_bytes_bucket{op=\"write\",le=\"4096\"} 1\n"
                        "tp_io_size_bytes_bucket{op=\"write\",le=\"65536\"} 1\n"
                        "tp_io_size_bytes_bucket{op=\"write\",le=\"+Inf\"} 1\n"
                        "tp_io_size_bytes_sum{op=\"write\"} 100\n"
                        "tp_io_size_bytes_count{op=\"write\"} 1\n"));
}

TEST(MetricsRegistryTest, HistogramWithOnlyTheInfBucket) {
  Registry registry;
  absl::StatusOr<Family<Histogram>*> family =
      registry.AddHistogram({.name = "tp_wait_seconds", .help = "Waits."}, {});
  ASSERT_TRUE(family.ok());
  (*family)->WithLabels({}).Observe(3);
  EXPECT_THAT(RenderOrDie(registry),
              HasSubstr("tp_wait_seconds_bucket{le=\"+Inf\"} 1\n"
                        "tp_wait_seconds_sum 3\ntp_wait_seconds_count 1\n"));
}

TEST(MetricsRegistryTest, CounterAndGaugeArithmetic) {
  Registry registry;
  absl::StatusOr<Family<Counter>*> c =
      registry.AddCounter({.name = "tp_work_seconds_total", .help = "Work."});
  absl::StatusOr<Family<Gauge>*> g =
      registry.AddGauge({.name = "tp_queue_depth", .help = "Depth."});
  ASSERT_TRUE(c.ok() && g.ok());
  Counter& counter = (*c)->WithLabels({});
  counter.Increment();
  counter.Increment(2);
  counter.Add(0.25);
  counter.Add(-1);            // ignored: counters never go down
  counter.Add(std::nan(""));  // ignored
  EXPECT_EQ(counter.Value(), 3.25);
  Gauge& gauge = (*g)->WithLabels({});
  gauge.Set(10);
  gauge.Add(2.5);
  gauge.Sub(0.5);
  gauge.Increment();
  gauge.Decrement();
  gauge.Decrement();
  EXPECT_EQ(gauge.Value(), 11);
}

TEST(MetricsRegistryTest, SameLabelsGiveTheSameChild) {
  Registry registry;
  absl::StatusOr<Family<Counter>*> f = registry.AddCounter(
      {.name = "tp_x_total", .help = "X.", .label_names = {"a", "b"}});
  ASSERT_TRUE(f.ok());
  Counter& first = (*f)->WithLabels({"1", "2"});
  const std::string a = "1";
  const std::string b = "2";
  EXPECT_EQ(&first, &(*f)->WithLabels({a, b}));
  const absl::string_view values[] = {"1", "2"};
  absl::StatusOr<Counter*> child = (*f)->Child(values);
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(*child, &first);
  EXPECT_NE(&first, &(*f)->WithLabels({"2", "1"}));
}

TEST(MetricsRegistryTest, ChildRejectsWrongArityAndNonUtf8) {
  Registry registry;
  absl::StatusOr<Family<Gauge>*> f = registry.AddGauge(
      {.name = "tp_y", .help = "Y.", .label_names = {"tier", "op"}});
  ASSERT_TRUE(f.ok());
  const absl::string_view one[] = {"ram"};
  absl::StatusOr<Gauge*> child = (*f)->Child(one);
  EXPECT_EQ(child.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(child.status().message()),
              HasSubstr("takes 2 label values (tier, op), got 1"));
  const absl::string_view bad[] = {"ram", "\xFF"};
  EXPECT_EQ((*f)->Child(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryDeathTest, WithLabelsAbortsOnWrongArity) {
  Registry registry;
  absl::StatusOr<Family<Counter>*> f = registry.AddCounter(
      {.name = "tp_z_total", .help = "Z.", .label_names = {"tier"}});
  ASSERT_TRUE(f.ok());
  EXPECT_DEATH((*f)->WithLabels({"ram", "extra"}),
               "takes 1 label values \\(tier\\), got 2");
}

TEST(MetricsRegistryTest, RejectsInvalidSpecs) {
  Registry registry;
  EXPECT_EQ(registry.AddCounter({.name = "tp_requests", .help = "R."})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      registry.AddGauge({.name = "tp_bad-name", .help = "B."}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      registry.AddGauge({.name = "tp_g", .help = "G.", .label_names = {"le"}})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry
                .AddHistogram({.name = "tp_h_seconds",
                               .help = "H.",
                               .label_names = {"__reserved"}},
                              {1})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddGauge({.name = "tp_no_help"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing half-registered: the output stays empty.
  EXPECT_EQ(RenderOrDie(registry), "");
}

TEST(MetricsRegistryTest, RejectsDuplicateFamiliesOfAnyKind) {
  Registry registry;
  ASSERT_TRUE(registry.AddGauge({.name = "tp_level", .help = "L."}).ok());
  const absl::Status again =
      registry.AddGauge({.name = "tp_level", .help = "L."}).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.message()), HasSubstr("tp_level"));
  EXPECT_EQ(registry.AddHistogram({.name = "tp_level", .help = "L."}, {1})
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry
                .AddGaugeCallback({.name = "tp_level", .help = "L."},
                                  [] { return 1.0; })
                .code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(MetricsRegistryTest, RejectsBadBucketBounds) {
  Registry registry;
  const double inf = std::numeric_limits<double>::infinity();
  for (const std::vector<double>& bounds : std::vector<std::vector<double>>{
           {1, 1}, {2, 1}, {std::nan(""), 1}, {-inf, 1}, {1, inf, 2}}) {
    absl::StatusOr<Family<Histogram>*> h =
        registry.AddHistogram({.name = "tp_h_seconds", .help = "H."}, bounds);
    EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(h.status().message()), HasSubstr("tp_h_seconds"));
  }
}

TEST(MetricsBucketsTest, Generators) {
  absl::StatusOr<std::vector<double>> exp = ExponentialBuckets(0.001, 10, 4);
  ASSERT_TRUE(exp.ok());
  ASSERT_EQ(exp->size(), 4u);
  EXPECT_DOUBLE_EQ((*exp)[0], 0.001);
  EXPECT_DOUBLE_EQ((*exp)[3], 1);
  EXPECT_THAT(*LinearBuckets(1, 2, 3), ElementsAre(1, 3, 5));
  EXPECT_EQ(ExponentialBuckets(0, 2, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExponentialBuckets(1, 1, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExponentialBuckets(1, 2, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExponentialBuckets(1e300, 1e10, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LinearBuckets(0, 0, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LinearBuckets(1e20, 1, 3).status().code(),
            absl::StatusCode::kInvalidArgument);  // 1e20 + 1 == 1e20
}

TEST(MetricsRegistryTest, CallbackMistakesFailTheScrapeNamingTheFamily) {
  struct Case {
    MetricType type;
    std::function<void(SampleSink&)> collect;
    std::string why;
  };
  const std::vector<Case> cases = {
      {MetricType::kGauge,
       [](SampleSink& s) {
         s.Add({"a", "b"}, 1);
       },
       "takes 1 label values"},
      {MetricType::kGauge,
       [](SampleSink& s) {
         s.Add({"x"}, 1);
         s.Add({"x"}, 2);
       },
       "twice"},
      {MetricType::kGauge, [](SampleSink& s) { s.Add({"\xC3"}, 1); }, "UTF-8"},
      {MetricType::kCounter, [](SampleSink& s) { s.Add({"x"}, -1); }, ">= 0"},
      {MetricType::kCounter, [](SampleSink& s) { s.Add({"x"}, std::nan("")); },
       ">= 0"},
  };
  for (const Case& c : cases) {
    Registry registry;
    const std::string name =
        c.type == MetricType::kCounter ? "tp_cb_total" : "tp_cb";
    const MetricSpec spec{.name = name, .help = "C.", .label_names = {"k"}};
    ASSERT_TRUE((c.type == MetricType::kCounter
                     ? registry.AddCounterCallback(spec, c.collect)
                     : registry.AddGaugeCallback(spec, c.collect))
                    .ok());
    absl::StatusOr<std::string> text = registry.Render();
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInternal) << c.why;
    EXPECT_THAT(std::string(text.status().message()), HasSubstr(name));
    EXPECT_THAT(std::string(text.status().message()), HasSubstr(c.why));
  }
}

TEST(MetricsRegistryTest, CallbackRegistrationErrors) {
  Registry registry;
  EXPECT_EQ(registry
                .AddGaugeCallback(
                    {.name = "tp_a", .help = "A.", .label_names = {"tier"}},
                    [] { return 1.0; })
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry
                .AddGaugeCallback({.name = "tp_b", .help = "B."},
                                  std::function<double()>())
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry
                .AddCounterCallback({.name = "tp_c", .help = "C."},
                                    [] { return 1.0; })
                .code(),
            absl::StatusCode::kInvalidArgument);  // counters end in _total
}

TEST(MetricsRegistryTest, CallbackWithNoSamplesIsLeftOut) {
  Registry registry;
  int calls = 0;
  ASSERT_TRUE(registry
                  .AddGaugeCallback({.name = "tp_gpu_level",
                                     .help = "Per GPU.",
                                     .label_names = {"gpu"}},
                                    [&calls](SampleSink&) { ++calls; })
                  .ok());
  EXPECT_EQ(RenderOrDie(registry), "");
  EXPECT_EQ(RenderOrDie(registry), "");
  EXPECT_EQ(calls, 2);  // evaluated at every scrape, not cached
}

TEST(MetricsBuildInfoTest, ConstantOneWithBuildLabels) {
  const BuildInfo info = CurrentBuildInfo();
  EXPECT_FALSE(info.version.empty());
  EXPECT_THAT(info.compiler,
              ::testing::AnyOf(StartsWith("gcc "), StartsWith("clang ")));
  EXPECT_FALSE(info.build_type.empty());

  Registry registry;
  ASSERT_TRUE(AddBuildInfo(registry, {.version = "1.2.3",
                                      .compiler = "gcc 12.2.0",
                                      .build_type = "Release"})
                  .ok());
  EXPECT_EQ(RenderOrDie(registry),
            "# HELP tensorpager_build_info A constant 1, labeled with the "
            "version, compiler and build type tensorpagerd was built from.\n"
            "# TYPE tensorpager_build_info gauge\n"
            "tensorpager_build_info{version=\"1.2.3\",compiler=\"gcc "
            "12.2.0\",build_type=\"Release\"} 1\n");
  EXPECT_EQ(AddBuildInfo(registry, info).code(),
            absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace tensorpager::metrics
