// tensorpagerd as an object: block store, gRPC server (with health and
// reflection), policy thread. main() and the tests build one of these.
#ifndef TENSORPAGER_SERVER_SERVER_H_
#define TENSORPAGER_SERVER_SERVER_H_

#include <memory>

#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "server/policy_thread.h"
#include "server/server_config.h"
#include "server/tensorpager_service.h"
#include "storage/block_store.h"

namespace tensorpager::server {

class Server {
 public:
  // Opens the store (recovering it), starts the threads and listens.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerConfig config);
  ~Server();  // Shutdown() if still running

  // Stops accepting RPCs, lets in-flight ones finish within the grace
  // period, stops the threads and closes the store.
  void Shutdown();

  int grpc_port() const { return grpc_port_; }
  storage::BlockStore* store() { return store_.get(); }

 private:
  explicit Server(ServerConfig config) : config_(std::move(config)) {}

  ServerConfig config_;
  std::unique_ptr<storage::BlockStore> store_;
  std::unique_ptr<TensorPagerService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<PolicyThread> policy_thread_;
  int grpc_port_ = 0;
  bool running_ = false;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_SERVER_H_
