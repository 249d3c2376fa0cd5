// tp_sim: trace files, cache sizes, generators, replay, and the orderings
// the policies must show on the synthetic workloads.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/policy/sim/cache_size.h"
#include "storage/policy/sim/simulator.h"
#include "storage/policy/sim/trace.h"
#include "storage/policy/sim/trace_generator.h"

namespace tensorpager::policy::sim {
namespace {

TEST(TraceCsvTest, ParsesRowsAfterTheHeader) {
  absl::StatusOr<Trace> t = ParseTraceCsv(
      "timestamp,obj_id,obj_size\n0,5,100\r\n1,-3,7\n\n2,user:9,0\n", "t");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->requests.size(), 3u);
  EXPECT_EQ(t->requests[0].key, 5u);
  EXPECT_EQ(t->requests[0].bytes, 100u);
  EXPECT_EQ(t->requests[1].key, static_cast<uint64_t>(int64_t{-3}));
  // Non-numeric ids are hashed; a 0 size counts as 1 byte.
  EXPECT_NE(t->requests[2].key, 9u);
  EXPECT_EQ(t->requests[2].bytes, 1u);
  EXPECT_EQ(t->zero_size_rows, 1u);
  absl::StatusOr<Trace> again = ParseTraceCsv("1,user:9,4\n", "u");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->requests[0].key, t->requests[2].key);
}

TEST(TraceCsvTest, ErrorsNameTheLine) {
  absl::StatusOr<Trace> t =
      ParseTraceCsv("timestamp,obj_id,obj_size\n0,1,2\n1,2\n", "bad.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("bad.csv:3"), std::string::npos)
      << t.status();
  t = ParseTraceCsv("0,1,2\n1,2,x\n", "bad.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("bad.csv:2: obj_size 'x'"),
            std::string::npos)
      << t.status();
  t = ParseTraceCsv("timestamp,obj_id,obj_size\n", "empty.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no requests"), std::string::npos);
}

