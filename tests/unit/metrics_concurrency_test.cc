// Many threads updating shared children while others create children and
// scrape: totals must come out exact. Run under -DTP_SANITIZE=thread too.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics/registry.h"

namespace tensorpager::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kThreads = 8;
constexpr int kIterations = 20000;

TEST(MetricsConcurrencyTest, ConcurrentUpdatesAddUpExactly) {
  Registry registry;
  absl::StatusOr<Family<Counter>*> ops = registry.AddCounter(
      {.name = "tp_ops_total", .help = "Ops.", .label_names = {"thread"}});
  absl::StatusOr<Family<Counter>*> work =
      registry.AddCounter({.name = "tp_work_seconds_total", .help = "Work."});
  absl::StatusOr<Family<Gauge>*> depth =
      registry.AddGauge({.name = "tp_depth", .help = "Depth."});
  absl::StatusOr<Family<Histogram>*> sizes = registry.AddHistogram(
      {.name = "tp_size_bytes", .help = "Sizes."}, {1, 2, 4});
  ASSERT_TRUE(ops.ok() && work.ok() && depth.ok() && sizes.ok());

  Counter& shared_ops = (*ops)->WithLabels({"shared"});
  Counter& work_seconds = (*work)->WithLabels({});
  Gauge& gauge = (*depth)->WithLabels({});
  Histogram& histogram = (*sizes)->WithLabels({});

  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    while (!done.load()) {
      absl::StatusOr<std::string> text = registry.Render();
      ASSERT_TRUE(text.ok()) << text.status();
      ASSERT_THAT(*text, HasSubstr("# TYPE tp_size_bytes histogram\n"));
      scrapes.fetch_add(1);
    }
  });

  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      // Each thread also creates children concurrently with the others
      // and with the scraper.
      Counter& own = (*ops)->WithLabels({absl::StrCat("t", t)});
      for (int i = 0; i < kIterations; ++i) {
        shared_ops.Increment();
        own.Increment(2);
        work_seconds.Add(0.5);
        gauge.Add(1);
        histogram.Observe(static_cast<double>(1 << (i % 4)));  // 1, 2, 4, 8
        if (i % 1000 == 0) (*ops)->WithLabels({absl::StrCat("t", t)});
      }
    });
  }
  for (std::thread& w : workers) w.join();
  done.store(true);
  scraper.join();
  EXPECT_GT(scrapes.load(), 0);

  constexpr int kTotal = kThreads * kIterations;
  EXPECT_EQ(shared_ops.Value(), kTotal);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ((*ops)->WithLabels({absl::StrCat("t", t)}).Value(),
              2 * kIterations);
  }
  // Multiples of 0.5 and small integers are exact in a double, so the
  // compare-and-swap loops must not lose a single update.
  EXPECT_EQ(work_seconds.Value(), kTotal * 0.5);
  EXPECT_EQ(gauge.Value(), kTotal);
  const Histogram::Snapshot snapshot = histogram.TakeSnapshot();
  EXPECT_THAT(snapshot.cumulative_counts,
              ElementsAre(kTotal / 4, kTotal / 2, 3 * kTotal / 4, kTotal));
  EXPECT_EQ(snapshot.sum, kTotal / 4 * (1 + 2 + 4 + 8));

  absl::StatusOr<std::string> text = registry.Render();
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr(absl::StrCat("tp_ops_total{thread=\"shared\"} ",
                                            kTotal, "\n")));
  EXPECT_THAT(*text,
              HasSubstr(absl::StrCat("tp_size_bytes_count ", kTotal, "\n")));
}

TEST(MetricsConcurrencyTest, ConcurrentRegistrationsKeepEveryFamily) {
  Registry registry;
  std::vector<std::thread> threads;
  std::atomic<int> already_exists{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        // Every thread also races the others for one shared name.
        if (!registry.AddGauge({.name = "tp_shared", .help = "S."}).ok()) {
          already_exists.fetch_add(1);
        }
        ASSERT_TRUE(registry
                        .AddGauge({.name = absl::StrCat("tp_g", t, "_", i),
                                   .help = "G."})
                        .ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(already_exists.load(), kThreads * 50 - 1);
  absl::StatusOr<std::string> text = registry.Render();
  ASSERT_TRUE(text.ok());
  size_t types = 0;
  for (size_t pos = 0; (pos = text->find("# TYPE ", pos)) != std::string::npos;
       ++pos) {
    ++types;
  }
  EXPECT_EQ(types, kThreads * 50 + 1u);
}

}  // namespace
}  // namespace tensorpager::metrics
