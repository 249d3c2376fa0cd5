// The EvictionPolicy contract, checked for every algorithm MakePolicy
// builds: what tensorpagerd's block store and the SDK cache rely on.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"
#include "storage/policy/eviction_policy.h"

namespace tensorpager::policy {
namespace {

constexpr auto kAll = [](Handle) { return true; };

class PolicyConformanceTest : public testing::TestWithParam<Algorithm> {
 protected:
  void SetUp() override { policy_ = MakePolicy(GetParam()); }

  std::vector<Handle> Select(uint64_t bytes) {
    std::vector<Handle> out;
    policy_->SelectVictims(bytes, kAll, &out);
    return out;
  }

  std::unique_ptr<EvictionPolicy> policy_;
};

TEST_P(PolicyConformanceTest, MakePolicyBuildsTheRequestedAlgorithm) {
  EXPECT_EQ(policy_->algorithm(), GetParam());
  EXPECT_EQ(policy_->name(), AlgorithmName(GetParam()));
  Algorithm parsed;
  ASSERT_TRUE(ParseAlgorithm(policy_->name(), &parsed));
  EXPECT_EQ(parsed, GetParam());
}

TEST_P(PolicyConformanceTest, TracksCountAndBytes) {
  policy_->Insert(1, 100, 0);
  policy_->Insert(2, 50, 0);
  EXPECT_EQ(policy_->size(), 2u);
  EXPECT_EQ(policy_->resident_bytes(), 150u);
  EXPECT_TRUE(policy_->Contains(1));
  EXPECT_FALSE(policy_->Contains(3));

  // Inserting a resident key again updates its size.
  policy_->Insert(1, 10, 0);
  EXPECT_EQ(policy_->size(), 2u);
  EXPECT_EQ(policy_->resident_bytes(), 60u);

  policy_->Remove(2, RemoveReason::kEvicted);
  policy_->Remove(1, RemoveReason::kErased);
  EXPECT_EQ(policy_->size(), 0u);
  EXPECT_EQ(policy_->resident_bytes(), 0u);
  EXPECT_FALSE(policy_->Contains(1));
  EXPECT_FALSE(policy_->Contains(2));
}

TEST_P(PolicyConformanceTest, UnknownKeysAreIgnored) {
  policy_->Insert(1, 8, 0);
  policy_->Touch(99);
  policy_->Remove(99, RemoveReason::kEvicted);
  policy_->Remove(99, RemoveReason::kErased);
  policy_->SetPinned(99, true);
  EXPECT_EQ(policy_->size(), 1u);
  EXPECT_EQ(policy_->resident_bytes(), 8u);
  EXPECT_FALSE(policy_->Contains(99));
}

TEST_P(PolicyConformanceTest, SelectVictimsKeepsEntriesTracked) {
  for (Handle k = 1; k <= 10; ++k) policy_->Insert(k, 10, 0);
  std::vector<Handle> out;
  const uint64_t chosen = policy_->SelectVictims(35, kAll, &out);
  EXPECT_GE(chosen, 35u);
  EXPECT_EQ(chosen, 10 * out.size());
  EXPECT_EQ(policy_->size(), 10u);
  EXPECT_EQ(policy_->resident_bytes(), 100u);
  for (Handle k : out) EXPECT_TRUE(policy_->Contains(k)) << k;
}

TEST_P(PolicyConformanceTest, SelectVictimsAppendsAndReportsBytesChosen) {
  policy_->Insert(1, 30, 0);
  policy_->Insert(2, 70, 0);
  std::vector<Handle> out = {42};
  const uint64_t chosen = policy_->SelectVictims(1000, kAll, &out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], 42u);
  EXPECT_EQ(chosen, 100u);  // everything, short of the request
  EXPECT_EQ(std::set<Handle>(out.begin() + 1, out.end()),
            (std::set<Handle>{1, 2}));
  EXPECT_EQ(policy_->SelectVictims(0, kAll, &out), 0u);
}

TEST_P(PolicyConformanceTest, SelectsAtLeastTheRequestedBytes) {
  for (Handle k = 1; k <= 20; ++k) policy_->Insert(k, k * 10, 0);
  for (uint64_t want : {1u, 10u, 55u, 400u, 2099u}) {
    std::vector<Handle> out;
    const uint64_t chosen = policy_->SelectVictims(want, kAll, &out);
    uint64_t sum = 0;
    for (Handle k : out) sum += k * 10;
    EXPECT_EQ(chosen, sum) << want;
    EXPECT_GE(chosen, want);
    EXPECT_EQ(std::set<Handle>(out.begin(), out.end()).size(), out.size());
  }
}

TEST_P(PolicyConformanceTest, PinnedEntriesAreNeverChosen) {
  for (Handle k = 1; k <= 8; ++k) policy_->Insert(k, 10, 0);
  policy_->SetPinned(1, true);
  policy_->SetPinned(5, true);
  for (int round = 0; round < 3; ++round) {
    const std::vector<Handle> out = Select(1000);
    EXPECT_EQ(out.size(), 6u);
    for (Handle k : out) EXPECT_TRUE(k != 1 && k != 5) << k;
  }
  // Pinned entries still count as resident.
  EXPECT_EQ(policy_->resident_bytes(), 80u);
  policy_->Touch(1);
  policy_->SetPinned(1, false);
  const std::vector<Handle> out = Select(1000);
  EXPECT_EQ(out.size(), 7u);
  EXPECT_NE(std::find(out.begin(), out.end(), 1), out.end());
}

TEST_P(PolicyConformanceTest, OnlyEligibleEntriesAreChosen) {
  for (Handle k = 1; k <= 10; ++k) policy_->Insert(k, 10, 0);
  std::vector<Handle> out;
  const uint64_t chosen = policy_->SelectVictims(
      1000, [](Handle k) { return k % 2 == 0; }, &out);
  EXPECT_EQ(chosen, 50u);
  for (Handle k : out) EXPECT_EQ(k % 2, 0u) << k;
}

TEST_P(PolicyConformanceTest, RemovedKeysCanComeBack) {
  policy_->Insert(7, 10, 0);
  policy_->Remove(7, RemoveReason::kEvicted);
  EXPECT_FALSE(policy_->Contains(7));
  policy_->Insert(7, 20, 0);
  EXPECT_TRUE(policy_->Contains(7));
  EXPECT_EQ(policy_->resident_bytes(), 20u);
  policy_->Remove(7, RemoveReason::kErased);
  policy_->Insert(7, 30, 0);
  EXPECT_EQ(policy_->resident_bytes(), 30u);
}

TEST_P(PolicyConformanceTest, HigherPriorityStaysLonger) {
  policy_->SetCapacity(10);
  // Key 1 (priority 4, e.g. WEIGHT) arrives first; keys 2.. (priority 0)
  // stream through a 10-entry cache. Nobody is ever hit, so only the
  // priority can keep key 1.
  policy_->Insert(1, 1, 4);
  std::vector<Handle> out;
  Handle next = 2;
  int survived = 0;
  for (; next < 200 && policy_->Contains(1); ++next) {
    if (policy_->resident_bytes() + 1 > 10) {
      out.clear();
      policy_->SelectVictims(1, kAll, &out);
      for (Handle k : out) policy_->Remove(k, RemoveReason::kEvicted);
    }
    policy_->Insert(next, 1, 0);
    ++survived;
  }
  // A priority-0 entry lasts about 10 arrivals in a 10-entry cache.
  EXPECT_GT(survived, 30);
}

TEST_P(PolicyConformanceTest, RandomOperationsKeepTheContract) {
  std::mt19937_64 rng(7);
  absl::flat_hash_map<Handle, uint64_t> resident;
  absl::flat_hash_set<Handle> pinned;
  uint64_t bytes = 0;
  for (int step = 0; step < 20000; ++step) {
    const Handle key = rng() % 300;
    const int op = static_cast<int>(rng() % 100);
    if (op < 40) {
      const uint64_t size = 1 + rng() % 64;
      if (auto it = resident.find(key); it != resident.end()) {
        bytes -= it->second;
      }
      resident[key] = size;
      bytes += size;
      policy_->Insert(key, size, static_cast<int>(rng() % 3));
    } else if (op < 70) {
      policy_->Touch(key);
    } else if (op < 80) {
      const bool pin = rng() % 2 == 0;
      policy_->SetPinned(key, pin);
      if (resident.contains(key)) {
        if (pin) {
          pinned.insert(key);
        } else {
          pinned.erase(key);
        }
      }
    } else if (op < 85) {
      policy_->Remove(key, RemoveReason::kErased);
      if (auto it = resident.find(key); it != resident.end()) {
        bytes -= it->second;
        resident.erase(it);
        pinned.erase(key);
      }
    } else {
      const uint64_t want = 1 + rng() % 200;
      std::vector<Handle> out;
      const uint64_t chosen = policy_->SelectVictims(
          want, [](Handle k) { return k % 7 != 0; }, &out);
      uint64_t sum = 0;
      absl::flat_hash_set<Handle> seen;
      for (Handle k : out) {
        ASSERT_TRUE(resident.contains(k)) << k;
        ASSERT_FALSE(pinned.contains(k)) << k;
        ASSERT_NE(k % 7, 0u) << k;
        ASSERT_TRUE(seen.insert(k).second) << k;
        sum += resident[k];
      }
      ASSERT_EQ(chosen, sum);
      if (chosen < want) {
        // Short only when every eligible unpinned entry was chosen.
        for (const auto& [k, size] : resident) {
          if (k % 7 != 0 && !pinned.contains(k)) {
            ASSERT_TRUE(seen.contains(k)) << k;
          }
        }
      }
      // Evict about half of them, as an owner whose I/O partly failed.
      for (size_t i = 0; i < out.size(); i += 2) {
        policy_->Remove(out[i], RemoveReason::kEvicted);
        bytes -= resident[out[i]];
        resident.erase(out[i]);
      }
    }
    ASSERT_EQ(policy_->size(), resident.size());
    ASSERT_EQ(policy_->resident_bytes(), bytes);
    if (step % 97 == 0) {
      // Every resident entry once, pinned ones included, nothing else.
      absl::flat_hash_set<Handle> visited;
      policy_->ForEachResident([&](Handle k) {
        EXPECT_TRUE(visited.insert(k).second) << "twice: " << k;
      });
      ASSERT_EQ(visited.size(), resident.size());
      for (const auto& [k, size] : resident) ASSERT_TRUE(visited.contains(k));
    }
  }
  for (const auto& [k, size] : resident) ASSERT_TRUE(policy_->Contains(k));
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, PolicyConformanceTest,
                         testing::Values(Algorithm::kLru, Algorithm::kClock,
                                         Algorithm::kAdaptive),
                         [](const testing::TestParamInfo<Algorithm>& info) {
                           return std::string(AlgorithmName(info.param));
                         });

TEST(ParseAlgorithmTest, AcceptsNamesInAnyCase) {
  Algorithm a;
  ASSERT_TRUE(ParseAlgorithm("Adaptive", &a));
  EXPECT_EQ(a, Algorithm::kAdaptive);
  ASSERT_TRUE(ParseAlgorithm("CLOCK", &a));
  EXPECT_EQ(a, Algorithm::kClock);
  ASSERT_TRUE(ParseAlgorithm("lru", &a));
  EXPECT_EQ(a, Algorithm::kLru);
  EXPECT_FALSE(ParseAlgorithm("arc", &a));
  EXPECT_FALSE(ParseAlgorithm("", &a));
}

}  // namespace
}  // namespace tensorpager::policy
