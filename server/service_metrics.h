// The service's Prometheus metrics: RPCs (through a gRPC interceptor),
// swaps and accesses (as the store's observer), and gauges read at scrape
// time from the store and the pressure monitor.
#ifndef TENSORPAGER_SERVER_SERVICE_METRICS_H_
#define TENSORPAGER_SERVER_SERVICE_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/authenticator.h"
#include "server/metrics/counter.h"
#include "server/metrics/family.h"
#include "server/metrics/histogram.h"
#include "server/metrics/registry.h"
#include "server/pressure/pressure_monitor.h"
#include "storage/base/shared_mutex.h"
#include "storage/block_store.h"

namespace tensorpager::server {

class ServiceMetrics final : public storage::StoreObserver {
 public:
  static absl::StatusOr<std::unique_ptr<ServiceMetrics>> Create();

  // Adds the scrape-time families; `store` and `pressure` must outlive
  // every scrape (stop the HTTP server first).
  // Per-tenant gauges (tenant_metrics.cc): each tenant's blocks and bytes
  // per tier, and its quotas. One series per tenant of the tenants file,
  // up to kMaxTenantSeries; the rest are summed as tenant="_other".
  static constexpr size_t kMaxTenantSeries = 256;
  absl::Status AttachTenants(const storage::BlockStore* store,
                             auth::Authenticator* auth);
  absl::Status Attach(const storage::BlockStore* store,
                      const PressureMonitor* pressure);

  void OnSwapOut(uint64_t bytes, absl::Duration duration) override;
  void OnSwapIn(uint64_t bytes, absl::Duration duration) override;
  void OnAccess(storage::AccessResult result) override;

  // Counts every RPC by method and status code and times it.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  MakeInterceptorFactory();
  // The `method` label of an RPC path ("/tensorpager.v1.TensorPager/Access"):
  // the method's name for the services tensorpagerd serves (its own, health
  // and reflection), "other" for every other path. Clients choose paths
  // freely, so a series per path would let one grow /metrics without end.
  const std::string& MethodLabel(absl::string_view path) const;
  // `method`: a label from MethodLabel().
  void RecordRpc(const std::string& method, grpc::StatusCode code,
                 absl::Duration latency);

  const metrics::Registry& registry() const { return registry_; }

 private:
  ServiceMetrics() = default;
  // Store statistics are O(blocks); one scrape computes them once.
  storage::StoreStats CachedStats() const;

  metrics::Registry registry_;
  // Path -> label; filled by Create() and never changed, so the labels
  // MethodLabel() hands out stay valid.
  absl::flat_hash_map<std::string, std::string> method_labels_;
  // The one series of every other path.
  const std::string other_method_label_ = "other";
  metrics::Family<metrics::Counter>* rpcs_ = nullptr;
  metrics::Family<metrics::Histogram>* rpc_seconds_ = nullptr;
  metrics::Counter* swap_out_bytes_ = nullptr;
  metrics::Counter* swap_in_bytes_ = nullptr;
  metrics::Histogram* swap_out_seconds_ = nullptr;
  metrics::Histogram* swap_in_seconds_ = nullptr;
  std::array<metrics::Counter*, 4> accesses_{};
  const storage::BlockStore* store_ = nullptr;
  mutable SharedMutex stats_mu_;
  mutable storage::StoreStats stats_ ABSL_GUARDED_BY(stats_mu_);
  mutable absl::Time stats_at_ ABSL_GUARDED_BY(stats_mu_) =
      absl::InfinitePast();
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_SERVICE_METRICS_H_
