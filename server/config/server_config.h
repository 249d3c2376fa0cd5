// The effective configuration of tensorpagerd, assembled from flags (and,
// through the same struct, from a config file and the environment).
#ifndef TENSORPAGER_SERVER_CONFIG_SERVER_CONFIG_H_
#define TENSORPAGER_SERVER_CONFIG_SERVER_CONFIG_H_

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/block_store.h"

namespace tensorpager::server {

struct ServerConfig {
  std::string data_dir = "./tensorpager-data";
  std::string grpc_address = "127.0.0.1:50051";
  std::string metrics_address = "0.0.0.0:9464";  // empty: no metrics endpoint
  // 0: the hardware profile's share of the host's memory (Server::
  // ChooseProfile; DefaultsFor in server/profile/hardware_profile.cc).
  uint64_t ram_budget_bytes = 0;
  uint64_t max_swap_bytes = 2ull << 30;
  uint64_t max_block_bytes = 1ull << 30;
  std::string algorithm = "lru";
  double swap_threshold = 0.75;
  // After crossing swap_threshold the policy thread swaps out down to this
  // fraction of the budget.
  double swap_target = 0.65;
  int policy_interval_ms = 100;
  std::string io_engine = "auto";
  uint64_t io_block_bytes = 4ull << 20;
  uint32_t io_queue_depth = 8;
  uint32_t max_concurrent_swaps = 4;
  uint64_t eviction_batch_bytes = 16ull << 20;
  bool durable_writes = false;
  std::array<std::optional<bool>, storage::kNumRegionTypes> durable_by_region;
  // Codec of swapped-out bytes ("none", "lz4", "zstd"), per region type
  // overrides, level 1..9 and the ratio below which blocks stay raw.
  std::string compression = "none";
  std::array<std::optional<storage::Codec>, storage::kNumRegionTypes>
      codec_by_region;
  std::string compression_region_types_text;  // as given, for the log
  int compression_level = 1;
  double compression_min_ratio = 1.1;
  // Hardware profile: auto, nvme, ssd, hdd or low-memory. Its defaults
  // apply to every setting not given explicitly.
  std::string profile = "auto";
  // Pressure levels (medium, high, critical usage ratios).
  std::array<double, 3> ram_thresholds = {0.70, 0.85, 0.95};
  std::array<double, 3> gpu_thresholds = {0.70, 0.85, 0.95};
  int pressure_interval_ms = 1000;
  // Sequence members swapped in ahead of an access (0: off).
  uint32_t prefetch_depth = 2;
  // Settings given on the command line, in a config file or the
  // environment (by flag name); the profile leaves these alone.
  std::set<std::string> explicit_settings;
  // Written once the server listens: "grpc_port=N" and "metrics_port=M".
  std::string ready_file;
  int shutdown_grace_ms = 5000;
  // Lets clients on this host attach sealed memfds for the shared-memory
  // data path.
  bool shared_memory = true;
  // Limits that keep one client from starving or crashing the others.
  // Staging bytes of writes being received (0: the larger of
  // --max_block_size and a quarter of the RAM budget).
  uint64_t max_inflight_bytes = 0;
  uint64_t max_blocks = 10'000'000;
  // One batch call's blocks and block bytes.
  uint32_t max_batch_blocks = 4096;
  uint64_t max_batch_bytes = 32ull << 20;
  uint32_t max_rpc_threads = 256;
  uint32_t max_watch_streams = 64;
  uint32_t max_watch_streams_per_client = 8;
  uint32_t max_data_streams = 128;
  uint32_t max_data_streams_per_client = 64;
  uint32_t max_segments_per_client = 64;
  uint32_t max_rings_per_client = 8;
  // Who may call (server/auth): the tenants file; empty: everyone may do
  // everything, which a non-loopback grpc_address refuses unless
  // allow_insecure (or mutual TLS) says otherwise.
  std::string tenants_file;
  // TLS on the gRPC port: PEM certificate chain and key, re-read when they
  // change; with a client CA, clients must show a certificate it signed.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  bool allow_insecure = false;
  // /metrics answers only scrapes with an admin tenant's bearer token.
  bool metrics_require_token = false;
  // /metrics over HTTPS with the gRPC port's certificate (and client CA).
  bool metrics_tls = false;
  // Encryption at rest of the NVMe tier: the key file; empty: plaintext.
  std::string encryption_key_file;
  // "all": every block's NVMe copies are encrypted; "tenants": only those
  // of tenants marked `encrypt: true` in the tenants file.
  std::string encryption_scope = "all";
  // A Unix domain socket for local clients (empty: none), its file mode
  // and group.
  std::string unix_socket;
  std::string unix_socket_mode = "0660";
  std::string unix_socket_group;
  // Connections one user may hold open on the Unix socket at once: one
  // local user cannot use up the server's descriptors.
  uint32_t unix_socket_max_connections_per_uid = 128;
};

// Whether a --grpc_address serves this host only (127.x, [::1],
// localhost, a Unix socket).
bool IsLoopbackAddress(absl::string_view address);

// Whether the gRPC port serves other hosts with no authentication at all
// (no tenants file, no client CA): only with --allow_insecure.
bool ServesOthersUnauthenticated(const ServerConfig& config);

// Builds the configuration from the current flag values (after the config
// file and environment layers were applied to them). `explicit_settings`
// names the settings a user gave, which the hardware profile leaves alone.
absl::StatusOr<ServerConfig> ConfigFromFlags(
    std::set<std::string> explicit_settings = {});

// Checks ranges and combinations; INVALID_ARGUMENT names the setting.
absl::Status ValidateConfig(const ServerConfig& config);

// The block-store options the config implies (budget resolved).
absl::StatusOr<storage::BlockStoreOptions> StoreOptionsFor(
    const ServerConfig& config);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_CONFIG_SERVER_CONFIG_H_
