// The whole path through a real tensorpagerd: mixed block sizes under a RAM
// budget a quarter of their total, explicit swaps, pinning, Status figures,
// restarts (graceful and kill -9), health and reflection.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * 1024;

struct Planned {
  std::string id;
  uint64_t size;
  uint64_t seed;
};

// 200 blocks from 4 KiB to 8 MiB, sizes not all aligned to 4 KiB.
std::vector<Planned> MixedBlocks(uint64_t* total) {
  const uint64_t sizes[] = {4 * kKiB,     64 * kKiB + 17, 256 * kKiB,
                            1 * kMiB - 3, 3 * kMiB,       8 * kMiB};
  std::vector<Planned> blocks;
  *total = 0;
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    // Mostly small blocks, some large: about 300 MiB in all.
    const int pick = rng() % 100;
    const uint64_t size = pick < 30   ? sizes[0]
                          : pick < 55 ? sizes[1]
                          : pick < 70 ? sizes[2]
                          : pick < 82 ? sizes[3]
                          : pick < 92 ? sizes[4]
                                      : sizes[5];
    blocks.push_back({absl::StrCat("block-", i), size, uint64_t(i)});
    *total += size;
  }
  return blocks;
}

class EndToEndTest : public PagerTest {};

TEST_F(EndToEndTest, MixedSizesSwapUnderBudgetAndReadBackEveryByte) {
  uint64_t total = 0;
  const std::vector<Planned> blocks = MixedBlocks(&total);
  const uint64_t budget = total / 4;
  StartServer({absl::StrCat("--ram_budget=", budget), "--max_swap_size=2GiB"});

  for (const Planned& b : blocks) Put(b.id, b.size, b.seed);

  auto after_write = client_->Status();
  ASSERT_TRUE(after_write.ok());
  EXPECT_EQ(after_write->blocks_registered(), 200u);
  EXPECT_GT(after_write->efficiency().swap_outs(), 0u)
      << "writing 4x the budget must swap";
  EXPECT_LE(after_write->ram().bytes(), budget);

  uint64_t hits = 0, disk = 0;
  for (const Planned& b : blocks) {
    auto r = client_->Read(b.id);
    ASSERT_TRUE(r.ok()) << b.id << ": " << r.status();
    ASSERT_EQ(r->data.size(), b.size);
    ASSERT_TRUE(r->data == PatternBytes(b.size, b.seed)) << b.id;
    (r->hit ? hits : disk)++;
  }
  EXPECT_GT(disk, 0u) << "some blocks must have come back from disk";

  auto st = client_->Status();
  ASSERT_TRUE(st.ok());
  const v1::Efficiency& e = st->efficiency();
  EXPECT_EQ(e.ram_hits(), hits);
  EXPECT_EQ(e.disk_hits(), disk);
  EXPECT_EQ(e.accesses(), hits + disk);
  EXPECT_DOUBLE_EQ(e.hit_rate(), double(hits) / double(hits + disk));
  EXPECT_GE(e.swap_ins(), disk);
  EXPECT_GT(e.bytes_swapped_out(), 0u);
  EXPECT_GT(e.avg_swap_out_ms(), 0.0);
  EXPECT_GT(e.avg_swap_in_ms(), 0.0);
  EXPECT_LE(st->ram().bytes(), budget);
  EXPECT_EQ(st->blocks_registered(), 200u);
  EXPECT_EQ(st->blocks_lost(), 0u);
  // Every block is in RAM, on disk or both. The policy thread may still be
  // swapping out towards --swap_target, so the listing is compared with a
  // Status taken while no block moved (same swap counters before and after).
  uint64_t listed_ram = 0, listed_disk = 0, ram_bytes = 0;
  for (int attempt = 0;; ++attempt) {
    ASSERT_LT(attempt, 100) << "blocks never stopped moving";
    auto before = client_->Status();
    ASSERT_TRUE(before.ok());
    listed_ram = listed_disk = ram_bytes = 0;
    v1::ListBlocksRequest list;
    list.set_page_size(64);
    for (;;) {
      auto page = client_->List(list);
      ASSERT_TRUE(page.ok());
      for (const v1::BlockInfo& b : page->blocks()) {
        const bool ram =
            b.tier() == v1::TIER_RAM || b.tier() == v1::TIER_RAM_AND_DISK;
        const bool on_disk =
            b.tier() == v1::TIER_DISK || b.tier() == v1::TIER_RAM_AND_DISK;
        EXPECT_TRUE(ram || on_disk) << b.id();
        listed_ram += ram;
        listed_disk += on_disk;
        if (ram) ram_bytes += b.size_bytes();
      }
      if (page->next_page_token().empty()) break;
      list.set_page_token(page->next_page_token());
    }
    st = client_->Status();
    ASSERT_TRUE(st.ok());
    if (before->efficiency().swap_outs() == st->efficiency().swap_outs() &&
        before->efficiency().swap_ins() == st->efficiency().swap_ins()) {
      break;
    }
  }
  EXPECT_EQ(listed_ram, st->blocks_in_ram());
  EXPECT_EQ(listed_disk, st->blocks_on_disk());
  EXPECT_EQ(ram_bytes, st->ram().bytes());
  EXPECT_EQ(st->disk().blocks(), st->blocks_on_disk());
  EXPECT_GT(st->disk().used_bytes(), 0u);
  EXPECT_GT(st->efficiency().swap_space_utilization(), 0.0);
}

