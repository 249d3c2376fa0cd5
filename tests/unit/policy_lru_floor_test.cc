// ADAPTIVE against plain LRU on every synthetic workload and every public
// reference trace, at 1%, 10%, 25% and 50% of the working set: it may win
// by a lot, and must never lose by more than 0.005 of miss ratio. An
// LRU-friendly workload where the frequency filter loses to LRU would be a
// reason to switch ADAPTIVE off; the reversing loop (sweep up, sweep back
// down) is the one that used to.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/policy/sim/simulator.h"
#include "storage/policy/sim/trace.h"
#include "storage/policy/sim/trace_generator.h"

namespace tensorpager::policy::sim {
namespace {

constexpr double kTolerance = 0.005;
constexpr double kShares[] = {0.01, 0.10, 0.25, 0.50};

uint64_t CapacityFor(const Trace& trace, double share) {
  const double bytes =
      static_cast<double>(Summarize(trace).working_set_bytes) * share;
  return std::max<uint64_t>(1, static_cast<uint64_t>(bytes));
}

void ExpectNoWorseThanLru(const Trace& trace, const std::string& name) {
  for (double share : kShares) {
    const uint64_t capacity = CapacityFor(trace, share);
    const double lru = Simulate(trace, Algorithm::kLru, capacity).miss_ratio();
    const double adaptive =
        Simulate(trace, Algorithm::kAdaptive, capacity).miss_ratio();
    EXPECT_LE(adaptive, lru + kTolerance)
        << name << " at " << share * 100 << "%: LRU " << lru << ", ADAPTIVE "
        << adaptive;
  }
}

Trace Generate(const GeneratorOptions& options) {
  absl::StatusOr<Trace> trace = GenerateTrace(options);
  EXPECT_TRUE(trace.ok()) << trace.status();
  return trace.ok() ? *std::move(trace) : Trace{};
}

TEST(AdaptiveVsLruTest, ReversingLoops) {
  // 100 round trips over 1000 objects; plain, with mixed sizes, and with 5%
  // of the requests replaced by random objects of the loop.
  GeneratorOptions o;
  o.workload = Workload::kReversingLoop;
  o.requests = 200'000;
  o.objects = 1000;
  ExpectNoWorseThanLru(Generate(o), "reversing_loop");
  o.mixed_sizes = true;
  ExpectNoWorseThanLru(Generate(o), "reversing_loop --mixed_sizes");
  o.mixed_sizes = false;
  o.noise = 0.05;
  ExpectNoWorseThanLru(Generate(o), "reversing_loop --noise=0.05");
}

TEST(AdaptiveVsLruTest, LongReversingLoopCostsAtMostOneCacheOfMisses) {
  // Sweeps of 10000 objects, 10 round trips. The first turn looks like any
  // recency-friendly pattern and ADAPTIVE moves to it: once, for about
  // one cache's worth of misses (the entries its main segment held), and
  // never again.
  GeneratorOptions o;
  o.workload = Workload::kReversingLoop;
  o.requests = 200'000;
  o.objects = 10'000;
  const Trace trace = Generate(o);
  for (double share : kShares) {
    const uint64_t capacity = CapacityFor(trace, share);
    const SimResult lru = Simulate(trace, Algorithm::kLru, capacity);
    const SimResult adaptive = Simulate(trace, Algorithm::kAdaptive, capacity);
    const double extra_misses =
        static_cast<double>(adaptive.misses) - static_cast<double>(lru.misses);
    EXPECT_LE(extra_misses, 1.1 * static_cast<double>(capacity) + 100)
        << share * 100 << "%: LRU " << lru.miss_ratio() << ", ADAPTIVE "
        << adaptive.miss_ratio();
  }
}

TEST(AdaptiveVsLruTest, OtherGenerators) {
  // tp-sim's defaults: 200000 requests over 10000 objects.
  struct Case {
    Workload workload;
    bool mixed_sizes;
  };
  for (const Case& c : std::vector<Case>{{Workload::kZipf, false},
                                         {Workload::kZipf, true},
                                         {Workload::kScanHot, false},
                                         {Workload::kScanHot, true},
                                         {Workload::kLoop, false},
                                         {Workload::kLoop, true},
                                         {Workload::kKvConversation, false}}) {
    GeneratorOptions o;
    o.workload = c.workload;
    o.mixed_sizes = c.mixed_sizes;
    ExpectNoWorseThanLru(Generate(o),
                         absl::StrCat(WorkloadName(c.workload),
                                      c.mixed_sizes ? " --mixed_sizes" : ""));
  }
}

TEST(AdaptiveVsLruTest, ReferenceTraces) {
  const char* dir = std::getenv("TP_TRACES_DIR");
  std::vector<std::filesystem::path> csvs;
  std::error_code error;
  if (dir != nullptr) {
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
      if (entry.path().extension() == ".csv") csvs.push_back(entry.path());
    }
  }
  if (csvs.empty()) {
    GTEST_SKIP() << "TP_TRACES_DIR is unset or holds no .csv traces; the "
                    "public reference traces are not available here";
  }
  std::sort(csvs.begin(), csvs.end());
  for (const std::filesystem::path& csv : csvs) {
    absl::StatusOr<Trace> trace = ReadTraceCsv(csv.string());
    ASSERT_TRUE(trace.ok()) << trace.status();
    ExpectNoWorseThanLru(*trace, csv.filename().string());
  }
}

}  // namespace
}  // namespace tensorpager::policy::sim
