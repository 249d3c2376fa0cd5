// Who may use the server, read from the tenants file (--tenants_file, a
// YAML file or a mounted Kubernetes Secret):
//
//   tenants:
//     - name: team-a
//       role: client                  # client (default) or admin
//       namespaces: [team-a, "team-a/*"]
//       tokens: ["sha256:<64 hex digits>"]   # hashes of bearer tokens
//       uids: [1000]                  # local users (loopback, Unix socket)
//       tls_sans: [engine-a.example.com]    # client certificates' SANs
//       quota: {blocks: 100000, bytes: 64GiB,   # optional
//               ram_bytes: 8GiB, disk_bytes: 60GiB}
//       encrypt: true   # with --encryption_scope=tenants: seal its blocks
//
// The server keeps only hashes of tokens. A namespace pattern is a name,
// or a prefix ending in "*" ("*" alone: every namespace); "default" is
// the namespace of requests that name none. Each token hash, uid and SAN
// belongs to one tenant.
#ifndef TENSORPAGER_SERVER_AUTH_TENANT_TABLE_H_
#define TENSORPAGER_SERVER_AUTH_TENANT_TABLE_H_

#include <sys/types.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::server::auth {

enum class Role {
  kClient,  // reads and writes blocks of its namespaces
  kAdmin,   // also SetPolicy, Swap by target_bytes, every tenant's Status
};

// What a tenant's namespaces may hold at most. Unset: no limit.
//  - blocks, bytes: registered blocks and their bytes wherever they are;
//    a new block past them is RESOURCE_EXHAUSTED.
//  - ram_bytes: bytes in the RAM tier; past it, the tenant's own coldest
//    blocks go to the NVMe tier (never another tenant's).
//  - disk_bytes: bytes on the NVMe tier; past it, its blocks stay in RAM,
//    and durable writes and Swap out are RESOURCE_EXHAUSTED.
struct TenantQuota {
  std::optional<uint64_t> blocks;
  std::optional<uint64_t> bytes;
  std::optional<uint64_t> ram_bytes;
  std::optional<uint64_t> disk_bytes;
};

// Each quota by its key in the tenants file, which is also its `kind`
// label in tensorpager_tenant_quota.
inline constexpr std::array<
    std::pair<absl::string_view, std::optional<uint64_t> TenantQuota::*>, 4>
    kQuotaKeys = {{{"blocks", &TenantQuota::blocks},
                   {"bytes", &TenantQuota::bytes},
                   {"ram_bytes", &TenantQuota::ram_bytes},
                   {"disk_bytes", &TenantQuota::disk_bytes}}};

struct Tenant {
  std::string name;
  Role role = Role::kClient;
  std::vector<std::string> namespaces;  // patterns, see above
  TenantQuota quota;
  // Its blocks on the NVMe tier are encrypted under
  // --encryption_scope=tenants (with scope all, every tenant's are).
  bool encrypt = false;

  // Whether requests naming `ns` ("" is "default") are this tenant's.
  bool MayUse(absl::string_view ns) const;
};

// "sha256:<hex>" of a bearer token, as the tenants file lists it.
std::string TokenHash(absl::string_view token);

class TenantTable {
 public:
  // `source` names the text in error messages (a path).
  static absl::StatusOr<TenantTable> Parse(absl::string_view yaml,
                                           absl::string_view source);
  static absl::StatusOr<TenantTable> Load(const std::string& path);

  // The tenant that a credential belongs to, or null.
  const Tenant* ByToken(absl::string_view token) const;
  const Tenant* ByUid(uid_t uid) const;
  const Tenant* BySan(absl::string_view san) const;

  const std::vector<std::shared_ptr<const Tenant>>& tenants() const {
    return tenants_;
  }

 private:
  std::vector<std::shared_ptr<const Tenant>> tenants_;
  absl::flat_hash_map<std::string, const Tenant*> by_token_hash_;
  absl::flat_hash_map<uid_t, const Tenant*> by_uid_;
  absl::flat_hash_map<std::string, const Tenant*> by_san_;
};

}  // namespace tensorpager::server::auth

#endif  // TENSORPAGER_SERVER_AUTH_TENANT_TABLE_H_