TEST_F(EndToEndTest, ExplicitSwapOutAndInMoveExactlyWhatWasAsked) {
  StartServer({"--ram_budget=64MiB"});
  Put("a", 1 * kMiB, 1);
  Put("b", 2 * kMiB + 5, 2);
  Put("c", 4 * kKiB, 3);

  auto out = client_->SwapOut({"a", "b"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->blocks_moved(), 2u);
  EXPECT_EQ(out->bytes_moved(), 3 * kMiB + 5);
  EXPECT_EQ(client_->Get("a")->tier(), v1::TIER_DISK);
  EXPECT_EQ(client_->Get("b")->tier(), v1::TIER_DISK);
  EXPECT_EQ(client_->Get("c")->tier(), v1::TIER_RAM);

  auto again = client_->SwapOut({"a"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->blocks_moved(), 0u);
  EXPECT_EQ(again->already_there_size(), 1);

  auto in = client_->SwapIn({"a"});
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->blocks_moved(), 1u);
  EXPECT_EQ(client_->Get("a")->tier(), v1::TIER_RAM_AND_DISK);
  ExpectBytes("a", 1 * kMiB, 1);

  // b comes back on first access and counts as a disk hit, not a RAM hit.
  auto r = client_->Read("b");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->hit);
  EXPECT_TRUE(r->data == PatternBytes(2 * kMiB + 5, 2));
  auto r2 = client_->Read("b");
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->hit);

  // A clean RAM copy swaps out without rewriting the disk copy.
  auto clean = client_->SwapOut({"a"});
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->blocks_moved(), 1u);
  EXPECT_EQ(client_->Get("a")->tier(), v1::TIER_DISK);

  // Rewriting a block invalidates its disk copy.
  ASSERT_TRUE(client_->Write("a", PatternBytes(1 * kMiB, 11)).ok());
  EXPECT_EQ(client_->Get("a")->tier(), v1::TIER_RAM);
  ASSERT_TRUE(client_->SwapOut({"a"}).ok());
  ExpectBytes("a", 1 * kMiB, 11);

  // A partial write patches the block in place.
  ASSERT_TRUE(client_->Write("c", std::string(10, 'x'), 100).ok());
  std::string expect = PatternBytes(4 * kKiB, 3);
  expect.replace(100, 10, std::string(10, 'x'));
  auto c = client_->Read("c");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->data == expect);
  auto range = client_->Read("c", 98, 14);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->data, expect.substr(98, 14));
}

