// The tenants file: tenants, their namespaces and credentials, and the
// errors a mistyped file gets.
#include "server/auth/tenant_table.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace tensorpager::server::auth {
namespace {

std::string Hash(absl::string_view token) { return TokenHash(token); }

TEST(TenantTableTest, MapsEachCredentialToItsTenant) {
  const std::string yaml = absl::StrCat(R"(
tenants:
  - name: team-a
    namespaces: [team-a, "team-a/*"]
    tokens: [")",
                                        Hash("secret-a"), R"("]
    uids: [1000]
  - name: ops
    role: admin
    namespaces: ["*"]
    tls_sans: [ops.example.com]
    quota: {blocks: 1000, bytes: 2GiB, ram_bytes: 512MiB, disk_bytes: 1GiB}
)");
  absl::StatusOr<TenantTable> table = TenantTable::Parse(yaml, "t.yaml");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->tenants().size(), 2u);
  const Tenant* a = table->ByToken("secret-a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "team-a");
  EXPECT_EQ(a->role, Role::kClient);
  EXPECT_EQ(table->ByUid(1000), a);
  EXPECT_EQ(table->ByToken("secret-b"), nullptr);
  EXPECT_EQ(table->ByUid(0), nullptr);
  const Tenant* ops = table->BySan("ops.example.com");
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(ops->role, Role::kAdmin);
  EXPECT_EQ(ops->quota.blocks, 1000u);
  EXPECT_EQ(ops->quota.bytes, 2ull << 30);
  EXPECT_EQ(ops->quota.ram_bytes, 512ull << 20);
  EXPECT_EQ(ops->quota.disk_bytes, 1ull << 30);
  EXPECT_FALSE(a->quota.blocks.has_value());

  EXPECT_TRUE(a->MayUse("team-a"));
  EXPECT_TRUE(a->MayUse("team-a/conv7"));
  EXPECT_FALSE(a->MayUse("team-ab"));
  EXPECT_FALSE(a->MayUse("team-b"));
  EXPECT_FALSE(a->MayUse(""));  // "default" is not listed
  EXPECT_TRUE(ops->MayUse(""));
  EXPECT_TRUE(ops->MayUse("anything"));
}

TEST(TenantTableTest, TokenHashIsSha256Hex) {
  // printf %s abc | sha256sum
  EXPECT_EQ(TokenHash("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
            "0015ad");
}

TEST(TenantTableTest, MistakesAreNamedWithTheirLine) {
  struct Case {
    std::string yaml;
    std::string expect;
  };
  const std::string h = Hash("t");
  const std::vector<Case> cases = {
      {"tenants: 3", "expected a 'tenants:' list"},
      {"tenants: [{name: a, namespaces: [a], tokens: [plain]}]", "sha256:"},
      {"tenants: [{name: a, namespaces: [a]}]", "has no credential"},
      {"tenants: [{name: a, uids: [1]}]", "lists no namespaces"},
      {"tenants: [{name: a, namespace: [a], uids: [1]}]",
       "unknown key 'namespace'"},
      {"tenants: [{name: a, role: root, namespaces: [a], uids: [1]}]",
       "neither client nor admin"},
      {"tenants: [{name: a, namespaces: [a], uids: [x]}]", "is not a number"},
      {absl::StrCat("tenants: [{name: a, namespaces: [", std::string(65, 'n'),
                    "], uids: [1]}]"),
       "not a namespace name"},
      {"tenants: [{name: a, namespaces: [a], uids: [1]},"
       " {name: a, namespaces: [b], uids: [2]}]",
       "listed twice"},
      {absl::StrCat("tenants: [{name: a, namespaces: [a], tokens: [", h,
                    "]}, {name: b, namespaces: [b], tokens: [", h, "]}]"),
       "belongs to one tenant"},
      {"tenants: [{name: a, namespaces: [a], uids: [7]},"
       " {name: b, namespaces: [b], uids: [7]}]",
       "uid 7 is listed for both"},
      {"tenants: [", "not YAML"},
      {"tenants: [{name: a, namespaces: [a], uids: [1], quota: {ram: 1}}]",
       "unknown quota 'ram'"},
      {"tenants: [{name: a, namespaces: [a], uids: [1], quota: {blocks: x}}]",
       "quota blocks 'x'"},
      {"tenants: [{name: a, namespaces: [a], uids: [1], quota: 7}]",
       "quota is a mapping"},
      {"tenants: [{name: a, namespaces: [a], uids: [1], "
       "quota: {ram_bytes: 0}}]",
       "every block passes through RAM"},
      {"tenants: [{name: a, namespaces: [a], uids: [1], "
       "quota: {disk_bytes: lots}}]",
       "quota disk_bytes 'lots'"},
      {"tenants: [{name: a, namespaces: [a], uids: [1], encrypt: maybe}]",
       "encrypt is true or false"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TenantTable> table = TenantTable::Parse(c.yaml, "f.yaml");
    ASSERT_FALSE(table.ok()) << c.yaml;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(table.status().message().find(c.expect), std::string::npos)
        << c.yaml << " -> " << table.status().message();
    EXPECT_NE(table.status().message().find("f.yaml"), std::string::npos)
        << table.status().message();
  }
}

TEST(TenantTableTest, MissingFileIsNotFound) {
  absl::StatusOr<TenantTable> table =
      TenantTable::Load("/nonexistent/tenants.yaml");
  EXPECT_EQ(table.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(table.status().message().find("--tenants_file"), std::string::npos);
}

}  // namespace
}  // namespace tensorpager::server::auth
