#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/byte_size.h"
#include "storage/log.h"

namespace tensorpager::server {
namespace {

constexpr char kServiceName[] = "tensorpager.v1.TensorPager";

absl::Status WriteReadyFile(const std::string& path, int grpc_port,
                            int metrics_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << "grpc_port=" << grpc_port << "\nmetrics_port=" << metrics_port
      << "\n";
    if (!f.good()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write --ready_file ", path));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write --ready_file ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerConfig config) {
  std::unique_ptr<Server> server(new Server(std::move(config)));
  const ServerConfig& c = server->config_;
  absl::StatusOr<storage::BlockStoreOptions> options = StoreOptionsFor(c);
  if (!options.ok()) return options.status();
  options->max_block_bytes = std::min(options->max_block_bytes,
                                      options->ram_budget_bytes);
  TP_LOG(INFO) << "opening data dir " << c.data_dir << " (RAM tier budget "
               << FormatByteSize(options->ram_budget_bytes)
               << ", NVMe tier up to " << FormatByteSize(options->max_swap_bytes)
               << ", policy " << c.algorithm << ")";
  absl::StatusOr<std::unique_ptr<storage::BlockStore>> store =
      storage::BlockStore::Open(*std::move(options));
  if (!store.ok()) return store.status();
  server->store_ = *std::move(store);
  const storage::RecoveryReport& rec = server->store_->recovery();
  TP_LOG(INFO) << "recovered " << rec.blocks << " blocks: "
               << rec.blocks_on_disk << " on disk ("
               << FormatByteSize(rec.bytes_on_disk) << "), " << rec.blocks_lost
               << " lost (only in RAM at the last stop), in "
               << absl::FormatDuration(rec.duration) << "; I/O engine "
               << server->store_->Stats().io_engine;

  server->service_ =
      std::make_unique<TensorPagerService>(server->store_.get(), &c);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(c.grpc_address, grpc::InsecureServerCredentials(),
                           &server->grpc_port_);
  builder.RegisterService(server->service_.get());
  // Write chunks are 1 MiB; leave room for the envelope.
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.SetMaxSendMessageSize(4 << 20);
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", c.grpc_address,
        "; is the port in use? pick another with --grpc_address"));
  }
  server->grpc_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  server->running_ = true;

  server->policy_thread_ = std::make_unique<PolicyThread>(
      server->store_.get(),
      PolicyThread::Options{c.swap_threshold, c.swap_target,
                            absl::Milliseconds(c.policy_interval_ms)});

  TP_LOG(INFO) << "serving " << kServiceName << " on "
               << c.grpc_address.substr(0, c.grpc_address.rfind(':')) << ":"
               << server->grpc_port_;
  if (!c.ready_file.empty()) {
    if (absl::Status s = WriteReadyFile(c.ready_file, server->grpc_port_, 0);
        !s.ok()) {
      return s;
    }
  }
  return server;
}

void Server::Shutdown() {
  if (!running_) return;
  running_ = false;
  TP_LOG(INFO) << "shutting down: finishing in-flight RPCs (up to "
               << config_.shutdown_grace_ms << " ms)";
  grpc_->GetHealthCheckService()->SetServingStatus(false);
  grpc_->Shutdown(std::chrono::system_clock::now() +
                  std::chrono::milliseconds(config_.shutdown_grace_ms));
  grpc_->Wait();
  policy_thread_.reset();
  service_.reset();
  store_.reset();
  TP_LOG(INFO) << "stopped; metadata closed cleanly";
}

Server::~Server() { Shutdown(); }

}  // namespace tensorpager::server
