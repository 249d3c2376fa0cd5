// Fuzzes the tenants file parser (server/auth/tenant_table.h): the
// operator's YAML, or a Kubernetes Secret mounted as it. Whatever the
// input, Parse returns a table or a status; a table it returns keeps the
// promises the authenticator relies on.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "server/auth/tenant_table.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tensorpager::server::auth::TenantTable> table =
      tensorpager::server::auth::TenantTable::Parse(yaml, "fuzz.yaml");
  if (!table.ok()) {
    TP_FUZZ_CHECK(!table.status().message().empty());
    return 0;
  }
  std::set<std::string> names;
  for (const auto& tenant : table->tenants()) {
    // Named once each, with namespaces; quotas that let a block in.
    TP_FUZZ_CHECK(!tenant->name.empty());
    TP_FUZZ_CHECK(names.insert(tenant->name).second);
    TP_FUZZ_CHECK(!tenant->namespaces.empty());
    TP_FUZZ_CHECK(!tenant->quota.ram_bytes || *tenant->quota.ram_bytes > 0);
    // Asking about any namespace is safe.
    (void)tenant->MayUse(yaml.substr(0, 64));
    (void)tenant->MayUse("");
  }
  // Lookups of credentials nobody listed find nobody.
  TP_FUZZ_CHECK(table->ByToken("tensorpager-fuzz-no-such-token") == nullptr);
  return 0;
}
