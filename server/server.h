// tensorpagerd as an object: hardware profile, block store, pressure
// monitor, policy thread, gRPC server (with health and reflection).
// main() and the tests build one of these.
#ifndef TENSORPAGER_SERVER_SERVER_H_
#define TENSORPAGER_SERVER_SERVER_H_

#include <grpcpp/server.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server/auth/authenticator.h"
#include "server/config/server_config.h"
#include "server/metrics/metrics_http_server.h"
#include "server/peer_identity.h"
#include "server/policy_thread.h"
#include "server/pressure/pressure_monitor.h"
#include "server/profile/hardware_profile.h"
#include "server/service_metrics.h"
#include "server/tensorpager_service.h"
#include "server/unix_socket_listener.h"
#include "storage/block_store.h"

namespace tensorpager::server {

class Server {
 public:
  // Detects the hardware, opens the store (recovering it), starts the
  // threads and listens.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerConfig config);
  ~Server();  // Shutdown() if still running

  // Stops accepting RPCs, lets in-flight ones finish within the grace
  // period, stops the threads and closes the store.
  void Shutdown();

  // Reads the tenants file again (SIGHUP); the tenants in use stay when it
  // does not parse.
  absl::Status ReloadTenants();

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  storage::BlockStore* store() { return store_.get(); }

 private:
  explicit Server(ServerConfig config) : config_(std::move(config)) {}
  // Applies the profile's defaults to settings not given explicitly.
  absl::Status ChooseProfile(std::unique_ptr<GpuSource>* gpu);
  // Host RAM pressure moves the RAM tier's budget.
  void OnPressure(const PressureEvent& event);

  ServerConfig config_;
  HardwareProfile profile_;
  uint64_t base_ram_budget_ = 0;
  std::unique_ptr<ServiceMetrics> metrics_;
  // Local peers' users, for tenants known by uid. Before the store: its
  // eviction asks the authenticator for tenants (SetShareGroups), so both
  // outlive it and the policy thread.
  PeerIdentity peers_;
  std::unique_ptr<auth::Authenticator> auth_;
  std::unique_ptr<storage::BlockStore> store_;
  std::unique_ptr<PressureMonitor> pressure_;
  std::unique_ptr<PolicyThread> policy_thread_;
  PressureMonitor::Subscription pressure_subscription_;
  std::unique_ptr<TensorPagerService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  // After grpc_: stopped (accepting no more) before gRPC shuts down.
  std::unique_ptr<UnixSocketListener> unix_socket_;
  // Scrapes read the store and the monitor: declared last, stopped first.
  std::unique_ptr<metrics::MetricsHttpServer> metrics_http_;
  int grpc_port_ = 0;
  bool running_ = false;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_SERVER_H_
