// Exact eviction orders of LRU and CLOCK.
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/policy/clock_policy.h"
#include "storage/policy/lru_policy.h"

namespace tensorpager::policy {
namespace {

using ::testing::ElementsAre;

constexpr auto kAll = [](Handle) { return true; };

std::vector<Handle> Order(EvictionPolicy& p) {
  std::vector<Handle> out;
  p.SelectVictims(UINT64_MAX, kAll, &out);
  return out;
}

TEST(LruPolicyTest, EvictsLeastRecentlyUsedFirst) {
  LruPolicy p;
  for (Handle k = 1; k <= 4; ++k) p.Insert(k, 1, 0);
  p.Touch(2);
  p.Touch(1);
  EXPECT_THAT(Order(p), ElementsAre(3, 4, 2, 1));
}

TEST(LruPolicyTest, SelectionStopsOnceEnoughBytesAreChosen) {
  LruPolicy p;
  p.Insert(1, 5, 0);
  p.Insert(2, 5, 0);
  p.Insert(3, 5, 0);
  std::vector<Handle> out;
  EXPECT_EQ(p.SelectVictims(6, kAll, &out), 10u);
  EXPECT_THAT(out, ElementsAre(1, 2));
}

TEST(LruPolicyTest, ReinsertCountsAsUse) {
  LruPolicy p;
  p.Insert(1, 1, 0);
  p.Insert(2, 1, 0);
  p.Insert(1, 3, 0);
  EXPECT_THAT(Order(p), ElementsAre(2, 1));
  EXPECT_EQ(p.resident_bytes(), 4u);
}

TEST(LruPolicyTest, UnpinnedEntryRejoinsAsMostRecent) {
  LruPolicy p;
  for (Handle k = 1; k <= 3; ++k) p.Insert(k, 1, 0);
  p.SetPinned(1, true);
  EXPECT_THAT(Order(p), ElementsAre(2, 3));
  p.SetPinned(1, false);
  EXPECT_THAT(Order(p), ElementsAre(2, 3, 1));
}

TEST(LruPolicyTest, PrioritySpendsOneLapPerLevel) {
  LruPolicy p;
  p.Insert(1, 1, 2);
  p.Insert(2, 1, 0);
  p.Insert(3, 1, 0);
  // Key 1 is requeued twice before its turn comes.
  std::vector<Handle> out;
  p.SelectVictims(1, kAll, &out);
  EXPECT_THAT(out, ElementsAre(2));
  p.Remove(2, RemoveReason::kEvicted);
  out.clear();
  p.SelectVictims(1, kAll, &out);
  EXPECT_THAT(out, ElementsAre(3));
  p.Remove(3, RemoveReason::kEvicted);
  out.clear();
  p.SelectVictims(1, kAll, &out);
  EXPECT_THAT(out, ElementsAre(1));
}

TEST(ClockPolicyTest, HitsDoNotReorderButEarnASecondChance) {
  ClockPolicy p;
  for (Handle k = 1; k <= 4; ++k) p.Insert(k, 1, 0);
  p.Touch(3);
  p.Touch(1);
  // FIFO order, except 1 and 3 are requeued once with their bits cleared.
  EXPECT_THAT(Order(p), ElementsAre(2, 4, 1, 3));
}

TEST(ClockPolicyTest, SecondChanceIsSpentBySelection) {
  ClockPolicy p;
  p.Insert(1, 1, 0);
  p.Insert(2, 1, 0);
  p.Touch(1);
  std::vector<Handle> out;
  p.SelectVictims(1, kAll, &out);
  EXPECT_THAT(out, ElementsAre(2));
  // The sweep cleared 1's bit and requeued it behind 2: 2 first again.
  EXPECT_THAT(Order(p), ElementsAre(2, 1));
}

TEST(ClockPolicyTest, ReinsertKeepsPositionAndSetsTheBit) {
  ClockPolicy p;
  p.Insert(1, 1, 0);
  p.Insert(2, 1, 0);
  p.Insert(1, 4, 0);
  EXPECT_EQ(p.resident_bytes(), 5u);
  EXPECT_THAT(Order(p), ElementsAre(2, 1));
}

TEST(ClockPolicyTest, PriorityAddsChancesAfterTheBit) {
  ClockPolicy p;
  p.Insert(1, 1, 1);
  p.Insert(2, 1, 0);
  p.Touch(1);
  // Key 1 survives its bit and then its one priority credit.
  std::vector<Handle> out;
  p.SelectVictims(1, kAll, &out);
  EXPECT_THAT(out, ElementsAre(2));
  p.Remove(2, RemoveReason::kEvicted);
  p.Insert(3, 1, 0);
  out.clear();
  p.SelectVictims(1, kAll, &out);
  EXPECT_THAT(out, ElementsAre(3));
}

}  // namespace
}  // namespace tensorpager::policy
