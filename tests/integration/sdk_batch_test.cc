// The batch calls through the SDK (Client::Lookup, PutBatch, GetBatch,
// UnregisterBatch, UnregisterPrefix) against a real tensorpagerd, once
// through the shared-memory ring and once over gRPC messages only: round
// trips, per-block failures that change nothing, prefix hits over chains
// with holes, splitting at the server's limits, and a server restart in
// the middle of a batch loop.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

std::vector<std::string> Ids(const std::string& prefix, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(absl::StrCat(prefix, i));
  return ids;
}

absl::Span<const std::byte> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const std::byte*>(s.data()),
                             s.size());
}

// Param: whether the client may use shared memory.
class SdkBatchTest : public PagerTest,
                     public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    client_options_.shared_memory_bytes = GetParam() ? 64 * kMiB : 0;
    client_options_.log_sink = log_.Sink();
  }

  // Puts blocks `ids` with PatternBytes(sizes[i], seed + i); every put
  // must succeed.
  void PutAll(const std::vector<std::string>& ids,
              const std::vector<uint64_t>& sizes, uint64_t seed,
              std::optional<bool> durable = std::nullopt) {
    std::vector<std::string> data;
    std::vector<PutItem> items;
    for (size_t i = 0; i < ids.size(); ++i) {
      data.push_back(PatternBytes(sizes[i], seed + i));
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      PutItem item;
      item.id = ids[i];
      item.data = Bytes(data[i]);
      item.region_type = v1::KV_CACHE;
      items.push_back(std::move(item));
    }
    auto out = client_->PutBatch("", items, durable);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE((*out)[i].status.ok()) << ids[i] << ": " << (*out)[i].status;
    }
  }

  // Gets blocks `ids` into buffers of `capacity` bytes each.
  std::vector<GetOutcome> GetAll(const std::vector<std::string>& ids,
                                 uint64_t capacity,
                                 std::vector<std::string>* data) {
    data->assign(ids.size(), std::string(capacity, '\0'));
    std::vector<GetItem> items;
    for (size_t i = 0; i < ids.size(); ++i) {
      items.push_back(GetItem{
          ids[i],
          absl::MakeSpan(reinterpret_cast<std::byte*>((*data)[i].data()),
                         capacity)});
    }
    auto out = client_->GetBatch("", items);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : std::vector<GetOutcome>(ids.size());
  }

  void ExpectPath() {
    const BatchPath path = client_->batch_path();
    EXPECT_EQ(path.shared_memory, GetParam()) << path.reason;
    EXPECT_FALSE(path.reason.empty());
  }

  SdkLogCapture log_;
};

TEST_P(SdkBatchTest, OddSizesRoundTripThroughRamAndDisk) {
  StartServer({});
  const std::vector<uint64_t> sizes = {1, 4095, kMiB + 1, 9 * kMiB + 3};
  const std::vector<std::string> ids = Ids("odd", 4);
  PutAll(ids, sizes, 100);
  ExpectPath();
  for (bool on_disk : {false, true}) {
    if (on_disk) {
      ASSERT_TRUE(client_->SwapOut({"odd0", "odd1", "odd2", "odd3"}).ok());
      EXPECT_EQ(client_->Get("odd3")->tier(), v1::TIER_DISK);
    }
    const uint64_t disk_hits_before =
        client_->Status()->efficiency().disk_hits();
    std::vector<std::string> data;
    std::vector<GetOutcome> got = GetAll(ids, 10 * kMiB, &data);
    // Blocks swapped in together for the batch are still disk hits.
    EXPECT_EQ(client_->Status()->efficiency().disk_hits() - disk_hits_before,
              on_disk ? ids.size() : 0u);
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE(got[i].status.ok()) << ids[i] << ": " << got[i].status;
      EXPECT_EQ(got[i].hit, !on_disk) << ids[i];
      ASSERT_EQ(got[i].size_bytes, sizes[i]);
      EXPECT_EQ(got[i].region_type, v1::KV_CACHE);
      EXPECT_TRUE(data[i].substr(0, sizes[i]) ==
                  PatternBytes(sizes[i], 100 + i))
          << ids[i] << (on_disk ? " from disk" : " from RAM");
    }
  }
  // Overwriting with the same size is a put too; the bytes change.
  PutAll({"odd1"}, {4095}, 200);
  ExpectBytes("odd1", 4095, 200);
}