TEST(TraceCsvTest, WriteThenReadRoundTrips) {
  GeneratorOptions o;
  o.workload = Workload::kKvConversation;
  o.requests = 2000;
  absl::StatusOr<Trace> t = GenerateTrace(o);
  ASSERT_TRUE(t.ok());
  const std::string path = (std::filesystem::temp_directory_path() /
                            absl::StrCat("policy_sim_test_", getpid(), ".csv"))
                               .string();
  ASSERT_TRUE(WriteTraceCsv(*t, path).ok());
  absl::StatusOr<Trace> back = ReadTraceCsv(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->requests.size(), t->requests.size());
  for (size_t i = 0; i < t->requests.size(); ++i) {
    ASSERT_EQ(back->requests[i].key, t->requests[i].key);
    ASSERT_EQ(back->requests[i].bytes, t->requests[i].bytes);
  }
  EXPECT_EQ(ReadTraceCsv("/nonexistent/trace.csv").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TraceSummaryTest, CountsUniqueObjectsAndBytes) {
  Trace t;
  t.requests = {{1, 10}, {2, 20}, {1, 10}, {3, 5}};
  const TraceSummary s = Summarize(t);
  EXPECT_EQ(s.requests, 4u);
  EXPECT_EQ(s.unique_objects, 3u);
  EXPECT_EQ(s.working_set_bytes, 35u);
  EXPECT_EQ(s.requested_bytes, 45u);
}

TEST(CacheSizeTest, ParsesPercentagesAndBytes) {
  absl::StatusOr<CacheSize> s = ParseCacheSize("10%");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->is_percent);
  // Rounds down like libCacheSim: 10% of 1011 objects is 101.
  EXPECT_EQ(ResolveCacheSize(*s, 1011), 101u);
  s = ParseCacheSize("0.5%");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(ResolveCacheSize(*s, 1000), 5u);
  s = ParseCacheSize("64MiB");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(ResolveCacheSize(*s, 1), 64u << 20);
  s = ParseCacheSize(" 4096 ");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->bytes, 4096u);
  s = ParseCacheSize("1.5k");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->bytes, 1536u);
  for (const char* bad : {"", "0%", "101%", "-5", "12parsecs", "%", "0"}) {
    EXPECT_EQ(ParseCacheSize(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(TraceGeneratorTest, IsDeterministicAndShaped) {
  for (Workload w : {Workload::kZipf, Workload::kScanHot, Workload::kLoop,
                     Workload::kKvConversation, Workload::kReversingLoop}) {
    GeneratorOptions o;
    o.workload = w;
    o.requests = 5000;
    o.objects = 500;
    absl::StatusOr<Trace> a = GenerateTrace(o);
    absl::StatusOr<Trace> b = GenerateTrace(o);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->requests.size(), 5000u) << WorkloadName(w);
    for (size_t i = 0; i < a->requests.size(); ++i) {
      ASSERT_EQ(a->requests[i].key, b->requests[i].key);
      ASSERT_EQ(a->requests[i].bytes, b->requests[i].bytes);
    }
    Workload parsed;
    ASSERT_TRUE(ParseWorkload(WorkloadName(w), &parsed));
    EXPECT_EQ(parsed, w);
  }
  GeneratorOptions loop;
  loop.workload = Workload::kLoop;
  loop.requests = 1000;
  loop.objects = 100;
  EXPECT_EQ(Summarize(*GenerateTrace(loop)).unique_objects, 100u);
  loop.mixed_sizes = true;
  EXPECT_GT(Summarize(*GenerateTrace(loop)).working_set_bytes, 100u * 4096);
  // A reversing loop sweeps up, then down, turning on the end objects.
  GeneratorOptions reversing;
  reversing.workload = Workload::kReversingLoop;
  reversing.requests = 9;
  reversing.objects = 4;
  absl::StatusOr<Trace> turns = GenerateTrace(reversing);
  ASSERT_TRUE(turns.ok()) << turns.status();
  std::vector<uint64_t> keys;
  for (const Request& q : turns->requests) keys.push_back(q.key);
  EXPECT_EQ(keys, (std::vector<uint64_t>{0, 1, 2, 3, 3, 2, 1, 0, 0}));
  // Noise replaces a share of the requests, still within the loop.
  reversing.requests = 10000;
  reversing.objects = 100;
  reversing.noise = 0.1;
  absl::StatusOr<Trace> noisy = GenerateTrace(reversing);
  ASSERT_TRUE(noisy.ok());
  reversing.noise = 0;
  absl::StatusOr<Trace> clean = GenerateTrace(reversing);
  ASSERT_TRUE(clean.ok());
  int replaced = 0;
  for (size_t i = 0; i < noisy->requests.size(); ++i) {
    EXPECT_LT(noisy->requests[i].key, 100u);
    replaced += noisy->requests[i].key != clean->requests[i].key ? 1 : 0;
  }
  EXPECT_GT(replaced, 500);
  EXPECT_LT(replaced, 1500);
  GeneratorOptions kv;
  kv.workload = Workload::kKvConversation;
  kv.requests = 20000;
  const TraceSummary s = Summarize(*GenerateTrace(kv));
  // Every turn rereads history, so requests far exceed objects.
  EXPECT_GT(s.requests, 3 * s.unique_objects);
}

TEST(TraceGeneratorTest, RejectsBadOptions) {
  GeneratorOptions o;
  o.requests = 0;
  EXPECT_EQ(GenerateTrace(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.requests = 10;
  o.objects = 0;
  EXPECT_EQ(GenerateTrace(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.objects = 10;
  o.zipf_alpha = -1;
  EXPECT_EQ(GenerateTrace(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.zipf_alpha = 0.9;
  for (double noise : {-0.1, 1.5}) {
    o.noise = noise;
    EXPECT_EQ(GenerateTrace(o).status().code(),
              absl::StatusCode::kInvalidArgument)
        << noise;
  }
  Workload w;
  EXPECT_FALSE(ParseWorkload("sequential", &w));
}

TEST(SimulatorTest, CountsMissesAndRespectsCapacity) {
  Trace t;
  // 1, 2, 3 fill a 3-byte cache; 4 evicts 1 (LRU); 1 then misses.
  t.requests = {{1, 1}, {2, 1}, {3, 1}, {1, 1}, {4, 1}, {2, 1}, {5, 5}};
  const SimResult r = Simulate(t, Algorithm::kLru, 3);
  EXPECT_EQ(r.requests, 7u);
  // Misses: 1, 2, 3, 4, 2 (evicted by 4), 5 (larger than the cache).
  EXPECT_EQ(r.misses, 6u);
  EXPECT_EQ(r.requested_bytes, 11u);
  EXPECT_EQ(r.missed_bytes, 10u);
  EXPECT_NEAR(r.miss_ratio(), 6.0 / 7, 1e-12);
  EXPECT_NEAR(r.byte_miss_ratio(), 10.0 / 11, 1e-12);
  EXPECT_EQ(r.policy, "LRU");
  EXPECT_GT(r.policy_calls, r.requests);
}

TEST(SimulatorTest, ResidentBytesNeverExceedTheCache) {
  GeneratorOptions o;
  o.workload = Workload::kZipf;
  o.requests = 20000;
  o.mixed_sizes = true;
  absl::StatusOr<Trace> t = GenerateTrace(o);
  ASSERT_TRUE(t.ok());
  const uint64_t capacity = Summarize(*t).working_set_bytes / 20;
  for (Algorithm a :
       {Algorithm::kLru, Algorithm::kClock, Algorithm::kAdaptive}) {
    std::unique_ptr<EvictionPolicy> p = MakePolicy(a);
    Trace prefix;
    for (const Request& q : t->requests) {
      prefix.requests = {q};
      Replay(prefix, *p, capacity, {.capacity_hint = false});
      ASSERT_LE(p->resident_bytes(), capacity) << AlgorithmName(a);
    }
  }
}

struct Ratios {
  double lru;
  double clock;
  double adaptive;
  double lru_bytes;
  double adaptive_bytes;
};

Ratios Compare(const GeneratorOptions& o, double share) {
  absl::StatusOr<Trace> t = GenerateTrace(o);
  EXPECT_TRUE(t.ok());
  const uint64_t capacity = static_cast<uint64_t>(
      static_cast<double>(Summarize(*t).working_set_bytes) * share);
  const SimResult lru = Simulate(*t, Algorithm::kLru, capacity);
  const SimResult clock = Simulate(*t, Algorithm::kClock, capacity);
  const SimResult adaptive = Simulate(*t, Algorithm::kAdaptive, capacity);
  return {lru.miss_ratio(), clock.miss_ratio(), adaptive.miss_ratio(),
          lru.byte_miss_ratio(), adaptive.byte_miss_ratio()};
}

TEST(SyntheticOrderingTest, AdaptiveBeatsLruOnScanPlusHotSet) {
  GeneratorOptions o;
  o.workload = Workload::kScanHot;
  o.requests = 60000;
  o.objects = 2000;
  for (bool mixed : {false, true}) {
    o.mixed_sizes = mixed;
    const Ratios r = Compare(o, 0.10);
    EXPECT_LT(r.adaptive, r.lru - 0.03) << "mixed=" << mixed;
    EXPECT_LT(r.adaptive_bytes, r.lru_bytes - 0.03) << "mixed=" << mixed;
  }
}

TEST(SyntheticOrderingTest, AdaptiveEscapesLoopsThatDefeatLruAndClock) {
  GeneratorOptions o;
  o.workload = Workload::kLoop;
  o.requests = 60000;
  o.objects = 2000;
  const Ratios r = Compare(o, 0.30);
  EXPECT_EQ(r.lru, 1.0);
  EXPECT_EQ(r.clock, 1.0);
  EXPECT_LT(r.adaptive, 0.85);
  o.mixed_sizes = true;
  const Ratios mixed = Compare(o, 0.30);
  EXPECT_LT(mixed.adaptive, 0.90);
  EXPECT_LT(mixed.adaptive_bytes, 0.95);
}

TEST(SyntheticOrderingTest, AdaptiveIsNoWorseThanLruOnZipf) {
  GeneratorOptions o;
  o.workload = Workload::kZipf;
  o.requests = 60000;
  o.objects = 5000;
  for (bool mixed : {false, true}) {
    o.mixed_sizes = mixed;
    for (double share : {0.01, 0.1}) {
      const Ratios r = Compare(o, share);
      EXPECT_LE(r.adaptive, r.lru + 0.01) << mixed << " " << share;
      EXPECT_LE(r.adaptive_bytes, r.lru_bytes + 0.01) << mixed << " " << share;
      // Unit-size Zipf is frequency's home ground.
      if (!mixed) {
        EXPECT_LT(r.adaptive, r.lru - 0.03) << share;
      }
    }
  }
}

TEST(SyntheticOrderingTest, AdaptiveStaysCloseToLruOnKvConversations) {
  // Recency-friendly (every turn rereads its conversation) with one-shot
  // activations: LRU is hard to beat when the cache holds the live
  // conversations, and ADAPTIVE must stay close to it.
  GeneratorOptions o;
  o.workload = Workload::kKvConversation;
  o.requests = 60000;
  for (double share : {0.01, 0.1}) {
    const Ratios r = Compare(o, share);
    EXPECT_LE(r.adaptive, r.lru + 0.02) << share;
    EXPECT_LE(r.adaptive_bytes, r.lru_bytes + 0.02) << share;
  }
}

}  // namespace
}  // namespace tensorpager::policy::sim