TEST_F(EndToEndTest, SwapByTargetBytesLetsThePolicyChooseAndSparesPinned) {
  StartServer({"--ram_budget=64MiB"});
  Put("pinned", 4 * kMiB, 1, /*pinned=*/true);
  for (int i = 0; i < 8; ++i) Put(absl::StrCat("u", i), 1 * kMiB, 10 + i);
  // Touch the newest blocks so the oldest are the LRU victims.
  for (int i = 4; i < 8; ++i)
    ASSERT_TRUE(client_->Touch(absl::StrCat("u", i)).ok());

  auto out = client_->SwapBytes(v1::SWAP_OUT, 3 * kMiB);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->blocks_moved(), 3u);
  std::set<std::string> moved;
  for (const auto& ref : out->moved()) moved.insert(ref.id());
  EXPECT_EQ(moved, (std::set<std::string>{"u0", "u1", "u2"}));

  auto all = client_->SwapBytes(v1::SWAP_OUT, 1024 * kMiB);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(client_->Get("pinned")->tier(), v1::TIER_RAM);
  auto st = client_->Status();
  EXPECT_EQ(st->ram().bytes(), 4 * kMiB);
  EXPECT_EQ(st->blocks_pinned(), 1u);

  // Explicitly swapping a pinned block is refused and moves nothing.
  auto refused = client_->SwapOut({"u7", "pinned"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->Get("pinned")->tier(), v1::TIER_RAM);

  auto in = client_->SwapBytes(v1::SWAP_IN, 2 * kMiB);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->blocks_moved(), 2u);

  // Unpinned, it can go; pinned again, it comes back to RAM.
  ASSERT_TRUE(client_->Unpin("pinned").ok());
  ASSERT_TRUE(client_->SwapOut({"pinned"}).ok());
  auto pinned = client_->Pin("pinned");
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_TRUE(pinned->pinned());
  EXPECT_EQ(pinned->tier(), v1::TIER_RAM_AND_DISK);
  ExpectBytes("pinned", 4 * kMiB, 1);
}

TEST_F(EndToEndTest, WritesBeyondBudgetEvictOthersButNeverPinned) {
  StartServer({"--ram_budget=8MiB", "--swap_threshold=1", "--swap_target=1"});
  Put("p1", 3 * kMiB, 1, /*pinned=*/true);
  Put("p2", 3 * kMiB, 2, /*pinned=*/true);
  Put("x", 2 * kMiB, 3);
  Put("y", 2 * kMiB, 4);  // evicts x
  EXPECT_EQ(client_->Get("x")->tier(), v1::TIER_DISK);
  EXPECT_EQ(client_->Get("p1")->tier(), v1::TIER_RAM);

  BlockSpec spec{"z"};
  spec.size_bytes = 3 * kMiB;
  ASSERT_TRUE(client_->Register(spec).ok());
  // Only 2 MiB can be freed (y): 3 MiB cannot fit beside 6 MiB pinned.
  auto w = client_->Write("z", PatternBytes(3 * kMiB, 5));
  EXPECT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted)
      << w.status();
  EXPECT_EQ(client_->Get("z")->tier(), v1::TIER_EMPTY);
  ExpectBytes("p1", 3 * kMiB, 1);
  ExpectBytes("x", 2 * kMiB, 3);
}

TEST_F(EndToEndTest, WriteThatFindsRamFullSwapsOutABatch) {
  StartServer({"--ram_budget=64MiB", "--swap_threshold=1", "--swap_target=1",
               "--eviction_batch=3MiB"});
  auto swap_outs = [&] { return client_->Status()->efficiency().swap_outs(); };
  for (int i = 0; i < 64; ++i) Put(absl::StrCat("b", i), kMiB, i);
  EXPECT_EQ(swap_outs(), 0u);
  // 1 MiB is needed, 3 MiB go in one synced batch...
  Put("b64", kMiB, 64);
  EXPECT_EQ(swap_outs(), 3u);
  EXPECT_EQ(client_->Status()->blocks_in_ram(), 62u);
  // ...so the next two writes find room without swapping.
  Put("b65", kMiB, 65);
  Put("b66", kMiB, 66);
  EXPECT_EQ(swap_outs(), 3u);
  Put("b67", kMiB, 67);
  EXPECT_EQ(swap_outs(), 6u);
  for (int i = 0; i < 68; ++i) ExpectBytes(absl::StrCat("b", i), kMiB, i);
}