TEST_P(SdkBatchTest, TensorAttributesComeBack) {
  StartServer({});
  std::string bytes = PatternBytes(2 * 3 * 4 * 2, 7);
  PutItem item;
  item.id = "t";
  item.data = Bytes(bytes);
  item.dtype = v1::BFLOAT16;
  item.shape = {2, 3, 4};
  item.labels = {{"layer", "3"}};
  item.sequence = std::make_pair("req-1", 5u);
  auto put = client_->PutBatch("models", {item});
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_TRUE((*put)[0].status.ok()) << (*put)[0].status;
  EXPECT_TRUE((*put)[0].created);
  std::string out(64, '\0');
  auto got = client_->GetBatch(
      "models",
      {GetItem{"t", absl::MakeSpan(reinterpret_cast<std::byte*>(out.data()),
                                   out.size())}});
  ASSERT_TRUE(got.ok()) << got.status();
  const GetOutcome& g = (*got)[0];
  ASSERT_TRUE(g.status.ok()) << g.status;
  EXPECT_EQ(g.dtype, v1::BFLOAT16);
  EXPECT_EQ(g.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(g.labels.at("layer"), "3");
  EXPECT_EQ(out.substr(0, bytes.size()), bytes);
  EXPECT_EQ(client_->Get(BlockName("models", "t"))->sequence().index(), 5u);

  // A put that would change the block's shape fails alone; the block
  // keeps its bytes and attributes.
  std::string other = PatternBytes(bytes.size(), 8);
  PutItem reshaped = item;
  reshaped.data = Bytes(other);
  reshaped.shape = {6, 4};
  PutItem fresh;
  fresh.id = "u";
  fresh.data = Bytes(other);
  auto again = client_->PutBatch("models", {reshaped, fresh});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)[0].status.code(), absl::StatusCode::kFailedPrecondition)
      << (*again)[0].status;
  EXPECT_TRUE((*again)[1].status.ok()) << (*again)[1].status;
  auto r = client_->Read(BlockName("models", "t"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data, bytes);
  EXPECT_EQ(r->block.shape_size(), 3);
}

TEST_P(SdkBatchTest, RepliesHoldTheLargestAttributes) {
  StartServer({});
  // Every block at the limits of labels (64, 2 KiB in all) and shape (16
  // dimensions): the ring's reply area is sized for them.
  std::vector<std::string> ids = Ids("big-attrs", 32);
  std::vector<std::string> data(ids.size(), PatternBytes(1 << 16, 3));
  std::vector<PutItem> items(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    items[i].id = ids[i];
    items[i].data = Bytes(data[i]);
    items[i].dtype = v1::UINT8;
    items[i].shape = std::vector<int64_t>(16, 1);
    items[i].shape[0] = 1 << 16;
    for (int l = 0; l < 64; ++l) {
      items[i].labels[absl::StrFormat("label-key-%06d", l)] =
          absl::StrFormat("label-value-%04d", l);
    }
  }
  auto put = client_->PutBatch("", items);
  ASSERT_TRUE(put.ok()) << put.status();
  for (const PutOutcome& o : *put) ASSERT_TRUE(o.status.ok()) << o.status;
  std::vector<std::string> out;
  std::vector<GetOutcome> got = GetAll(ids, 1 << 16, &out);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << ids[i] << ": " << got[i].status;
    EXPECT_EQ(got[i].labels.size(), 64u);
    EXPECT_EQ(got[i].shape.size(), 16u);
    EXPECT_EQ(out[i], data[i]);
  }
}

