// Who is calling the service and what it may touch (server/auth): every
// RPC authenticates its caller first, then checks the namespace it names
// against the caller's tenant before it allocates or reads anything. The
// answer depends on the namespace alone, never on whether a block exists,
// so a refused caller learns nothing about other tenants' blocks.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/proto_convert.h"
#include "server/tensorpager_service.h"  // the class these members belong to

namespace tensorpager::server {

absl::Status NamespaceAllowed(const auth::Caller& caller,
                              absl::string_view ns) {
  if (caller.MayUse(ns)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "tenant '", caller.tenant_name(), "' may not use namespace '",
      ns.empty() ? storage::kDefaultNamespace : ns, "'; its namespaces are ",
      absl::StrJoin(caller.tenant()->namespaces, ", ")));
}

absl::StatusOr<auth::Caller> TensorPagerService::Authenticate(
    grpc::ServerContext* context) {
  return auth_->Authenticate(*context);
}

grpc::Status TensorPagerService::Admit(grpc::ServerContext* context,
                                       absl::string_view ns,
                                       auth::Caller* caller) {
  absl::StatusOr<auth::Caller> who = Authenticate(context);
  if (!who.ok()) return ToGrpc(who.status());
  if (absl::Status s = NamespaceAllowed(*who, ns); !s.ok()) return ToGrpc(s);
  if (caller != nullptr) *caller = *std::move(who);
  return grpc::Status::OK;
}

grpc::Status TensorPagerService::AdmitAdmin(grpc::ServerContext* context,
                                            absl::string_view what) {
  absl::StatusOr<auth::Caller> who = Authenticate(context);
  if (!who.ok()) return ToGrpc(who.status());
  if (who->admin()) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::PERMISSION_DENIED,
      absl::StrCat(what,
                   " acts on every tenant's blocks: admin only, and "
                   "tenant '",
                   who->tenant_name(), "' is a client"));
}

absl::Status TensorPagerService::AdmitNewBlock(
    const auth::Caller& caller, uint64_t size_bytes,
    std::optional<storage::NamespaceUsage>* usage) {
  const auth::Tenant* tenant = caller.tenant();
  if (tenant == nullptr || (!tenant->quota.blocks && !tenant->quota.bytes)) {
    return absl::OkStatus();
  }
  // One scan of the namespaces per call, however many blocks it creates.
  // Concurrent calls may each pass before the other counts: a tenant can
  // overshoot by the blocks it creates at the same moment, no more.
  if (!usage->has_value()) {
    *usage = store_->SumUsage(
        [tenant](absl::string_view ns) { return tenant->MayUse(ns); });
  }
  storage::NamespaceUsage& used = **usage;
  auto refuse = [&](absl::string_view what, uint64_t has, uint64_t limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant '", tenant->name, "' holds ", has, " ", what, " and its quota ",
        "(quota.", what, " in the tenants file) is ", limit,
        "; free some (UnregisterBlocks, tpctl rm --prefix) or ask the "
        "operator to raise it"));
  };
  if (tenant->quota.blocks && used.blocks + 1 > *tenant->quota.blocks) {
    return refuse("blocks", used.blocks, *tenant->quota.blocks);
  }
  if (tenant->quota.bytes && used.bytes + size_bytes > *tenant->quota.bytes) {
    return refuse("bytes", used.bytes, *tenant->quota.bytes);
  }
  used.blocks += 1;
  used.bytes += size_bytes;
  return absl::OkStatus();
}

BatchCalls::AdmitNew TensorPagerService::AdmitNewFor(
    const auth::Caller& caller) {
  if (caller.tenant() == nullptr) return {};
  return [this, caller, usage = std::optional<storage::NamespaceUsage>()](
             uint64_t size) mutable {
    return AdmitNewBlock(caller, size, &usage);
  };
}

void TensorPagerService::FillTenantShares(const auth::Caller& caller,
                                          v1::StatusResponse* response) {
  if (!auth_->enabled()) return;
  response->set_tenant(caller.tenant_name());
  const absl::flat_hash_map<std::string, storage::NamespaceUsage> usage =
      store_->UsageByNamespace();
  auto share = [&usage](const auth::Tenant& tenant, v1::TenantUsage* out) {
    out->set_name(tenant.name);
    for (const auto& [ns, u] : usage) {
      if (!tenant.MayUse(ns)) continue;
      out->set_blocks(out->blocks() + u.blocks);
      out->set_blocks_in_ram(out->blocks_in_ram() + u.blocks_in_ram);
      out->set_blocks_on_disk(out->blocks_on_disk() + u.blocks_on_disk);
      out->set_ram_bytes(out->ram_bytes() + u.ram_bytes);
      out->set_disk_bytes(out->disk_bytes() + u.disk_bytes);
    }
  };
  if (caller.admin()) {
    for (const auto& tenant : auth_->tenants()) {
      share(*tenant, response->add_tenants());
    }
    return;
  }
  // A client sees the server's settings, capacities and pressure, and of
  // the blocks only its own.
  v1::TenantUsage own;
  share(*caller.tenant(), &own);
  v1::StatusResponse keep;
  keep.set_version(response->version());
  keep.set_algorithm(response->algorithm());
  keep.set_swap_threshold(response->swap_threshold());
  keep.set_swap_target(response->swap_target());
  keep.set_max_block_bytes(response->max_block_bytes());
  keep.set_max_batch_blocks(response->max_batch_blocks());
  keep.set_max_batch_bytes(response->max_batch_bytes());
  keep.set_max_inflight_bytes(response->max_inflight_bytes());
  keep.set_io_engine(response->io_engine());
  keep.set_uptime_seconds(response->uptime_seconds());
  keep.set_profile(response->profile());
  *keep.mutable_pressure() = response->pressure();
  keep.set_tenant(caller.tenant_name());
  keep.set_blocks_registered(own.blocks());
  keep.set_blocks_in_ram(own.blocks_in_ram());
  keep.set_blocks_on_disk(own.blocks_on_disk());
  v1::TierStatus* ram = keep.mutable_ram();
  ram->set_blocks(own.blocks_in_ram());
  ram->set_bytes(own.ram_bytes());
  ram->set_capacity_bytes(response->ram().capacity_bytes());
  v1::TierStatus* disk = keep.mutable_disk();
  disk->set_blocks(own.blocks_on_disk());
  disk->set_bytes(own.disk_bytes());
  disk->set_capacity_bytes(response->disk().capacity_bytes());
  *keep.add_tenants() = own;
  *response = std::move(keep);
}

}  // namespace tensorpager::server
