// ADAPTIVE's behaviour: admission, ghosts, window adaptation, size
// awareness, and the frequency sketch underneath.
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "storage/policy/adaptive_policy.h"
#include "storage/policy/frequency_sketch.h"
#include "storage/policy/lru_policy.h"

namespace tensorpager::policy {
namespace {

constexpr auto kAll = [](Handle) { return true; };

// Drives a policy like the block store: hit -> Touch; miss -> make room,
// evict, Insert. Returns whether the request hit.
class Cache {
 public:
  Cache(EvictionPolicy* policy, uint64_t capacity)
      : policy_(policy), capacity_(capacity) {
    policy_->SetCapacity(capacity);
  }

  bool Request(Handle key, uint64_t bytes = 1) {
    if (policy_->Contains(key)) {
      policy_->Touch(key);
      return true;
    }
    const uint64_t resident = policy_->resident_bytes();
    if (resident + bytes > capacity_) {
      victims_.clear();
      policy_->SelectVictims(resident + bytes - capacity_, kAll, &victims_);
      for (Handle v : victims_) policy_->Remove(v, RemoveReason::kEvicted);
    }
    policy_->Insert(key, bytes, 0);
    return false;
  }

 private:
  EvictionPolicy* policy_;
  uint64_t capacity_;
  std::vector<Handle> victims_;
};

TEST(AdaptivePolicyTest, HotSetSurvivesAScan) {
  AdaptivePolicy p;
  Cache cache(&p, 100);
  // 50 hot keys, requested often.
  for (int round = 0; round < 20; ++round) {
    for (Handle k = 0; k < 50; ++k) cache.Request(k);
  }
  // A scan of 1000 keys seen once each.
  for (Handle k = 1000; k < 2000; ++k) cache.Request(k);
  int hot_resident = 0;
  for (Handle k = 0; k < 50; ++k) hot_resident += p.Contains(k) ? 1 : 0;
  EXPECT_GE(hot_resident, 45);
  EXPECT_LE(p.resident_bytes(), 100u);
}

TEST(AdaptivePolicyTest, LoopLargerThanTheCacheStillHits) {
  AdaptivePolicy p;
  Cache cache(&p, 100);
  int hits = 0;
  for (int pass = 0; pass < 40; ++pass) {
    for (Handle k = 0; k < 500; ++k) hits += cache.Request(k) ? 1 : 0;
  }
  // LRU and CLOCK hit nothing here; keeping a fixed subset hits 20%.
  EXPECT_GT(hits, 40 * 500 / 10);
}

TEST(AdaptivePolicyTest, EvictedKeysBecomeGhostsErasedOnesDoNot) {
  AdaptivePolicy p;
  p.Insert(1, 10, 0);
  p.Insert(2, 10, 0);
  p.Remove(1, RemoveReason::kEvicted);
  EXPECT_EQ(p.ghost_count(), 1u);
  EXPECT_FALSE(p.Contains(1));
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(p.resident_bytes(), 10u);
  // A ghost is not resident: touching or pinning it does nothing.
  p.Touch(1);
  p.SetPinned(1, true);
  EXPECT_FALSE(p.Contains(1));
  // Erasing forgets the ghost too.
  p.Remove(1, RemoveReason::kErased);
  EXPECT_EQ(p.ghost_count(), 0u);
  p.Remove(2, RemoveReason::kErased);
  EXPECT_EQ(p.ghost_count(), 0u);
  EXPECT_EQ(p.size(), 0u);
}

TEST(AdaptivePolicyTest, GhostsAreBoundedByTheBudget) {
  AdaptivePolicy p;
  Cache cache(&p, 50);
  for (Handle k = 0; k < 10000; ++k) cache.Request(k);
  // Each ghost list remembers at most one budget of bytes.
  EXPECT_LE(p.ghost_count(), 100u);
  EXPECT_GT(p.ghost_count(), 0u);
}

TEST(AdaptivePolicyTest, ReusedOnceTrafficGrowsTheWindow) {
  // Every key is requested twice, 100 arrivals apart, never again (the
  // corda pattern). Between the two requests 200 distinct keys are used,
  // so a 300-entry LRU hits every second request; admission by frequency
  // hits none unless the window grows to hold them.
  AdaptivePolicy p;
  Cache cache(&p, 300);
  int hits = 0;
  int requests = 0;
  for (Handle k = 0; k < 20000; ++k) {
    cache.Request(k);
    ++requests;
    if (k >= 100) {
      hits += cache.Request(k - 100) ? 1 : 0;
      ++requests;
    }
  }
  EXPECT_GT(p.window_share(), 0.5);
  // The optimum is one hit per key, i.e. half the requests.
  EXPECT_GT(hits, requests * 45 / 100);
}

TEST(AdaptivePolicyTest, ColdLargeCandidateDoesNotDisplaceHotSmallEntries) {
  AdaptivePolicy p;
  Cache cache(&p, 1000);
  // 90 hot 10-byte entries, requested many times.
  for (int round = 0; round < 30; ++round) {
    for (Handle k = 0; k < 90; ++k) cache.Request(k, 10);
  }
  // A stream of 200-byte objects seen once each.
  for (Handle k = 1000; k < 1100; ++k) cache.Request(k, 200);
  int hot_resident = 0;
  for (Handle k = 0; k < 90; ++k) hot_resident += p.Contains(k) ? 1 : 0;
  // The window lets a few pass through; main keeps the hot set.
  EXPECT_GE(hot_resident, 80);
}

TEST(AdaptivePolicyTest, PinnedEntriesWaitOutsideTheQueues) {
  AdaptivePolicy p;
  Cache cache(&p, 20);
  for (Handle k = 0; k < 20; ++k) cache.Request(k);
  p.SetPinned(3, true);
  for (Handle k = 100; k < 1000; ++k) cache.Request(k);
  EXPECT_TRUE(p.Contains(3));
  p.SetPinned(3, false);
  for (Handle k = 1000; k < 2000; ++k) cache.Request(k);
  EXPECT_FALSE(p.Contains(3));
}

TEST(AdaptivePolicyTest, WorksWithoutACapacityHint) {
  // The SDK or a test may never call SetCapacity: the budget is inferred
  // from the resident bytes when victims are requested.
  AdaptivePolicy p;
  std::vector<Handle> victims;
  int hot_resident = 0;
  for (int round = 0; round < 20; ++round) {
    for (Handle k = 0; k < 30; ++k) {
      if (p.Contains(k)) {
        p.Touch(k);
        continue;
      }
      if (p.resident_bytes() + 1 > 64) {
        victims.clear();
        p.SelectVictims(p.resident_bytes() + 1 - 64, kAll, &victims);
        for (Handle v : victims) p.Remove(v, RemoveReason::kEvicted);
      }
      p.Insert(k, 1, 0);
    }
    // One-hit traffic in between.
    for (Handle k = 0; k < 100; ++k) {
      const Handle cold = 1000 + round * 100 + k;
      if (p.resident_bytes() + 1 > 64) {
        victims.clear();
        p.SelectVictims(p.resident_bytes() + 1 - 64, kAll, &victims);
        for (Handle v : victims) p.Remove(v, RemoveReason::kEvicted);
      }
      p.Insert(cold, 1, 0);
    }
  }
  for (Handle k = 0; k < 30; ++k) hot_resident += p.Contains(k) ? 1 : 0;
  EXPECT_GE(hot_resident, 25);
  EXPECT_LE(p.resident_bytes(), 64u);
}

TEST(AdaptivePolicyTest, AdmittedCandidatesMoveToMainDuringSelection) {
  AdaptivePolicy p;
  Cache cache(&p, 100);
  // Key 7 is requested often before it ever reaches main.
  for (int i = 0; i < 5; ++i) cache.Request(7);
  EXPECT_TRUE(p.InWindow(7));
  for (Handle k = 100; k < 120; ++k) cache.Request(k);
  EXPECT_TRUE(p.Contains(7));
  EXPECT_FALSE(p.InWindow(7));
}

// Sweeps keys [first, first + n) up and then back down, `round_trips`
// times; returns the hits.
int ReversingLoop(Cache& cache, Handle first, Handle n, int round_trips) {
  int hits = 0;
  for (int trip = 0; trip < round_trips; ++trip) {
    for (Handle k = 0; k < n; ++k) hits += cache.Request(first + k) ? 1 : 0;
    for (Handle k = n; k > 0; --k) hits += cache.Request(first + k - 1) ? 1 : 0;
  }
  return hits;
}

TEST(AdaptivePolicyTest, ReversingLoopFallsBackToRecency) {
  // Each turn re-requests the newest keys first: LRU hits the 100 it
  // holds, twice per round trip. Frequency admission used to half-switch
  // main at every turn and hit far less.
  AdaptivePolicy p;
  Cache cache(&p, 100);
  const int hits = ReversingLoop(cache, 0, 400, 40);
  EXPECT_TRUE(p.recency_mode());
  EXPECT_GT(p.window_share(), 0.9);
  LruPolicy lru;
  Cache lru_cache(&lru, 100);
  const int lru_hits = ReversingLoop(lru_cache, 0, 400, 40);
  // What the switch costs, once: about one cache of misses.
  EXPECT_GT(hits, lru_hits - 150) << "LRU hit " << lru_hits;
}

TEST(AdaptivePolicyTest, FallbackKeepsWhatLruWouldHoldInLruOrder) {
  // Ten hot keys earn main places; then a reversing loop, with the hot
  // keys requested now and then, sends the policy to recency mode. At that
  // moment every resident key that LRU also holds, the hot ones in main
  // included, must be in the window in LRU's order, so that what main
  // keeps goes first and the switch does not cost a cache of misses.
  AdaptivePolicy p;
  Cache cache(&p, 100);
  LruPolicy lru;
  Cache lru_cache(&lru, 100);
  auto request = [&](Handle k) {
    cache.Request(k);
    lru_cache.Request(k);
  };
  for (int round = 0; round < 20; ++round) {
    for (Handle k = 0; k < 10; ++k) request(k);
  }
  int steps = 0;
  for (int trip = 0; trip < 40 && !p.recency_mode(); ++trip) {
    for (int i = 0; i < 600 && !p.recency_mode(); ++i) {
      const int up = i % 300;
      request(1000 + static_cast<Handle>(i < 300 ? up : 299 - up));
      if (++steps % 25 == 0) request(static_cast<Handle>(steps / 25 % 10));
    }
  }
  ASSERT_TRUE(p.recency_mode());
  int shared = 0;
  for (Handle k = 0; k < 1300; ++k) {
    if (!p.Contains(k) || !lru.Contains(k)) continue;
    ++shared;
    EXPECT_TRUE(p.InWindow(k)) << k;
  }
  EXPECT_GT(shared, 0);
  // The hot keys LRU holds survive the next new keys longer than main's
  // leftovers: evicting 10 entries takes none of them.
  int hot_before = 0;
  for (Handle k = 0; k < 10; ++k)
    hot_before += lru.Contains(k) && p.Contains(k);
  for (Handle k = 5000; k < 5010; ++k) cache.Request(k);
  int hot_after = 0;
  for (Handle k = 0; k < 10; ++k) hot_after += lru.Contains(k) && p.Contains(k);
  EXPECT_EQ(hot_after, hot_before);
}

TEST(AdaptivePolicyTest, LoopLeavesRecencyModeAgain) {
  // After a reversing loop, a plain loop larger than the cache: LRU hits
  // nothing, and a probe of a smaller window finds that frequency pays.
  AdaptivePolicy p;
  Cache cache(&p, 100);
  ReversingLoop(cache, 0, 400, 20);
  ASSERT_TRUE(p.recency_mode());
  int hits = 0;
  for (int pass = 0; pass < 200; ++pass) {
    for (Handle k = 1000; k < 1500; ++k) hits += cache.Request(k) ? 1 : 0;
  }
  EXPECT_FALSE(p.recency_mode());
  EXPECT_GT(hits, 200 * 500 / 10);
}

TEST(AdaptivePolicyTest, PriorityStillBuysLapsInRecencyMode) {
  AdaptivePolicy p;
  Cache cache(&p, 100);
  ReversingLoop(cache, 0, 400, 20);
  ASSERT_TRUE(p.recency_mode());
  // Five entries of priority 4 (a model's weights), then a stream of new
  // priority-0 keys three caches long: each priority entry survives about
  // five passes through the window.
  for (Handle k = 5000; k < 5005; ++k) {
    ASSERT_FALSE(p.Contains(k));
    p.SetCapacity(100);
    std::vector<Handle> victims;
    if (p.resident_bytes() + 1 > 100) {
      p.SelectVictims(p.resident_bytes() + 1 - 100, kAll, &victims);
      for (Handle v : victims) p.Remove(v, RemoveReason::kEvicted);
    }
    p.Insert(k, 1, 4);
  }
  for (Handle k = 10000; k < 10300; ++k) cache.Request(k);
  int survivors = 0;
  for (Handle k = 5000; k < 5005; ++k) survivors += p.Contains(k) ? 1 : 0;
  EXPECT_GE(survivors, 4);
}

TEST(FrequencySketchTest, CountsAfterTheDoorkeeper) {
  FrequencySketch s;
  s.EnsureCapacity(1024);
  EXPECT_EQ(s.Frequency(42), 0);
  s.Increment(42);
  EXPECT_EQ(s.Frequency(42), 1);  // doorkeeper only
  for (int i = 0; i < 5; ++i) s.Increment(42);
  EXPECT_EQ(s.Frequency(42), 6);
  for (int i = 0; i < 100; ++i) s.Increment(42);
  EXPECT_EQ(s.Frequency(42), FrequencySketch::kMaxFrequency);
}

TEST(FrequencySketchTest, HalvesAfterEverySample) {
  FrequencySketch s;
  s.EnsureCapacity(64);
  for (int i = 0; i < 9; ++i) s.Increment(7);
  EXPECT_EQ(s.Frequency(7), 9);
  // Fill the rest of the sample with repeats of a few keys, so the sketch
  // sees no reason to lengthen its history.
  const uint64_t sample = s.sample_size();
  for (uint64_t i = 9; i < sample; ++i) s.Increment(1000 + i % 8);
  // 8 counted increments halve to 4; the doorkeeper was cleared.
  EXPECT_EQ(s.Frequency(7), 4);
  EXPECT_EQ(s.sample_size(), sample);
}

TEST(FrequencySketchTest, GrowsItsHistoryWhenMostKeysAreNew) {
  FrequencySketch s;
  s.EnsureCapacity(64);
  const uint64_t sample = s.sample_size();
  for (uint64_t i = 0; i < sample; ++i) s.Increment(i);
  EXPECT_EQ(s.sample_size(), 2 * sample);
  // Growth is bounded.
  for (uint64_t i = 0; i < 1000 * sample; ++i) s.Increment(i);
  EXPECT_LE(s.capacity(), 64u * 16u);
}

TEST(FrequencySketchTest, FewOverestimatesWhenSizedForItsKeys) {
  // A key's counters share one block: the sketch must still spread keys
  // well enough that, sized for its keys, most estimates are exact and
  // keys never added mostly read 0.
  FrequencySketch s;
  s.EnsureCapacity(4096);
  for (Handle k = 0; k < 4096; ++k) {
    for (int i = 0; i < 4; ++i) s.Increment(k);
  }
  int exact = 0;
  int over = 0;
  for (Handle k = 0; k < 4096; ++k) {
    const int f = s.Frequency(k);
    EXPECT_GE(f, 4) << k;  // a count-min sketch never under-counts
    exact += f == 4 ? 1 : 0;
    over += f > 6 ? 1 : 0;
  }
  EXPECT_GE(exact, 4096 * 9 / 10);
  EXPECT_LE(over, 4096 / 100);
  int unseen_zero = 0;
  for (Handle k = 1'000'000; k < 1'004'096; ++k) {
    unseen_zero += s.Frequency(k) == 0 ? 1 : 0;
  }
  EXPECT_GE(unseen_zero, 4096 * 8 / 10);
}

TEST(FrequencySketchTest, GrowingKeepsEstimates) {
  FrequencySketch s;
  s.EnsureCapacity(64);
  for (Handle k = 0; k < 20; ++k) {
    for (Handle i = 0; i <= k % 10; ++i) s.Increment(k);
  }
  std::vector<int> before;
  for (Handle k = 0; k < 20; ++k) before.push_back(s.Frequency(k));
  s.EnsureCapacity(4096);
  EXPECT_GE(s.capacity(), 4096u);
  for (Handle k = 0; k < 20; ++k) EXPECT_EQ(s.Frequency(k), before[k]) << k;
}

}  // namespace
}  // namespace tensorpager::policy
