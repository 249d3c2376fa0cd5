// ServiceMetrics' per-tenant families: what each tenant of the tenants
// file holds and may hold, computed at scrape time from the store's
// per-namespace usage (no per-request cost). Series are bounded by the
// tenants file: kMaxTenantSeries tenants by name, any more as "_other".
#include <string>
#include <vector>

#include "server/service_metrics.h"  // the class these members belong to

namespace tensorpager::server {
namespace {

struct TenantRow {
  std::string name;
  storage::NamespaceUsage usage;
  const auth::TenantQuota* quota = nullptr;
};

std::vector<TenantRow> Rows(const storage::BlockStore* store,
                            auth::Authenticator* auth) {
  const auto usage = store->UsageByNamespace();
  std::vector<TenantRow> rows;
  for (const auto& tenant : auth->tenants()) {
    const bool own_row = rows.size() < ServiceMetrics::kMaxTenantSeries;
    if (own_row) rows.push_back({tenant->name, {}, &tenant->quota});
    if (!own_row && rows.size() == ServiceMetrics::kMaxTenantSeries) {
      rows.push_back({"_other", {}, nullptr});
    }
    storage::NamespaceUsage& u = rows.back().usage;
    for (const auto& [ns, n] : usage) {
      if (!tenant->MayUse(ns)) continue;
      u.blocks += n.blocks;
      u.bytes += n.bytes;
      u.ram_bytes += n.ram_bytes;
      u.disk_bytes += n.disk_bytes;
    }
  }
  return rows;
}

}  // namespace

absl::Status ServiceMetrics::AttachTenants(const storage::BlockStore* store,
                                           auth::Authenticator* auth) {
  using metrics::SampleSink;
  const std::vector<absl::Status> results = {
      registry_.AddGaugeCallback(
          {"tensorpager_tenant_blocks",
           "Blocks registered in each tenant's namespaces.",
           {"tenant"}},
          [store, auth](SampleSink& sink) {
            for (const TenantRow& r : Rows(store, auth)) {
              sink.Add({r.name}, r.usage.blocks);
            }
          }),
      registry_.AddGaugeCallback(
          {"tensorpager_tenant_bytes",
           "Logical bytes of each tenant's blocks per tier.",
           {"tenant", "tier"}},
          [store, auth](SampleSink& sink) {
            for (const TenantRow& r : Rows(store, auth)) {
              sink.Add({r.name, "ram"}, r.usage.ram_bytes);
              sink.Add({r.name, "disk"}, r.usage.disk_bytes);
            }
          }),
      registry_.AddGaugeCallback(
          {"tensorpager_tenant_quota",
           "Each tenant's quota (tenants file), for the tenants that have "
           "one.",
           {"tenant", "kind"}},
          [store, auth](SampleSink& sink) {
            for (const TenantRow& r : Rows(store, auth)) {
              if (r.quota == nullptr) continue;
              for (const auto& [kind, field] : auth::kQuotaKeys) {
                if (const std::optional<uint64_t>& limit = r.quota->*field) {
                  sink.Add({r.name, kind}, static_cast<double>(*limit));
                }
              }
            }
          }),
  };
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::server
