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

TEST(RecentOnDiskTest, VouchesForNothingUntilTold) {
  RecentOnDisk set(4);
  set.Add(5, "a");
  auto [seen, complete] = WalkAll(set);
  EXPECT_TRUE(seen.empty());
  EXPECT_FALSE(complete);
}

TEST(RecentOnDiskTest, WalksNewestFirstAndTiesByName) {
  RecentOnDisk set(8);
  set.Clear();
  set.Add(10, "b");
  set.Add(30, "c");
  set.Add(10, "a");
  set.Add(20, "d");
  auto [seen, complete] = WalkAll(set);
  EXPECT_EQ(seen, (std::vector<std::string>{"c", "d", "b", "a"}));
  EXPECT_TRUE(complete);  // nothing was ever dropped: no floor
}

TEST(RecentOnDiskTest, DroppingTheOldestRaisesTheFloor) {
  RecentOnDisk set(2);
  set.Clear();
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
  set.Clear();
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
  set.Clear();
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
  set.Clear();
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
  other.Clear();
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

}  // namespace
}  // namespace tensorpager::storage
