// Tenants against a real tensorpagerd (--tenants_file): credentials, and
// two tenants × every RPC, over gRPC messages and through shared memory
// (the ring and the shared-memory RPCs). A refused call changes nothing,
// and its answer never depends on whether the other tenant's block
// exists.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/auth/tenant_table.h"
#include "tests/integration/pager_fixture.h"
#include "tests/integration/run_command.h"
#include "tests/testing/http_get.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {
namespace {

using ::tensorpager::server::auth::TokenHash;

std::string TenantsYaml(absl::string_view token_a, absl::string_view token_b) {
  return absl::StrCat(
      "tenants:\n"
      "  - name: a\n"
      "    namespaces: [a, \"a/*\"]\n"
      "    tokens: [\"",
      TokenHash(token_a),
      "\"]\n"
      "  - name: b\n"
      "    namespaces: [b]\n"
      "    quota: {blocks: 3, bytes: 64KiB}\n"
      "    tokens: [\"",
      TokenHash(token_b),
      "\"]\n"
      "  - name: ops\n"
      "    role: admin\n"
      "    namespaces: [\"*\"]\n"
      "    tokens: [\"",
      TokenHash("tok-ops"), "\"]\n");
}

class TenantsTest : public PagerTest,
                    public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    tenants_ = dir_.path() + "/tenants.yaml";
    WriteTenants(TenantsYaml("tok-a", "tok-b"));
    client_options_.shared_memory_bytes = GetParam() ? 16 << 20 : 0;
    client_options_.token = "tok-a";
    StartServer({"--tenants_file=" + tenants_});
  }

  void WriteTenants(const std::string& yaml) {
    const std::string tmp = tenants_ + ".tmp";
    std::ofstream(tmp) << yaml;
    ASSERT_EQ(std::rename(tmp.c_str(), tenants_.c_str()), 0);
  }

  std::unique_ptr<Client> Connect(const std::string& token) {
    ClientOptions o = client_options_;
    o.token = token;
    auto c = Client::Connect(server_->target(), o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  TempDir dir_;
  std::string tenants_;
};

PutItem Item(const std::string& id, const std::string& bytes) {
  PutItem item;
  item.id = id;
  item.data = absl::MakeSpan(reinterpret_cast<const std::byte*>(bytes.data()),
                             bytes.size());
  return item;
}

void ExpectDenied(const absl::Status& s, absl::string_view call) {
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << call << ": " << s;
  EXPECT_NE(s.message().find("tenant 'b' may not use namespace 'a'"),
            std::string::npos)
      << call << ": " << s;
}

TEST_P(TenantsTest, CallsWithoutAKnownCredentialAreUnauthenticated) {
  for (const std::string& token : {std::string(), std::string("tok-x")}) {
    std::unique_ptr<Client> stranger = Connect(token);
    ASSERT_NE(stranger, nullptr);
    absl::StatusOr<v1::StatusResponse> status = stranger->Status();
    EXPECT_EQ(status.status().code(), absl::StatusCode::kUnauthenticated)
        << status.status();
    EXPECT_NE(
        status.status().message().find(token.empty() ? "send a bearer token"
                                                     : "not in the server's"),
        std::string::npos)
        << status.status();
    EXPECT_EQ(stranger->Get(BlockName("a", "x")).status().code(),
              absl::StatusCode::kUnauthenticated);
  }
}

TEST_P(TenantsTest, AnotherTenantCanNeitherSeeNorTouchABlock) {
  const std::string bytes = PatternBytes(64 << 10, 1);
  const BlockName mine("a", "kv0");
  BlockSpec spec(mine, bytes.size());
  ASSERT_TRUE(client_->Register(spec).ok());
  ASSERT_TRUE(client_->Write(mine, bytes).ok());
  std::unique_ptr<Client> b = Connect("tok-b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->WaitUntilReady(absl::Seconds(30)).ok());

  // Every RPC that names namespace "a", for the block that exists and for
  // one that does not: the same answer, so existence does not leak.
  for (const std::string& id : {std::string("kv0"), std::string("none")}) {
    const BlockName theirs("a", id);
    ExpectDenied(b->Get(theirs).status(), "GetBlock");
    ExpectDenied(b->Read(theirs).status(), "Access");
    std::string out(64 << 10, '\0');
    ExpectDenied(
        b->ReadInto(theirs,
                    absl::MakeSpan(reinterpret_cast<std::byte*>(out.data()),
                                   out.size()))
            .status(),
        "AccessShared or Access");
    ExpectDenied(b->Write(theirs, std::string(16, 'x')).status(), "WriteBlock");
    ExpectDenied(b->Register(BlockSpec(theirs, 16)).status(), "RegisterBlock");
    ExpectDenied(b->Pin(theirs).status(), "Pin");
    ExpectDenied(b->Unpin(theirs).status(), "Unpin");
    ExpectDenied(b->SwapOut({theirs}).status(), "Swap");
    ExpectDenied(b->SwapIn({theirs}).status(), "Swap");
    ExpectDenied(b->Unregister(theirs).status(), "UnregisterBlock");
    const std::vector<std::string> ids = {id};
    ExpectDenied(b->Lookup("a", ids).status(), "Lookup");
    const std::string data(16, 'y');
    ExpectDenied(b->PutBatch("a", {Item(id, data)}).status(), "PutBlocks");
    GetItem get{id, absl::MakeSpan(reinterpret_cast<std::byte*>(out.data()),
                                   out.size())};
    ExpectDenied(b->GetBatch("a", {get}).status(), "GetBlocks");
    ExpectDenied(b->UnregisterBatch("a", ids).status(), "UnregisterBlocks");
  }
  ExpectDenied(b->UnregisterPrefix("a", "kv").status(), "UnregisterBlocks");
  v1::ListBlocksRequest list;
  list.set_namespace_("a");
  ExpectDenied(b->List(list).status(), "ListBlocks");
  list.set_all_namespaces(true);
  EXPECT_EQ(b->List(list).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(b->SetPolicy(v1::CLOCK).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(b->SwapBytes(v1::SWAP_OUT, 1 << 20).status().code(),
            absl::StatusCode::kPermissionDenied);

  // Nothing changed: tenant a still reads its bytes, in RAM, unpinned.
  absl::StatusOr<ReadResult> read = client_->Read(mine);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->data == bytes);
  absl::StatusOr<v1::BlockInfo> info = client_->Get(mine);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->pinned());
  EXPECT_EQ(info->tier(), v1::TIER_RAM);
  EXPECT_EQ(info->version(), 1u);
}

TEST_P(TenantsTest, EachTenantWorksInItsOwnNamespacesAndSeesItsShare) {
  std::unique_ptr<Client> b = Connect("tok-b");
  ASSERT_NE(b, nullptr);
  const std::string a_bytes = PatternBytes(3000, 2);
  const std::string b_bytes = PatternBytes(5000, 3);
  ASSERT_TRUE(client_->PutBatch("a/conv1", {Item("x", a_bytes)}).ok());
  auto put_b = b->PutBatch("b", {Item("x", b_bytes)});
  ASSERT_TRUE(put_b.ok()) << put_b.status();
  ASSERT_TRUE((*put_b)[0].status.ok()) << (*put_b)[0].status;
  EXPECT_EQ(client_->Lookup("a/conv1", {"x"})->prefix_hits, 1u);
  EXPECT_EQ(b->Lookup("b", {"x"})->prefix_hits, 1u);

  absl::StatusOr<v1::StatusResponse> sa = client_->Status();
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->tenant(), "a");
  EXPECT_EQ(sa->blocks_registered(), 1u);
  EXPECT_EQ(sa->ram().bytes(), a_bytes.size());
  EXPECT_EQ(sa->clients_size(), 0);
  ASSERT_EQ(sa->tenants_size(), 1);
  EXPECT_EQ(sa->tenants(0).name(), "a");

  std::unique_ptr<Client> ops = Connect("tok-ops");
  ASSERT_NE(ops, nullptr);
  absl::StatusOr<v1::StatusResponse> all = ops->Status();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->tenant(), "ops");
  EXPECT_EQ(all->blocks_registered(), 2u);
  ASSERT_EQ(all->tenants_size(), 3);
  for (const v1::TenantUsage& t : all->tenants()) {
    if (t.name() == "a") {
      EXPECT_EQ(t.ram_bytes(), a_bytes.size());
    } else if (t.name() == "b") {
      EXPECT_EQ(t.ram_bytes(), b_bytes.size());
    } else {
      EXPECT_EQ(t.blocks(), 2u);
    }
  }
  // An admin may use every namespace and the server-wide calls.
  EXPECT_TRUE(ops->Get(BlockName("a/conv1", "x")).ok());
  EXPECT_TRUE(ops->SetPolicy(v1::LRU).ok());
  v1::ListBlocksRequest list;
  list.set_all_namespaces(true);
  absl::StatusOr<v1::ListBlocksResponse> listed = ops->List(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->blocks_size(), 2);
}

