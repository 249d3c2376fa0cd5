// RecentOnDisk: the newest blocks on disk only, bounded, with a floor below
// which a walk cannot vouch for anything.
#include "storage/recent_on_disk.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tensorpager::storage {
namespace {

using Step = RecentOnDisk::Step;

// Walks the whole set (never stopping); returns the names seen, newest
// first, and whether the walk vouched for them.
std::pair<std::vector<std::string>, bool> WalkAll(RecentOnDisk& set) {
  std::vector<std::string> seen;
  const bool complete = set.Walk([&](int64_t, absl::string_view encoded) {
    seen.emplace_back(encoded);
    return Step::kKeep;
  });
  return {seen, complete};
}

// A set that knows every block on disk only: none yet.
void Know(RecentOnDisk& set) {
  set.BeginScan();
  set.EndScan({}, std::nullopt);
}

TEST(RecentOnDiskTest, VouchesForNothingUntilTold) {
  RecentOnDisk set(4);
  set.Add(5, "a");
  auto [seen, complete] = WalkAll(set);
  EXPECT_TRUE(seen.empty());
  EXPECT_FALSE(complete);
}

TEST(RecentOnDiskTest, WalksNewestFirstAndTiesByName) {
  RecentOnDisk set(8);
  Know(set);
  set.Add(10, "b");
  set.Add(30, "c");
  set.Add(10, "a");
  set.Add(20, "d");
  auto [seen, complete] = WalkAll(set);
  // In a tie, the smaller name counts as the newer.
  EXPECT_EQ(seen, (std::vector<std::string>{"c", "d", "a", "b"}));
  EXPECT_TRUE(complete);  // nothing was ever dropped: no floor
}

TEST(RecentOnDiskTest, DroppingTheOldestRaisesTheFloor) {
  RecentOnDisk set(2);
  Know(set);
  set.Add(10, "a");
  set.Add(20, "b");
  set.Add(30, "c");  // drops "a"
  set.Add(5, "z");   // older than all held: dropped at once
  auto [seen, complete] = WalkAll(set);
  EXPECT_EQ(seen, (std::vector<std::string>{"c", "b"}));
  EXPECT_FALSE(complete);  // "a" (10) lies below, unseen

  // A walk that stops before the floor vouches for what it saw.
  std::vector<std::string> taken;
  EXPECT_TRUE(set.Walk([&](int64_t, absl::string_view encoded) {
    taken.emplace_back(encoded);
    return Step::kStop;
  }));
  EXPECT_EQ(taken, std::vector<std::string>{"c"});
}

TEST(RecentOnDiskTest, ForgottenBlocksLeaveTheSetAndTheWalkGoesOn) {
  RecentOnDisk set(8);
  Know(set);
  for (int i = 0; i < 5; ++i) set.Add(i, std::string(1, 'a' + i));
  std::vector<std::string> seen;
  EXPECT_TRUE(set.Walk([&](int64_t ms, absl::string_view encoded) {
    seen.emplace_back(encoded);
    return ms % 2 == 0 ? Step::kForget : Step::kKeep;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"e", "d", "c", "b", "a"}));
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(WalkAll(set).first, (std::vector<std::string>{"d", "b"}));
}

TEST(RecentOnDiskTest, ItemsBelowTheFloorAreNotVouchedFor) {
  RecentOnDisk set(2);
  Know(set);
  set.Add(10, "a");
  set.Add(20, "b");
  set.Add(30, "c");  // floor: (10, "a")
  // "b" goes: room for a block older than the floor, which the set holds
  // but cannot vouch for (others as old may be missing).
  set.Walk([](int64_t ms, absl::string_view) {
    return ms == 20 ? Step::kForget : Step::kKeep;
  });
  set.Add(7, "x");
  auto [seen, complete] = WalkAll(set);
  EXPECT_EQ(seen, std::vector<std::string>{"c"});
  EXPECT_FALSE(complete);
}

TEST(RecentOnDiskTest, AScanLowersTheFloorButKeepsDropsMadeDuringIt) {
  RecentOnDisk set(2);
  Know(set);
  set.Add(10, "a");
  set.Add(20, "b");
  set.Add(30, "c");  // floor (10, "a")

  // A pass that saw everything leaves no floor.
  set.BeginScan();
  set.EndScan({{20, "b"}, {30, "c"}, {10, "a"}}, std::nullopt);
  auto [seen, complete] = WalkAll(set);
  EXPECT_EQ(seen, (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_TRUE(complete);

  // Blocks dropped while a pass runs count against its floor: the pass
  // may have looked at their places before they went to disk.
  RecentOnDisk other(2);
  Know(other);
  other.Add(10, "a");
  other.Add(20, "b");
  other.BeginScan();
  other.Add(30, "c");  // drops "a" (10)
  other.EndScan({{20, "b"}, {7, "x"}}, RecentOnDisk::Item{5, "old"});
  auto [after, vouched] = WalkAll(other);
  // Floor (10, "a"), not the pass's (5, "old"): "x" is not vouched for.
  EXPECT_EQ(after, (std::vector<std::string>{"c", "b"}));
  EXPECT_FALSE(vouched);
}

TEST(RecentOnDiskTest, CollectorKeepsTheNewestOfAPassAndFloorsTheRest) {
  RecentOnDisk set(3);
  RecentOnDisk::Collector newest(3, 0);
  for (int ms : {4, 9, 0, 7, 2, 8, 1, 6, 3, 5}) {
    newest.Offer(ms, "b" + std::to_string(ms), 0);
  }
  set.BeginScan();
  std::move(newest).EndScan(set);
  auto [seen, complete] = WalkAll(set);
  EXPECT_EQ(seen, (std::vector<std::string>{"b9", "b8", "b7"}));
  EXPECT_FALSE(complete);  // "b6" and older lie below
}

TEST(RecentOnDiskTest, CollectorKeepsEnoughBlocksTheCallerCanTake) {
  // Capacity 1, but 3 bytes wanted: the newest block cannot be taken
  // (busy, or too large), so four are kept.
  RecentOnDisk set(1);
  RecentOnDisk::Collector newest(1, 3);
  for (int ms : {0, 1, 2, 3, 4, 5}) {
    newest.Offer(ms, "c" + std::to_string(ms), ms == 5 ? 0 : 1);
  }
  set.BeginScan();
  std::move(newest).EndScan(set);
  EXPECT_EQ(WalkAll(set).first,
            (std::vector<std::string>{"c5", "c4", "c3", "c2"}));
}

}  // namespace
}  // namespace tensorpager::storage