TEST_P(SdkBatchTest, BadBlocksFailAloneAndChangeNothing) {
  StartServer({"--max_block_size=1MiB"});
  PutAll({"lost"}, {64 * kKiB}, 1, /*durable=*/false);
  PutAll({"kept"}, {64 * kKiB}, 2, /*durable=*/true);
  // Bytes only in RAM do not survive a crash: "lost" comes back lost.
  server_->Kill();
  ASSERT_TRUE(server_->Restart(/*same_port=*/true).ok()) << server_->Log();
  ASSERT_TRUE(client_->WaitUntilReady(absl::Seconds(30)).ok());
  ASSERT_EQ(client_->Get("lost")->tier(), v1::TIER_LOST);

  // A put batch: good, oversized, bad id, good.
  const std::string a = PatternBytes(4 * kKiB, 10);
  const std::string big = PatternBytes(2 * kMiB, 11);
  const std::string c = PatternBytes(8 * kKiB, 12);
  std::vector<PutItem> puts(4);
  puts[0].id = "a";
  puts[0].data = Bytes(a);
  puts[1].id = "big";
  puts[1].data = Bytes(big);
  puts[2].id = "bad\nid";
  puts[2].data = Bytes(a);
  puts[3].id = "c";
  puts[3].data = Bytes(c);
  auto put = client_->PutBatch("", puts);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE((*put)[0].status.ok()) << (*put)[0].status;
  EXPECT_EQ((*put)[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE((*put)[1].status.message().find("max_block_size"),
            std::string::npos)
      << (*put)[1].status;
  EXPECT_EQ((*put)[2].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*put)[3].status.ok()) << (*put)[3].status;
  EXPECT_EQ(client_->Get("big").status().code(), absl::StatusCode::kNotFound);

  // A get batch: present, missing, lost, present, and one whose buffer is
  // too small.
  const std::vector<std::string> ids = {"a", "missing", "lost", "kept", "c"};
  std::vector<std::string> data(ids.size(), std::string(64 * kKiB, '\0'));
  std::vector<GetItem> gets;
  for (size_t i = 0; i < ids.size(); ++i) {
    const uint64_t capacity = ids[i] == "c" ? 4 * kKiB : 64 * kKiB;
    gets.push_back(GetItem{
        ids[i], absl::MakeSpan(reinterpret_cast<std::byte*>(data[i].data()),
                               capacity)});
  }
  auto got = client_->GetBatch("", gets);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE((*got)[0].status.ok()) << (*got)[0].status;
  EXPECT_EQ(data[0].substr(0, a.size()), a);
  EXPECT_EQ((*got)[1].status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*got)[2].status.code(), absl::StatusCode::kDataLoss)
      << (*got)[2].status;
  EXPECT_TRUE((*got)[3].status.ok()) << (*got)[3].status;
  EXPECT_EQ(data[3], PatternBytes(64 * kKiB, 2));
  EXPECT_EQ((*got)[4].status.code(), absl::StatusCode::kInvalidArgument)
      << (*got)[4].status;
  ExpectBytes("c", 8 * kKiB, 12);
}

TEST_P(SdkBatchTest, PrefixHitsStopAtTheFirstHole) {
  StartServer({});
  // chain0..chain9 with chain4 never written (EMPTY), chain7 missing.
  std::vector<std::string> chain = Ids("chain", 10);
  std::vector<std::string> present;
  for (const std::string& id : chain) {
    if (id != "chain4" && id != "chain7") present.push_back(id);
  }
  PutAll(present, std::vector<uint64_t>(present.size(), 1000), 50);
  BlockSpec empty{"chain4", 1000};
  ASSERT_TRUE(client_->Register(empty).ok());

  auto look = client_->Lookup("", chain);
  ASSERT_TRUE(look.ok()) << look.status();
  EXPECT_EQ(look->prefix_hits, 4u);
  ASSERT_EQ(look->entries.size(), 10u);
  EXPECT_FALSE(look->entries[4].present());
  EXPECT_EQ(look->entries[4].tier(), v1::TIER_EMPTY);
  EXPECT_FALSE(look->entries[7].present());
  EXPECT_EQ(look->entries[7].tier(), v1::TIER_UNSPECIFIED);
  EXPECT_TRUE(look->entries[9].present());
  EXPECT_EQ(look->entries[9].size_bytes(), 1000u);

  // From disk it still counts; another namespace sees nothing.
  ASSERT_TRUE(client_->SwapOut({"chain0", "chain1"}).ok());
  EXPECT_EQ(client_->Lookup("", chain)->prefix_hits, 4u);
  EXPECT_EQ(client_->Lookup("other", chain)->prefix_hits, 0u);
  // Writing the hole extends the prefix to the next one.
  PutAll({"chain4"}, {1000}, 60);
  EXPECT_EQ(client_->Lookup("", chain)->prefix_hits, 7u);
}