TEST_P(TenantsTest, QuotaIsResourceExhaustedUntilBlocksAreFreed) {
  std::unique_ptr<Client> b = Connect("tok-b");
  ASSERT_NE(b, nullptr);
  const std::string page = PatternBytes(1000, 5);
  std::vector<PutItem> items;
  for (const char* id : {"p0", "p1", "p2", "p3"})
    items.push_back(Item(id, page));
  auto put = b->PutBatch("b", items);
  ASSERT_TRUE(put.ok()) << put.status();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE((*put)[i].status.ok());
  // The fourth block is past quota.blocks: it alone fails, and names it.
  EXPECT_EQ((*put)[3].status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE((*put)[3].status.message().find("quota.blocks"), std::string::npos)
      << (*put)[3].status;
  EXPECT_EQ(b->Register(BlockSpec(BlockName("b", "r"), 10)).status().code(),
            absl::StatusCode::kResourceExhausted);
  // Overwriting a block it has costs nothing more.
  ASSERT_TRUE(b->PutBatch("b", {Item("p0", PatternBytes(1000, 6))}).ok());
  EXPECT_FALSE(b->Get(BlockName("b", "p3")).ok());
  // Freed blocks make room again; bytes count too.
  ASSERT_TRUE(b->UnregisterBatch("b", {"p1", "p2"}).ok());
  const std::string big = PatternBytes((64 << 10) - 500, 7);
  auto too_big = b->PutBatch("b", {Item("big", big)});
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ((*too_big)[0].status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE((*too_big)[0].status.message().find("quota.bytes"),
            std::string::npos)
      << (*too_big)[0].status;
  auto fits = b->PutBatch("b", {Item("p3", page)});
  ASSERT_TRUE(fits.ok());
  EXPECT_TRUE((*fits)[0].status.ok()) << (*fits)[0].status;
  // Another tenant is not held back by b's quota.
  auto a_put = client_->PutBatch("a", {Item("big", big)});
  ASSERT_TRUE(a_put.ok());
  EXPECT_TRUE((*a_put)[0].status.ok());
}

TEST_P(TenantsTest, RevokedTokenStopsWorkingWithoutARestart) {
  std::unique_ptr<Client> b = Connect("tok-b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Status().ok());
  // A new file without tok-b, then SIGHUP: b is out at once.
  WriteTenants(TenantsYaml("tok-a", "tok-b2"));
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  bool revoked = false;
  for (int i = 0; i < 100 && !revoked; ++i) {
    revoked = b->Status().status().code() == absl::StatusCode::kUnauthenticated;
    if (!revoked) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(revoked);
  std::unique_ptr<Client> b2 = Connect("tok-b2");
  ASSERT_NE(b2, nullptr);
  EXPECT_TRUE(b2->Status().ok());
  EXPECT_TRUE(client_->Status().ok());
  EXPECT_NE(server_->Log().find("tenants file"), std::string::npos);
  // A file that does not parse leaves the tenants as they were.
  WriteTenants("tenants: [");
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(b2->Status().ok());
}

// One tenant writing far more than the RAM tier holds pushes its own
// blocks to disk, not the other tenant's older ones (with LRU alone those
// would go first).
TEST_P(TenantsTest, EvictionTakesFromTheTenantAboveItsShare) {
  if (GetParam()) GTEST_SKIP() << "eviction does not depend on the path";
  ServerProcess::Options o;
  o.flags = {"--tenants_file=" + tenants_, "--ram_budget=4MiB",
             "--algorithm=lru"};
  auto small = ServerProcess::Start(o);
  ASSERT_TRUE(small.ok()) << small.status();
  ClientOptions options = client_options_;
  options.shared_memory_bytes = 0;
  options.log_sink = [](absl::string_view) {};
  options.token = "tok-a";
  auto a = Client::Connect((*small)->target(), options);
  options.token = "tok-ops";
  auto ops = Client::Connect((*small)->target(), options);
  ASSERT_TRUE(a.ok() && ops.ok());
  const std::string block = PatternBytes(256 << 10, 9);
  std::vector<std::string> a_ids;
  for (int i = 0; i < 6; ++i) {  // 1.5 MiB: under an equal share (2 MiB)
    a_ids.push_back(absl::StrCat("a", i));
    auto put = (*a)->PutBatch("a", {Item(a_ids.back(), block)});
    ASSERT_TRUE(put.ok() && (*put)[0].status.ok());
  }
  for (int i = 0; i < 24; ++i) {  // 6 MiB from the admin's namespace
    auto put = (*ops)->PutBatch("big", {Item(absl::StrCat("b", i), block)});
    ASSERT_TRUE(put.ok() && (*put)[0].status.ok()) << i;
  }
  for (const std::string& id : a_ids) {
    absl::StatusOr<v1::BlockInfo> info = (*a)->Get(BlockName("a", id));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_TRUE(info->tier() == v1::TIER_RAM ||
                info->tier() == v1::TIER_RAM_AND_DISK)
        << id << " was pushed to " << v1::Tier_Name(info->tier());
  }
  absl::StatusOr<v1::StatusResponse> status = (*ops)->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_GT(status->disk().blocks(), 0u);
}

TEST_P(TenantsTest, MetricsCanRequireAnAdminToken) {
  if (GetParam()) GTEST_SKIP() << "the metrics endpoint has one path";
  ServerProcess::Options o;
  o.flags = {"--tenants_file=" + tenants_, "--metrics_require_token"};
  auto guarded = ServerProcess::Start(o);
  ASSERT_TRUE(guarded.ok()) << guarded.status();
  const int port = (*guarded)->metrics_port();
  auto none = HttpGet(port, "/metrics");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->status, 401);
  EXPECT_NE(none->body.find("admin tenant"), std::string::npos) << none->body;
  EXPECT_EQ(HttpGet(port, "/metrics", "Bearer tok-a")->status, 401);
  EXPECT_EQ(HttpGet(port, "/metrics", "Bearer wrong")->status, 401);
  auto admin = HttpGet(port, "/metrics", "Bearer tok-ops");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->status, 200);
  EXPECT_NE(admin->body.find("tensorpager_"), std::string::npos);
  // Per-tenant families: one series per tenant of the file.
  for (const char* series :
       {"tensorpager_tenant_blocks{tenant=\"a\"} 0",
        "tensorpager_tenant_bytes{tenant=\"b\",tier=\"ram\"} 0",
        "tensorpager_tenant_quota{tenant=\"b\",kind=\"blocks\"} 3",
        "tensorpager_tenant_quota{tenant=\"b\",kind=\"bytes\"} 65536"}) {
    EXPECT_NE(admin->body.find(series), std::string::npos) << series;
  }
  // Without the flag the endpoint stays open (the default).
  EXPECT_EQ(HttpGet(server_->metrics_port(), "/metrics")->status, 200);
}

TEST_P(TenantsTest, TpctlProvesItsTenantWithATokenFile) {
  if (GetParam()) GTEST_SKIP() << "tpctl's path does not depend on it";
  const std::string tpctl = std::string(std::getenv("TP_BINARY_DIR") != nullptr
                                            ? std::getenv("TP_BINARY_DIR")
                                            : TP_BINARY_DIR) +
                            "/client_sdk/tpctl/tpctl";
  const std::string token_file = dir_.path() + "/token";
  std::ofstream(token_file) << "tok-a\n";
  auto run = [&](std::vector<std::string> args,
                 std::optional<std::string> env_token) {
    args.insert(args.begin(), {tpctl, "--target", server_->target()});
    CommandOptions o;
    o.env["TENSORPAGER_TOKEN"] = env_token;
    return RunCommand(std::move(args), o);
  };
  CommandResult ok =
      run({"--token_file", token_file, "lookup", "--namespace", "a", "x"},
          std::nullopt);
  EXPECT_EQ(ok.exit_code, 0) << ok;
  CommandResult none = run({"lookup", "--namespace", "a", "x"}, std::nullopt);
  EXPECT_NE(none.exit_code, 0) << none;
  EXPECT_NE(none.err.find("UNAUTHENTICATED"), std::string::npos) << none;
  CommandResult other = run({"lookup", "--namespace", "a", "x"}, "tok-b");
  EXPECT_NE(other.exit_code, 0) << other;
  EXPECT_NE(other.err.find("PERMISSION_DENIED"), std::string::npos) << other;
}

INSTANTIATE_TEST_SUITE_P(Paths, TenantsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "SharedMemory" : "GrpcOnly";
                         });

}  // namespace
}  // namespace tensorpager::testing
