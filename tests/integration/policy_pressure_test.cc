// The policy and pressure features through the RPC API: switching the
// algorithm at run time, sequence prefetch, batched access reports, client
// GPU usage and the WatchPressure stream.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kKiB = 1024;

class PolicyPressureTest : public PagerTest {
 protected:
  std::unique_ptr<v1::TensorPager::Stub> Stub() {
    return v1::TensorPager::NewStub(client_->channel());
  }
};

TEST_F(PolicyPressureTest, SetPolicySwitchesAlgorithmAndKeepsResidentBlocks) {
  StartServer({"--ram_budget=64MiB", "--algorithm=lru"});
  for (int i = 0; i < 5; ++i) Put(absl::StrCat("p", i), 64 * kKiB, i);
  EXPECT_EQ(client_->Status()->algorithm(), v1::LRU);
  auto stub = Stub();
  for (v1::Algorithm a : {v1::CLOCK, v1::ADAPTIVE, v1::LRU}) {
    grpc::ClientContext ctx;
    v1::SetPolicyRequest req;
    req.set_algorithm(a);
    v1::SetPolicyResponse resp;
    ASSERT_TRUE(stub->SetPolicy(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.algorithm(), a);
    EXPECT_EQ(resp.resident_blocks(), 5u);
    EXPECT_EQ(client_->Status()->algorithm(), a);
    // The new policy knows every resident block: it can evict them all.
    auto out = client_->SwapBytes(v1::SWAP_OUT, 5 * 64 * kKiB);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->blocks_moved(), 5u) << v1::Algorithm_Name(a);
    ASSERT_TRUE(client_->SwapBytes(v1::SWAP_IN, 5 * 64 * kKiB).ok());
  }
  grpc::ClientContext ctx;
  v1::SetPolicyRequest bad;
  v1::SetPolicyResponse resp;
  EXPECT_EQ(stub->SetPolicy(&ctx, bad, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(PolicyPressureTest, AccessToASequenceMemberPrefetchesTheNextOnes) {
  StartServer({"--ram_budget=64MiB", "--prefetch_depth=2"});
  for (uint32_t i = 0; i < 6; ++i) {
    BlockSpec spec{absl::StrCat("page", i), 128 * kKiB};
    spec.region_type = v1::KV_CACHE;
    spec.sequence = std::make_pair("conversation-7", i);
    ASSERT_TRUE(client_->Register(spec).ok());
    ASSERT_TRUE(
        client_
            ->Write(absl::StrCat("page", i), PatternBytes(128 * kKiB, 40 + i))
            .ok());
  }
  std::vector<BlockName> all;
  for (int i = 0; i < 6; ++i) all.emplace_back(absl::StrCat("page", i));
  ASSERT_TRUE(client_->SwapOut(all).ok());

  auto first = client_->Read("page0");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->hit);
  // page1 and page2 come in behind the access, ahead of use.
  for (int tries = 0; tries < 200; ++tries) {
    if (client_->Status()->efficiency().prefetched() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto st = client_->Status();
  EXPECT_EQ(st->efficiency().prefetched(), 2u);
  EXPECT_NE(client_->Get("page1")->tier(), v1::TIER_DISK);
  EXPECT_NE(client_->Get("page2")->tier(), v1::TIER_DISK);
  EXPECT_EQ(client_->Get("page3")->tier(), v1::TIER_DISK);

  auto second = client_->Read("page1");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->hit) << "a prefetched block is a RAM hit";
  EXPECT_TRUE(second->data == PatternBytes(128 * kKiB, 41));
  EXPECT_EQ(client_->Status()->efficiency().prefetch_hits(), 1u);
  // page2 leaves RAM unused: prefetch waste.
  ASSERT_TRUE(client_->SwapOut({"page2"}).ok());
  for (int tries = 0; tries < 200; ++tries) {
    if (client_->Status()->efficiency().prefetched() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(client_->Status()->efficiency().prefetch_wasted(), 1u);
}

TEST_F(PolicyPressureTest, ReportedAccessesAndClientUsageShowInStatus) {
  StartServer({"--ram_budget=64MiB"});
  Put("hot", 4 * kKiB, 1);
  auto stub = Stub();
  {
    grpc::ClientContext ctx;
    v1::ReportAccessesRequest req;
    req.set_client_id("worker-1");
    auto* a = req.add_accesses();
    a->set_id("hot");
    a->set_count(7);
    auto* b = req.add_accesses();
    b->set_id("gone");
    b->set_count(1);
    v1::ReportAccessesResponse resp;
    ASSERT_TRUE(stub->ReportAccesses(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.accepted(), 1u);
    EXPECT_EQ(resp.unknown(), 1u);
  }
  EXPECT_EQ(client_->Status()->efficiency().accesses_reported(), 7u);
  EXPECT_EQ(client_->Get("hot")->access_count(), 7u);
  {
    grpc::ClientContext ctx;
    v1::ReportClientUsageRequest req;
    req.set_client_id("worker-1");
    auto* g = req.add_gpus();
    g->set_device(0);
    g->set_used_bytes(60ull << 30);
    g->set_total_bytes(80ull << 30);
    g->set_cached_bytes(1ull << 30);
    v1::ReportClientUsageResponse resp;
    ASSERT_TRUE(stub->ReportClientUsage(&ctx, req, &resp).ok());
    EXPECT_GT(resp.pressure_size(), 0);
  }
  auto st = client_->Status();
  // The SDK's own Client reports too; find the one this test sent.
  const v1::ClientUsage* worker = nullptr;
  for (const auto& c : st->clients()) {
    if (c.client_id() == "worker-1") worker = &c;
  }
  ASSERT_NE(worker, nullptr);
  ASSERT_EQ(worker->gpus_size(), 1);
  EXPECT_EQ(worker->gpus(0).cached_bytes(), 1ull << 30);
  bool saw_host = false, saw_gpu = false;
  for (const auto& p : st->pressure()) {
    if (p.resource() == "host_ram") {
      saw_host = true;
      EXPECT_TRUE(p.present());
      EXPECT_GT(p.total_bytes(), 0u);
      EXPECT_DOUBLE_EQ(p.threshold_medium(), 0.7);
    }
    if (p.resource() == "gpu0" && p.present()) {
      saw_gpu = true;
      EXPECT_EQ(p.source(), "sdk");
      EXPECT_NEAR(p.usage_ratio(), 0.75, 1e-9);
    }
  }
  EXPECT_TRUE(saw_host);
  EXPECT_TRUE(saw_gpu) << "the SDK's GPU report must show as gpu0";
  EXPECT_FALSE(st->profile().empty());
  EXPECT_FALSE(st->profile_reason().empty());

  grpc::ClientContext ctx;
  v1::ReportClientUsageRequest bad;
  bad.set_client_id("worker-2");
  bad.add_gpus()->set_used_bytes(10);  // total 0
  v1::ReportClientUsageResponse resp;
  EXPECT_EQ(stub->ReportClientUsage(&ctx, bad, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(PolicyPressureTest, WatchPressureSendsCurrentStateThenLevelChanges) {
  StartServer({"--ram_budget=64MiB", "--pressure_interval_ms=100"});
  auto stub = Stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchPressureRequest req;
  req.set_send_current(true);
  auto reader = stub->WatchPressure(&ctx, req);
  v1::PressureEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.resource(), "host_ram");
  EXPECT_NE(event.level(), v1::PRESSURE_LEVEL_UNSPECIFIED);
  // A client reporting a nearly full GPU raises gpu0 to CRITICAL.
  grpc::ClientContext usage_ctx;
  v1::ReportClientUsageRequest usage;
  usage.set_client_id("worker-9");
  auto* g = usage.add_gpus();
  g->set_device(0);
  g->set_used_bytes(79ull << 30);
  g->set_total_bytes(80ull << 30);
  v1::ReportClientUsageResponse usage_resp;
  ASSERT_TRUE(stub->ReportClientUsage(&usage_ctx, usage, &usage_resp).ok());
  bool critical = false;
  while (!critical && reader->Read(&event)) {
    critical = event.resource() == "gpu0" && event.level() == v1::CRITICAL;
  }
  EXPECT_TRUE(critical);
  ctx.TryCancel();
  reader->Finish();
}

}  // namespace
}  // namespace tensorpager::testing