TEST_F(EndToEndTest, RestartKeepsEveryBlockThatReachedDisk) {
  StartServer({"--ram_budget=64MiB"});
  Put("disk-1", 1 * kMiB, 1);
  Put("disk-2", 5 * kMiB + 1, 2, false, v1::WEIGHT);
  Put("ram-only", 64 * kKiB, 3);
  BlockSpec shaped{{"tenant-a", "shaped"}};
  shaped.size_bytes = 2 * 3 * 4;
  shaped.dtype = v1::FLOAT32;
  shaped.shape = {2, 3};
  shaped.labels = {{"layer", "7"}};
  shaped.sequence = std::make_pair("req-1", 4u);
  ASSERT_TRUE(client_->Register(shaped).ok());
  ASSERT_TRUE(
      client_->Write({"tenant-a", "shaped"}, PatternBytes(24, 4), 0, true)
          .ok());
  ASSERT_TRUE(client_->SwapOut({"disk-1", "disk-2"}).ok());

  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  Reconnect();
  ExpectBytes("disk-1", 1 * kMiB, 1);
  ExpectBytes("disk-2", 5 * kMiB + 1, 2);
  auto shaped_back = client_->Read({"tenant-a", "shaped"});
  ASSERT_TRUE(shaped_back.ok()) << shaped_back.status();
  EXPECT_EQ(shaped_back->data, PatternBytes(24, 4));
  EXPECT_EQ(shaped_back->block.dtype(), v1::FLOAT32);
  EXPECT_EQ(shaped_back->block.shape_size(), 2);
  EXPECT_EQ(shaped_back->block.labels().at("layer"), "7");
  EXPECT_EQ(shaped_back->block.sequence().group(), "req-1");
  EXPECT_EQ(shaped_back->block.sequence().index(), 4u);
  EXPECT_EQ(client_->Get("disk-2")->region_type(), v1::WEIGHT);

  auto lost = client_->Read("ram-only");
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(lost.status().message().find("only in RAM"), std::string::npos)
      << lost.status();
  EXPECT_EQ(client_->Get("ram-only")->tier(), v1::TIER_LOST);
  EXPECT_EQ(client_->Status()->blocks_lost(), 1u);
  // A lost block can be written again whole.
  ASSERT_TRUE(client_->Write("ram-only", PatternBytes(64 * kKiB, 9)).ok());
  ExpectBytes("ram-only", 64 * kKiB, 9);
}

TEST_F(EndToEndTest, KillNineAfterSwapOutLosesNothingThatWasSwapped) {
  StartServer({"--ram_budget=64MiB"});
  for (int i = 0; i < 10; ++i) {
    Put(absl::StrCat("k", i), (i + 1) * 300 * kKiB + i, 100 + i);
  }
  std::vector<BlockName> names;
  for (int i = 0; i < 10; i += 2) names.emplace_back(absl::StrCat("k", i));
  ASSERT_TRUE(client_->SwapOut(names).ok());
  // Swap one back in and rewrite another: the rewrite is RAM-only again.
  ASSERT_TRUE(client_->SwapIn({"k2"}).ok());
  ASSERT_TRUE(client_->Write("k4", PatternBytes(5 * 300 * kKiB + 4, 999)).ok());

  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  Reconnect();
  for (int i = 0; i < 10; i += 2) {
    if (i == 4) continue;
    ExpectBytes(absl::StrCat("k", i), (i + 1) * 300 * kKiB + i, 100 + i);
  }
  // Never old bytes for the rewritten block: it is reported lost.
  EXPECT_EQ(client_->Read("k4").status().code(), absl::StatusCode::kDataLoss);
  for (int i = 1; i < 10; i += 2) {
    EXPECT_EQ(client_->Read(absl::StrCat("k", i)).status().code(),
              absl::StatusCode::kDataLoss);
  }
}