TEST_P(SdkBatchTest, BatchesAreSplitAtTheServersLimits) {
  StartServer({"--max_batch_blocks=4", "--max_batch_bytes=64KiB"});
  const std::vector<std::string> ids = Ids("page", 11);
  PutAll(ids, std::vector<uint64_t>(ids.size(), 20 * kKiB), 70);
  std::vector<std::string> data;
  std::vector<GetOutcome> got = GetAll(ids, 20 * kKiB, &data);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << ids[i] << ": " << got[i].status;
    EXPECT_EQ(data[i], PatternBytes(20 * kKiB, 70 + i)) << ids[i];
  }
  auto look = client_->Lookup("", ids);
  ASSERT_TRUE(look.ok()) << look.status();
  EXPECT_EQ(look->prefix_hits, 11u);

  // One block over a call's bytes fails alone.
  const std::string big = PatternBytes(100 * kKiB, 1);
  const std::string small = PatternBytes(kKiB, 2);
  std::vector<PutItem> puts(2);
  puts[0].id = "big";
  puts[0].data = Bytes(big);
  puts[1].id = "small";
  puts[1].data = Bytes(small);
  auto put = client_->PutBatch("", puts);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ((*put)[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE((*put)[0].status.message().find("--max_batch_bytes"),
            std::string::npos)
      << (*put)[0].status;
  EXPECT_TRUE((*put)[1].status.ok()) << (*put)[1].status;
}

TEST_P(SdkBatchTest, UnregisterByIdsAndByPrefix) {
  StartServer({});
  PutAll(Ids("conv1/", 5), std::vector<uint64_t>(5, 4096), 1);
  PutAll(Ids("conv2/", 3), std::vector<uint64_t>(3, 4096), 9);
  auto some = client_->UnregisterBatch("", {"conv2/0", "nope", "conv2/1"});
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_TRUE(some->results[0].ok());
  EXPECT_EQ(some->results[1].code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(some->results[2].ok());
  EXPECT_EQ(some->blocks_removed, 2u);
  EXPECT_EQ(some->ram_bytes_freed, 2 * 4096u);

  auto conv1 = client_->UnregisterPrefix("", "conv1/");
  ASSERT_TRUE(conv1.ok()) << conv1.status();
  EXPECT_EQ(conv1->blocks_removed, 5u);
  EXPECT_EQ(conv1->blocks_failed, 0u);
  EXPECT_EQ(client_->Lookup("", Ids("conv1/", 5))->prefix_hits, 0u);
  EXPECT_TRUE(client_->Get("conv2/2").ok());
  EXPECT_EQ(client_->UnregisterPrefix("", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(SdkBatchTest, RestartInTheMiddleOfABatchLoopLosesNothingAcknowledged) {
  StartServer({});
  std::vector<std::string> acknowledged;
  for (int round = 0; round < 12; ++round) {
    if (round == 5) {
      ASSERT_TRUE(server_->Restart(/*same_port=*/true).ok()) << server_->Log();
    }
    const std::vector<std::string> ids = Ids(absl::StrCat("r", round, "/"), 8);
    std::vector<std::string> data;
    std::vector<PutItem> items;
    for (size_t i = 0; i < ids.size(); ++i) {
      data.push_back(PatternBytes(32 * kKiB, round * 100 + i));
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      PutItem item;
      item.id = ids[i];
      item.data = Bytes(data[i]);
      items.push_back(std::move(item));
    }
    // The engine's loop: a batch that failed whole is simply retried.
    absl::StatusOr<std::vector<PutOutcome>> out;
    for (int attempt = 0; attempt < 50; ++attempt) {
      out = client_->PutBatch("", items, /*durable=*/true);
      if (out.ok() && (*out)[0].status.ok()) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < ids.size(); ++i) {
      if ((*out)[i].status.ok()) acknowledged.push_back(ids[i]);
    }
  }
  ASSERT_GE(acknowledged.size(), 11u * 8);
  ASSERT_TRUE(server_->Restart(/*same_port=*/true).ok()) << server_->Log();
  // The channel reconnects on its own backoff; an engine waits for it.
  ASSERT_TRUE(client_->WaitUntilReady(absl::Seconds(30)).ok());
  std::vector<std::string> data;
  std::vector<GetOutcome> got = GetAll(acknowledged, 32 * kKiB, &data);
  for (size_t i = 0; i < acknowledged.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << acknowledged[i] << ": " << got[i].status;
    const std::string& id = acknowledged[i];
    const int round = std::stoi(id.substr(1, id.find('/') - 1));
    const int index = std::stoi(id.substr(id.find('/') + 1));
    EXPECT_EQ(data[i], PatternBytes(32 * kKiB, round * 100 + index)) << id;
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, SdkBatchTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "SharedMemory" : "GrpcOnly";
                         });

}  // namespace
}  // namespace tensorpager::testing
