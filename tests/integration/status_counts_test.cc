// Status keeps its block counts as blocks change instead of scanning every
// block under the store's lock (issue 10, item 9). These tests drive every
// kind of change through the RPCs and compare Status with a full listing,
// which still examines each block, across pages longer than one hold of
// the lock.
#include <gtest/gtest.h>

#include <array>
#include <map>

#include "absl/strings/str_cat.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kKiB = 1024;

class StatusCountsTest : public PagerTest {
 protected:
  // Every block of every namespace, page by page.
  std::vector<v1::BlockInfo> ListAll() {
    std::vector<v1::BlockInfo> all;
    v1::ListBlocksRequest req;
    req.set_all_namespaces(true);
    req.set_page_size(333);
    for (;;) {
      auto page = client_->List(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) return all;
      all.insert(all.end(), page->blocks().begin(), page->blocks().end());
      if (page->next_page_token().empty()) return all;
      req.set_page_token(page->next_page_token());
    }
  }

  void ExpectStatusMatchesListing(const std::string& when) {
    SCOPED_TRACE(when);
    const std::vector<v1::BlockInfo> all = ListAll();
    uint64_t in_ram = 0, on_disk = 0, pinned = 0, lost = 0, empty = 0;
    uint64_t pinned_bytes = 0, disk_bytes = 0;
    for (const v1::BlockInfo& b : all) {
      switch (b.tier()) {
        case v1::TIER_RAM:
          ++in_ram;
          break;
        case v1::TIER_DISK:
          ++on_disk;
          disk_bytes += b.size_bytes();
          break;
        case v1::TIER_RAM_AND_DISK:
          ++in_ram;
          ++on_disk;
          disk_bytes += b.size_bytes();
          break;
        case v1::TIER_LOST:
          ++lost;
          break;
        case v1::TIER_EMPTY:
          ++empty;
          break;
        default:
          ADD_FAILURE() << "unexpected tier " << b.tier();
      }
      if (b.pinned()) {
        ++pinned;
        pinned_bytes += b.size_bytes();
      }
    }
    auto status = client_->Status();
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->blocks_registered(), all.size());
    EXPECT_EQ(status->blocks_in_ram(), in_ram);
    EXPECT_EQ(status->blocks_on_disk(), on_disk);
    EXPECT_EQ(status->blocks_pinned(), pinned);
    EXPECT_EQ(status->blocks_lost(), lost);
    EXPECT_EQ(status->blocks_empty(), empty);
    EXPECT_EQ(status->pinned_bytes(), pinned_bytes);
    EXPECT_EQ(status->disk().bytes(), disk_bytes);
  }

  void Swap(v1::SwapDirection direction, std::vector<std::string> ids) {
    std::vector<BlockName> names(ids.begin(), ids.end());
    auto r = direction == v1::SWAP_OUT ? client_->SwapOut(names)
                                       : client_->SwapIn(names);
    ASSERT_TRUE(r.ok()) << r.status();
  }
};

TEST_F(StatusCountsTest, CountsFollowEveryChangeOfEveryBlock) {
  // No background swapping: the test moves every block itself.
  StartServer({"--ram_budget=256MiB", "--swap_threshold=1", "--swap_target=1",
               "--prefetch_depth=0"});
  ExpectStatusMatchesListing("empty store");
  // More blocks than one hold of the lock scans while listing (4096).
  for (int i = 0; i < 5000; ++i) {
    BlockSpec spec{absl::StrCat("reg", i)};
    spec.size_bytes = 4 * kKiB;
    ASSERT_TRUE(client_->Register(spec).ok());
  }
  ExpectStatusMatchesListing("registered, never written");
  for (int i = 0; i < 40; ++i) {
    Put(absl::StrCat("blk", i), 64 * kKiB, i, /*pinned=*/i % 10 == 0);
  }
  ExpectStatusMatchesListing("written");
  Swap(v1::SWAP_OUT, {"blk1", "blk2", "blk3", "blk4"});
  ExpectStatusMatchesListing("swapped out");
  Swap(v1::SWAP_IN, {"blk1", "blk2"});
  ExpectStatusMatchesListing("swapped in");
  ASSERT_TRUE(client_->Pin("blk3").ok());  // brings it in
  ASSERT_TRUE(client_->Unpin("blk0").ok());
  ExpectStatusMatchesListing("pinned and unpinned");
  ASSERT_TRUE(client_->Write("blk2", PatternBytes(64 * kKiB, 99)).ok());
  ExpectStatusMatchesListing("rewritten after a swap-in");
  for (int i = 0; i < 5000; i += 2) {
    ASSERT_TRUE(client_->Unregister(absl::StrCat("reg", i)).ok());
  }
  ASSERT_TRUE(client_->Unregister("blk4").ok());
  ASSERT_TRUE(client_->Unregister("blk5").ok());
  ExpectStatusMatchesListing("unregistered");
  // A restart: blocks only in RAM come back lost, those on disk stay.
  ASSERT_TRUE(server_->Restart().ok());
  Reconnect();
  ExpectStatusMatchesListing("after a restart");
  ASSERT_TRUE(client_->Write("blk6", PatternBytes(64 * kKiB, 6)).ok());
  ExpectStatusMatchesListing("a lost block written again");
}

}  // namespace
}  // namespace tensorpager::testing