TEST_F(EndToEndTest, DurableWriteSurvivesKillNine) {
  StartServer({"--ram_budget=64MiB"});
  Put("volatile", 256 * kKiB, 1);
  BlockSpec spec{"durable"};
  spec.size_bytes = 3 * kMiB;
  ASSERT_TRUE(client_->Register(spec).ok());
  auto w = client_->Write("durable", PatternBytes(3 * kMiB, 2), 0, true);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->durable());
  EXPECT_EQ(w->block().tier(), v1::TIER_RAM_AND_DISK);

  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok());
  Reconnect();
  ExpectBytes("durable", 3 * kMiB, 2);
  EXPECT_EQ(client_->Read("volatile").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(EndToEndTest, UnregisterFreesRamAndDisk) {
  StartServer({"--ram_budget=64MiB"});
  Put("gone", 2 * kMiB, 1);
  Put("kept", 1 * kMiB, 2);
  ASSERT_TRUE(client_->SwapOut({"gone"}).ok());
  const uint64_t disk_before = client_->Status()->disk().used_bytes();
  EXPECT_GE(disk_before, 2 * kMiB);
  auto freed = client_->Unregister("gone");
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(freed->disk_bytes_freed(), 2 * kMiB);
  EXPECT_EQ(freed->ram_bytes_freed(), 0u);
  EXPECT_EQ(client_->Status()->disk().used_bytes(), disk_before - 2 * kMiB);
  EXPECT_EQ(client_->Get("gone").status().code(), absl::StatusCode::kNotFound);
  auto freed_ram = client_->Unregister("kept");
  ASSERT_TRUE(freed_ram.ok());
  EXPECT_EQ(freed_ram->ram_bytes_freed(), 1 * kMiB);
  EXPECT_EQ(client_->Status()->ram().bytes(), 0u);
  // The id can be registered again.
  Put("gone", 4 * kKiB, 3);
  ExpectBytes("gone", 4 * kKiB, 3);
}

TEST_F(EndToEndTest, ListBlocksPagesAndFilters) {
  StartServer({"--ram_budget=64MiB"});
  for (int i = 0; i < 25; ++i) {
    Put(absl::StrCat("kv-", i < 10 ? "0" : "", i), 4 * kKiB, i, i % 5 == 0,
        i % 2 ? v1::KV_CACHE : v1::ACTIVATION);
  }
  BlockSpec other{{"other-ns", "kv-00"}};
  other.size_bytes = 4 * kKiB;
  ASSERT_TRUE(client_->Register(other).ok());
  ASSERT_TRUE(client_->SwapOut({"kv-01", "kv-03"}).ok());

  std::vector<std::string> ids;
  v1::ListBlocksRequest req;
  req.set_page_size(7);
  int pages = 0;
  for (;; ++pages) {
    auto page = client_->List(req);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->blocks_size(), 7);
    for (const auto& b : page->blocks()) ids.push_back(b.id());
    if (page->next_page_token().empty()) break;
    req.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(ids.size(), 25u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(pages, 3);

  v1::ListBlocksRequest pinned;
  pinned.set_pinned(v1::PINNED_ONLY);
  EXPECT_EQ(client_->List(pinned)->blocks_size(), 5);
  v1::ListBlocksRequest kv;
  kv.set_region_type(v1::KV_CACHE);
  EXPECT_EQ(client_->List(kv)->blocks_size(), 12);
  v1::ListBlocksRequest on_disk;
  on_disk.set_tier(v1::TIER_DISK);
  EXPECT_EQ(client_->List(on_disk)->blocks_size(), 2);
  v1::ListBlocksRequest ns;
  ns.set_namespace_("other-ns");
  auto other_page = client_->List(ns);
  ASSERT_EQ(other_page->blocks_size(), 1);
  EXPECT_EQ(other_page->blocks(0).tier(), v1::TIER_EMPTY);
  v1::ListBlocksRequest all;
  all.set_all_namespaces(true);
  all.set_page_size(1000);
  EXPECT_EQ(client_->List(all)->blocks_size(), 26);
  v1::ListBlocksRequest prefix;
  prefix.set_id_prefix("kv-1");
  EXPECT_EQ(client_->List(prefix)->blocks_size(), 10);
}

TEST_F(EndToEndTest, HealthServingAndReflectionListsTheService) {
  StartServer({"--ram_budget=16MiB"});
  auto health = grpc::health::v1::Health::NewStub(client_->channel());
  for (const std::string service : {"", "tensorpager.v1.TensorPager"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }

  auto reflection =
      grpc::reflection::v1alpha::ServerReflection::NewStub(client_->channel());
  grpc::ClientContext ctx;
  auto stream = reflection->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::set<std::string> services;
  for (const auto& s : resp.list_services_response().service()) {
    services.insert(s.name());
  }
  EXPECT_TRUE(services.contains("tensorpager.v1.TensorPager"));
  EXPECT_TRUE(stream->Finish().ok());

  // Graceful stop exits 0.
  EXPECT_TRUE(server_->Stop().ok()) << server_->Log();
}

}  // namespace
}  // namespace tensorpager::testing
