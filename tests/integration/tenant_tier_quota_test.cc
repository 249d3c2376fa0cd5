// Per-tier quotas of a tenant (quota.ram_bytes, quota.disk_bytes in the
// tenants file) against a real tensorpagerd: past its RAM quota a tenant
// pages its own blocks to disk, never another tenant's; past its disk
// quota its blocks stay in RAM, and whatever would need more disk is
// RESOURCE_EXHAUSTED, naming the quota, and changes nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/auth/tenant_table.h"
#include "tests/integration/pager_fixture.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {
namespace {

using ::tensorpager::server::auth::TokenHash;

constexpr uint64_t kBlock = 256 << 10;  // four of them fill each quota

class TenantTierQuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tenants = dir_.path() + "/tenants.yaml";
    std::ofstream(tenants) << absl::StrCat(
        "tenants:\n"
        "  - name: r\n"
        "    namespaces: [r]\n"
        "    quota: {ram_bytes: 1MiB, disk_bytes: 1MiB}\n"
        "    tokens: [\"",
        TokenHash("tok-r"),
        "\"]\n"
        "  - name: o\n"
        "    namespaces: [o]\n"
        "    tokens: [\"",
        TokenHash("tok-o"), "\"]\n");
    ServerProcess::Options o;
    o.flags = {"--tenants_file=" + tenants, "--ram_budget=64MiB",
               "--algorithm=lru"};
    auto server = ServerProcess::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    r_ = Connect("tok-r");
    o_ = Connect("tok-o");
    ASSERT_NE(r_, nullptr);
    ASSERT_NE(o_, nullptr);
  }

  std::unique_ptr<Client> Connect(const std::string& token) {
    return ConnectWithToken(*server_, token);
  }

  static absl::Status Put(Client& c, const std::string& ns,
                          const std::string& id, uint64_t seed,
                          std::optional<bool> durable = std::nullopt) {
    const std::string bytes = PatternBytes(kBlock, seed);
    PutItem item;
    item.id = id;
    item.data = absl::MakeSpan(reinterpret_cast<const std::byte*>(bytes.data()),
                               bytes.size());
    auto put = c.PutBatch(ns, {item}, durable);
    if (!put.ok()) return put.status();
    return (*put)[0].status;
  }

  static v1::Tier TierOf(Client& c, const std::string& ns,
                         const std::string& id) {
    absl::StatusOr<v1::BlockInfo> info = c.Get(BlockName(ns, id));
    EXPECT_TRUE(info.ok()) << ns << "/" << id << ": " << info.status();
    return info.ok() ? info->tier() : v1::TIER_UNSPECIFIED;
  }

  static void ExpectBytes(Client& c, const std::string& ns,
                          const std::string& id, uint64_t seed) {
    auto read = c.Read(BlockName(ns, id));
    ASSERT_TRUE(read.ok()) << ns << "/" << id << ": " << read.status();
    EXPECT_TRUE(read->data == PatternBytes(kBlock, seed)) << id << " differs";
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> r_, o_;
};

bool InRam(v1::Tier tier) {
  return tier == v1::TIER_RAM || tier == v1::TIER_RAM_AND_DISK;
}

TEST_F(TenantTierQuotaTest, RamQuotaPagesTheTenantsOwnBlocksToDisk) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(Put(*o_, "o", absl::StrCat("o", i), 100 + i).ok());
  }
  // Eight blocks, twice r's RAM quota, in a tier with room for 64 MiB.
  for (int i = 0; i < 8; ++i) {
    const absl::Status s = Put(*r_, "r", absl::StrCat("r", i), i);
    ASSERT_TRUE(s.ok()) << i << ": " << s;
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(TierOf(*r_, "r", absl::StrCat("r", i)), v1::TIER_DISK) << i;
    EXPECT_TRUE(InRam(TierOf(*r_, "r", absl::StrCat("r", i + 4)))) << i + 4;
    EXPECT_TRUE(InRam(TierOf(*o_, "o", absl::StrCat("o", i)))) << i;
  }
  absl::StatusOr<v1::StatusResponse> status = r_->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_LE(status->ram().bytes(), 1u << 20);
  EXPECT_EQ(status->disk().bytes(), 1u << 20);
  // Its blocks on disk read back whole, though both quotas are full.
  ExpectBytes(*r_, "r", "r0", 0);
  ExpectBytes(*r_, "r", "r3", 3);
}

TEST_F(TenantTierQuotaTest, DiskQuotaRefusesWhatWouldPassItAndChangesNothing) {
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(Put(*r_, "r", absl::StrCat("r", i), i).ok()) << i;
  }
  // Both quotas full: a ninth block has nowhere to go.
  const absl::Status ninth = Put(*r_, "r", "r8", 8);
  EXPECT_EQ(ninth.code(), absl::StatusCode::kResourceExhausted) << ninth;
  EXPECT_NE(ninth.message().find("quota.ram_bytes"), std::string::npos)
      << ninth;
  EXPECT_NE(ninth.message().find("disk quota is full"), std::string::npos)
      << ninth;
  EXPECT_EQ(r_->Get(BlockName("r", "r8")).status().code(),
            absl::StatusCode::kNotFound);
  // Swapping a block out, or a durable write of one only in RAM, would
  // need disk room too.
  auto swap = r_->SwapOut({BlockName("r", "r4")});
  EXPECT_EQ(swap.status().code(), absl::StatusCode::kResourceExhausted)
      << swap.status();
  EXPECT_NE(swap.status().message().find("quota.disk_bytes"), std::string::npos)
      << swap.status();
  const absl::Status durable = Put(*r_, "r", "r5", 55, /*durable=*/true);
  EXPECT_EQ(durable.code(), absl::StatusCode::kResourceExhausted) << durable;
  EXPECT_NE(durable.message().find("quota.disk_bytes"), std::string::npos)
      << durable;
  EXPECT_EQ(TierOf(*r_, "r", "r4"), v1::TIER_RAM);
  ExpectBytes(*r_, "r", "r5", 5);
  // The other tenant is not held back by r's quotas.
  EXPECT_TRUE(Put(*o_, "o", "o0", 100, /*durable=*/true).ok());
  // Freed blocks make room again.
  ASSERT_TRUE(r_->UnregisterBatch("r", {"r0", "r1"}).ok());
  const absl::Status after = Put(*r_, "r", "r8", 8);
  EXPECT_TRUE(after.ok()) << after;
  ExpectBytes(*r_, "r", "r8", 8);
}

}  // namespace
}  // namespace tensorpager::testing
