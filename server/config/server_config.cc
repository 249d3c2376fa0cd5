#include "server/config/server_config.h"

#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/base/byte_size.h"
#include "storage/encryption.h"
#include "storage/policy/eviction_policy.h"

ABSL_FLAG(std::string, data_dir, "./tensorpager-data",
          "Directory for the metadata (RocksDB) and the NVMe tier's data "
          "file; put it on the NVMe drive. Private to the server's user: "
          "created, or tightened at start, to mode 0700.");
ABSL_FLAG(std::string, grpc_address, "127.0.0.1:50051",
          "host:port the gRPC API listens on (port 0 picks a free port; "
          "0.0.0.0 to serve other hosts).");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9464",
          "host:port of the Prometheus /metrics endpoint; empty disables it.");
ABSL_FLAG(tensorpager::base::ByteSize, ram_budget,
          tensorpager::base::ByteSize{0},
          "Bytes of host RAM the RAM tier may hold (e.g. 8GiB). 0: the "
          "hardware profile's share of the host's memory (cgroup limit "
          "aware): 25% (low-memory), 50% (ssd, nvme) or 60% (hdd), 10 points "
          "less with GPUs.");
ABSL_FLAG(tensorpager::base::ByteSize, max_swap_size,
          tensorpager::base::ByteSize{2ull << 30},
          "Largest size the NVMe tier's data file may grow to.");
ABSL_FLAG(tensorpager::base::ByteSize, max_block_size,
          tensorpager::base::ByteSize{1ull << 30},
          "Largest block RegisterBlock accepts.");
ABSL_FLAG(std::string, algorithm, "lru",
          "Eviction policy: lru, clock or adaptive.");
ABSL_FLAG(double, swap_threshold, 0.75,
          "Fraction of the RAM budget above which the policy thread swaps "
          "blocks out in the background.");
ABSL_FLAG(double, swap_target, 0.65,
          "Fraction of the RAM budget the policy thread swaps down to once "
          "the threshold was crossed.");
ABSL_FLAG(int, policy_interval_ms, 100,
          "How often the policy thread checks the RAM tier, in milliseconds.");
ABSL_FLAG(std::string, io_engine, "auto",
          "NVMe tier I/O engine: auto (io_uring, falling back to threads), "
          "io_uring or threads.");
ABSL_FLAG(tensorpager::base::ByteSize, io_block_size,
          tensorpager::base::ByteSize{4ull << 20},
          "I/O unit: larger blocks are split into units of this size that "
          "are in flight together.");
ABSL_FLAG(uint32_t, io_queue_depth, 8, "I/O requests in flight per engine.");
ABSL_FLAG(uint32_t, max_concurrent_swaps, 4,
          "Blocks one eviction or Swap call moves side by side, each "
          "compressed and written (or read back) by its own thread.");
ABSL_FLAG(tensorpager::base::ByteSize, eviction_batch,
          tensorpager::base::ByteSize{16ull << 20},
          "A write or swap-in that finds the RAM tier full swaps out at least "
          "this much (at most a sixteenth of --ram_budget), so small blocks "
          "share one fdatasync and one metadata sync.");
ABSL_FLAG(bool, durable_writes, false,
          "Acknowledge WriteBlock only once the bytes are on disk, unless the "
          "request says otherwise.");
ABSL_FLAG(std::string, durable_region_types, "",
          "Per region type override of --durable_writes, e.g. "
          "\"WEIGHT=true,TEMPORARY=false\".");
ABSL_FLAG(std::string, compression, "none",
          "Codec for bytes swapped out to the NVMe tier: none, lz4 or zstd. "
          "fp16/bf16/fp32 blocks are byte-shuffled by element first; a block "
          "whose ratio misses --compression_min_ratio is stored raw. A "
          "block's own request (RegisterBlock.compression) wins.");
ABSL_FLAG(std::string, compression_region_types, "",
          "Per region type override of --compression, e.g. "
          "\"KV_CACHE=lz4,WEIGHT=none\".");
ABSL_FLAG(int, compression_level, 1,
          "Compression level, 1 (fastest) to 9 (smallest).");
ABSL_FLAG(double, compression_min_ratio, 1.1,
          "Store a block compressed only when logical/stored bytes reaches "
          "this ratio (decompressing costs CPU on every swap-in).");
ABSL_FLAG(bool, shared_memory, true,
          "Let SDK clients on this host attach shared memory (sealed "
          "memfds) so block bytes cross by memcpy instead of gRPC streams. "
          "Clients connect over loopback TCP; the server attaches only "
          "memory of the calling user (checked with the kernel, never taken "
          "on the request's word), and needs to be that user or root, in "
          "the same PID namespace.");
ABSL_FLAG(std::string, tenants_file, "",
          "YAML file of the tenants that may call: per tenant a name, its "
          "namespaces (names, or prefixes ending in '*'), a role (client, or "
          "admin: also SetPolicy, Swap by target_bytes, every tenant's "
          "Status) and its credentials: sha256 hashes of bearer tokens, "
          "local uids, client-certificate SANs (see the README's Tenants "
          "section). Re-read on SIGHUP and when it changes. Empty: no "
          "authentication, every caller may do everything.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain of the gRPC port; with --tls_key_file "
          "turns TLS on. Both are re-read when they change (no restart).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA certificates: clients must present a certificate one of "
          "them signed (mutual TLS); its SANs can name a tenant (tls_sans "
          "in --tenants_file).");
ABSL_FLAG(bool, allow_insecure, false,
          "Serve a non-loopback --grpc_address without authentication (no "
          "--tenants_file, no --tls_client_ca_file): anyone who reaches the "
          "port may read, overwrite and delete every block. Without it such "
          "a server refuses to start.");
ABSL_FLAG(std::string, encryption_key_file, "",
          "Encrypt the NVMe tier with AES-256-GCM (the tag also checks each "
          "copy): a file of keys, one '<id> <64 hex digits>' per line (make "
          "one with: openssl rand -hex 32). The first key encrypts new "
          "copies; every key listed decrypts, so to rotate put the new key "
          "first and keep the old ones. Empty: copies are stored as they "
          "are.");
ABSL_FLAG(std::string, encryption_scope, "all",
          "With --encryption_key_file: 'all' encrypts every block on the "
          "NVMe tier; 'tenants' only those of tenants marked 'encrypt: "
          "true' in --tenants_file (the others skip the cost).");
ABSL_FLAG(std::string, unix_socket, "",
          "Also serve the gRPC API on this Unix domain socket (clients use "
          "target unix:PATH). The kernel names each peer's user "
          "(SO_PEERCRED): uids in --tenants_file, and shared memory, work "
          "over it. Empty: none.");
ABSL_FLAG(std::string, unix_socket_mode, "0660",
          "File mode of --unix_socket (octal): who may connect.");
ABSL_FLAG(std::string, unix_socket_group, "",
          "Group of --unix_socket (with --unix_socket_mode 0660, its "
          "members may connect); empty: the server's group.");
ABSL_FLAG(uint32_t, unix_socket_max_connections_per_uid, 128,
          "Connections one local user may hold open on --unix_socket at "
          "once; past it new ones are closed at once and the log says so "
          "(so one user cannot use up the server's file descriptors).");
ABSL_FLAG(bool, metrics_require_token, false,
          "Answer /metrics only with 'Authorization: Bearer <token>' of an "
          "admin tenant of --tenants_file (Prometheus: "
          "authorization.credentials_file); others get 401.");
ABSL_FLAG(bool, metrics_tls, false,
          "Serve /metrics over HTTPS with the gRPC port's certificate "
          "(--tls_cert_file, --tls_key_file; re-read when they change). "
          "With --tls_client_ca_file, scrapers must present a client "
          "certificate it signed (Prometheus: tls_config).");
ABSL_FLAG(std::string, profile, "auto",
          "Hardware profile whose defaults apply to settings not given "
          "explicitly: auto (detected from the data dir's drive, RAM and "
          "GPUs), nvme, ssd, hdd or low-memory.");
ABSL_FLAG(std::string, ram_pressure_thresholds, "0.7,0.85,0.95",
          "Host RAM usage ratios at which pressure becomes MEDIUM, HIGH and "
          "CRITICAL. Rising pressure shrinks the RAM tier's budget.");
ABSL_FLAG(std::string, gpu_pressure_thresholds, "0.7,0.85,0.95",
          "GPU memory usage ratios at which pressure becomes MEDIUM, HIGH "
          "and CRITICAL (SDK clients drop GPU copies under pressure).");
ABSL_FLAG(int, pressure_interval_ms, 1000,
          "How often the pressure monitor samples host RAM and GPUs.");
ABSL_FLAG(uint32_t, prefetch_depth, 2,
          "Accessing member i of a sequence swaps in members i+1..i+N ahead "
          "of use when the RAM tier has room; 0 disables prefetching.");
ABSL_FLAG(std::string, ready_file, "",
          "When set, written once the server listens, with lines "
          "grpc_port=N and metrics_port=M (for scripts and tests). A file "
          "is replaced whole; a FIFO is written in place once a reader "
          "opens it.");
ABSL_FLAG(int, shutdown_grace_ms, 5000,
          "On SIGTERM/SIGINT, how long in-flight RPCs may take to finish.");

ABSL_FLAG(tensorpager::base::ByteSize, max_inflight_bytes,
          tensorpager::base::ByteSize{0},
          "Staging memory that writes being received (WriteBlock streams, "
          "shared-memory writes) may hold in all, outside the RAM budget; a "
          "write beyond it fails RESOURCE_EXHAUSTED. 0: the larger of "
          "--max_block_size and a quarter of --ram_budget.");
ABSL_FLAG(uint32_t, max_batch_blocks, 4096,
          "Most blocks one batch call (PutBlocks, GetBlocks, Lookup, "
          "UnregisterBlocks) may name; a larger call fails "
          "INVALID_ARGUMENT (the SDK splits its batches to fit).");
ABSL_FLAG(tensorpager::base::ByteSize, max_batch_bytes,
          tensorpager::base::ByteSize{32ull << 20},
          "Most block bytes one PutBlocks or GetBlocks call may move; a "
          "larger call fails INVALID_ARGUMENT (the SDK splits its batches "
          "to fit). Bytes carried in gRPC messages also count against "
          "--max_inflight_bytes while the call runs.");
ABSL_FLAG(uint64_t, max_blocks, 10'000'000,
          "Most blocks that may be registered at once; RegisterBlock beyond "
          "it fails RESOURCE_EXHAUSTED.");
ABSL_FLAG(uint32_t, max_rpc_threads, 256,
          "Most threads serving RPCs; calls beyond it fail "
          "RESOURCE_EXHAUSTED instead of growing the process.");
ABSL_FLAG(uint32_t, max_watch_streams, 64,
          "Most WatchPressure streams open at once (each holds a thread).");
ABSL_FLAG(uint32_t, max_watch_streams_per_client, 8,
          "Most WatchPressure streams one client (a local user, or a remote "
          "host) may hold open.");
ABSL_FLAG(uint32_t, max_data_streams, 128,
          "Most WriteBlock and Access streams, and GetBlocks calls whose "
          "reply carries the blocks, open at once (each holds a thread "
          "while it runs, and a stalled peer can keep it).");
ABSL_FLAG(uint32_t, max_data_streams_per_client, 64,
          "Most of those (--max_data_streams) one client (a local user, or "
          "a remote host) may hold open.");
ABSL_FLAG(uint32_t, max_segments_per_client, 64,
          "Most shared-memory segments one local user may attach.");
ABSL_FLAG(uint32_t, max_rings_per_client, 8,
          "Most shared-memory request rings (8 server threads each) one "
          "local user may have served; beyond it a segment uses the RPCs.");

namespace tensorpager::server {
namespace {

// Parses "NAME=VALUE,..." keyed by region type name; `parse` turns a
// value into T (false: invalid, then `expected` says what was wanted).
template <typename T, typename Parse>
absl::Status ParseRegionMap(
    absl::string_view flag, absl::string_view text, absl::string_view expected,
    Parse parse, std::array<std::optional<T>, storage::kNumRegionTypes>* out) {
  for (absl::string_view item :
       absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, '=');
    const std::string name =
        absl::AsciiStrToUpper(absl::StripAsciiWhitespace(kv.first));
    T value;
    if (!parse(absl::StripAsciiWhitespace(kv.second), &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", item, "' needs =", expected));
    }
    bool found = false;
    for (int i = 1; i < storage::kNumRegionTypes; ++i) {
      if (name ==
          storage::RegionTypeName(static_cast<storage::RegionType>(i))) {
        (*out)[i] = value;
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, ": unknown region type '", kv.first,
          "'; use TENSOR_DATA, KV_CACHE, ACTIVATION, WEIGHT, IMAGE_FEATURES "
          "or TEMPORARY"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseThresholds(absl::string_view flag, absl::string_view text,
                             std::array<double, 3>* out) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", text, ": give three ratios, e.g. 0.7,0.85,0.95"));
  }
  for (int i = 0; i < 3; ++i) {
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(parts[i]), &(*out)[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", parts[i], "' is not a number"));
    }
  }
  if (!(0 < (*out)[0] && (*out)[0] < (*out)[1] && (*out)[1] < (*out)[2] &&
        (*out)[2] <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", text, ": need 0 < medium < high < critical <= 1"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ConfigFromFlags(
    std::set<std::string> explicit_settings) {
  ServerConfig c;
  c.data_dir = absl::GetFlag(FLAGS_data_dir);
  c.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  c.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  c.ram_budget_bytes = absl::GetFlag(FLAGS_ram_budget).bytes;
  c.max_swap_bytes = absl::GetFlag(FLAGS_max_swap_size).bytes;
  c.max_block_bytes = absl::GetFlag(FLAGS_max_block_size).bytes;
  c.algorithm = absl::GetFlag(FLAGS_algorithm);
  c.swap_threshold = absl::GetFlag(FLAGS_swap_threshold);
  c.swap_target = absl::GetFlag(FLAGS_swap_target);
  c.policy_interval_ms = absl::GetFlag(FLAGS_policy_interval_ms);
  c.io_engine = absl::GetFlag(FLAGS_io_engine);
  c.io_block_bytes = absl::GetFlag(FLAGS_io_block_size).bytes;
  c.io_queue_depth = absl::GetFlag(FLAGS_io_queue_depth);
  c.max_concurrent_swaps = absl::GetFlag(FLAGS_max_concurrent_swaps);
  c.eviction_batch_bytes = absl::GetFlag(FLAGS_eviction_batch).bytes;
  c.durable_writes = absl::GetFlag(FLAGS_durable_writes);
  if (absl::Status s = ParseRegionMap<bool>(
          "durable_region_types", absl::GetFlag(FLAGS_durable_region_types),
          "true or =false",
          [](absl::string_view v, bool* out) {
            return absl::SimpleAtob(v, out);
          },
          &c.durable_by_region);
      !s.ok()) {
    return s;
  }
  c.compression = absl::GetFlag(FLAGS_compression);
  if (absl::Status s = ParseRegionMap<storage::Codec>(
          "compression_region_types",
          absl::GetFlag(FLAGS_compression_region_types), "none, lz4 or zstd",
          [](absl::string_view v, storage::Codec* out) {
            return storage::ParseCodec(v, out);
          },
          &c.codec_by_region);
      !s.ok()) {
    return s;
  }
  c.compression_region_types_text =
      absl::GetFlag(FLAGS_compression_region_types);
  c.compression_level = absl::GetFlag(FLAGS_compression_level);
  c.compression_min_ratio = absl::GetFlag(FLAGS_compression_min_ratio);
  c.profile = absl::GetFlag(FLAGS_profile);
  if (absl::Status s = ParseThresholds(
          "ram_pressure_thresholds",
          absl::GetFlag(FLAGS_ram_pressure_thresholds), &c.ram_thresholds);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseThresholds(
          "gpu_pressure_thresholds",
          absl::GetFlag(FLAGS_gpu_pressure_thresholds), &c.gpu_thresholds);
      !s.ok()) {
    return s;
  }
  c.pressure_interval_ms = absl::GetFlag(FLAGS_pressure_interval_ms);
  c.prefetch_depth = absl::GetFlag(FLAGS_prefetch_depth);
  c.explicit_settings = std::move(explicit_settings);
  c.ready_file = absl::GetFlag(FLAGS_ready_file);
  c.shutdown_grace_ms = absl::GetFlag(FLAGS_shutdown_grace_ms);
  c.shared_memory = absl::GetFlag(FLAGS_shared_memory);
  c.max_inflight_bytes = absl::GetFlag(FLAGS_max_inflight_bytes).bytes;
  c.max_batch_blocks = absl::GetFlag(FLAGS_max_batch_blocks);
  c.max_batch_bytes = absl::GetFlag(FLAGS_max_batch_bytes).bytes;
  c.max_blocks = absl::GetFlag(FLAGS_max_blocks);
  c.max_rpc_threads = absl::GetFlag(FLAGS_max_rpc_threads);
  c.max_watch_streams = absl::GetFlag(FLAGS_max_watch_streams);
  c.max_watch_streams_per_client =
      absl::GetFlag(FLAGS_max_watch_streams_per_client);
  c.max_data_streams = absl::GetFlag(FLAGS_max_data_streams);
  c.max_data_streams_per_client =
      absl::GetFlag(FLAGS_max_data_streams_per_client);
  c.max_segments_per_client = absl::GetFlag(FLAGS_max_segments_per_client);
  c.max_rings_per_client = absl::GetFlag(FLAGS_max_rings_per_client);
  c.tenants_file = absl::GetFlag(FLAGS_tenants_file);
  c.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  c.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  c.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  c.allow_insecure = absl::GetFlag(FLAGS_allow_insecure);
  c.metrics_require_token = absl::GetFlag(FLAGS_metrics_require_token);
  c.metrics_tls = absl::GetFlag(FLAGS_metrics_tls);
  c.encryption_scope = absl::GetFlag(FLAGS_encryption_scope);
  c.encryption_key_file = absl::GetFlag(FLAGS_encryption_key_file);
  c.unix_socket = absl::GetFlag(FLAGS_unix_socket);
  c.unix_socket_mode = absl::GetFlag(FLAGS_unix_socket_mode);
  c.unix_socket_group = absl::GetFlag(FLAGS_unix_socket_group);
  c.unix_socket_max_connections_per_uid =
      absl::GetFlag(FLAGS_unix_socket_max_connections_per_uid);
  if (absl::Status s = ValidateConfig(c); !s.ok()) return s;
  return c;
}

bool IsLoopbackAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) return true;
  const size_t colon = address.rfind(':');
  const absl::string_view host =
      colon == absl::string_view::npos ? address : address.substr(0, colon);
  return absl::StartsWith(host, "127.") || host == "localhost" ||
         host == "[::1]";
}

bool ServesOthersUnauthenticated(const ServerConfig& c) {
  return !IsLoopbackAddress(c.grpc_address) && c.tenants_file.empty() &&
         c.tls_client_ca_file.empty();
}

absl::Status ValidateConfig(const ServerConfig& c) {
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert_file and --tls_key_file go together: give both for TLS, "
        "or neither");
  }
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca_file needs TLS: give --tls_cert_file and "
        "--tls_key_file too");
  }
  if (c.encryption_scope != "all" && c.encryption_scope != "tenants") {
    return absl::InvalidArgumentError(
        absl::StrCat("--encryption_scope=", c.encryption_scope,
                     " is unknown; use all or tenants"));
  }
  if (c.encryption_scope == "tenants" &&
      (c.encryption_key_file.empty() || c.tenants_file.empty())) {
    return absl::InvalidArgumentError(
        "--encryption_scope=tenants encrypts the blocks of tenants marked "
        "'encrypt: true': give --encryption_key_file and --tenants_file too");
  }
  if (c.metrics_tls && c.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "--metrics_tls serves /metrics with the gRPC port's certificate: "
        "give --tls_cert_file and --tls_key_file too");
  }
  if (c.metrics_require_token && c.tenants_file.empty()) {
    return absl::InvalidArgumentError(
        "--metrics_require_token checks admin tenants' tokens: give "
        "--tenants_file too");
  }
  if (ServesOthersUnauthenticated(c) && !c.allow_insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--grpc_address=", c.grpc_address,
        " serves other hosts, but no authentication is configured: anyone "
        "who reaches it could read, overwrite and delete every block. Give "
        "--tenants_file (with TLS: --tls_cert_file, --tls_key_file), or "
        "--allow_insecure to accept that"));
  }
  policy::Algorithm algorithm;
  if (!policy::ParseAlgorithm(c.algorithm, &algorithm)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--algorithm=", c.algorithm,
                     " is unknown; use lru, clock or adaptive"));
  }
  storage::IoEngineKind kind;
  if (!storage::ParseIoEngineKind(c.io_engine, &kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--io_engine=", c.io_engine,
                     " is unknown; use auto, io_uring or threads"));
  }
  if (!(c.swap_threshold > 0 && c.swap_threshold <= 1)) {
    return absl::InvalidArgumentError("--swap_threshold must be in (0, 1]");
  }
  if (!(c.swap_target > 0 && c.swap_target <= c.swap_threshold)) {
    return absl::InvalidArgumentError(
        "--swap_target must be in (0, --swap_threshold]");
  }
  if (c.max_swap_bytes < base::kIoAlignment) {
    return absl::InvalidArgumentError("--max_swap_size must be at least 4KiB");
  }
  if (c.max_block_bytes == 0) {
    return absl::InvalidArgumentError("--max_block_size must be positive");
  }
  if (c.io_block_bytes < base::kIoAlignment ||
      c.io_block_bytes % base::kIoAlignment != 0) {
    return absl::InvalidArgumentError(
        "--io_block_size must be a positive multiple of 4KiB");
  }
  if (c.io_queue_depth == 0 || c.max_concurrent_swaps == 0) {
    return absl::InvalidArgumentError(
        "--io_queue_depth and --max_concurrent_swaps must be positive");
  }
  storage::Codec codec;
  if (!storage::ParseCodec(c.compression, &codec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--compression=", c.compression, " is unknown; use none, lz4 or zstd"));
  }
  storage::CompressionSettings compression{codec, c.compression_level,
                                           c.compression_min_ratio};
  if (absl::Status s = storage::ValidateCompressionSettings(compression);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--compression_level/--compression_min_ratio: ", s.message()));
  }
  if (c.policy_interval_ms <= 0) {
    return absl::InvalidArgumentError("--policy_interval_ms must be positive");
  }
  if (c.pressure_interval_ms <= 0) {
    return absl::InvalidArgumentError(
        "--pressure_interval_ms must be positive");
  }
  if (c.data_dir.empty()) {
    return absl::InvalidArgumentError("--data_dir must not be empty");
  }
  if (c.max_batch_blocks == 0 || c.max_batch_bytes == 0) {
    return absl::InvalidArgumentError(
        "--max_batch_blocks and --max_batch_bytes must be positive");
  }
  // gRPC messages carry a batch whole (server.cc sizes them by it).
  if (c.max_batch_bytes > (1ull << 30)) {
    return absl::InvalidArgumentError(
        "--max_batch_bytes may be at most 1GiB; a gRPC message carries a "
        "batch whole");
  }
  if (c.max_blocks == 0 || c.max_watch_streams == 0 ||
      c.max_watch_streams_per_client == 0 || c.max_data_streams == 0 ||
      c.max_data_streams_per_client == 0 || c.max_segments_per_client == 0 ||
      c.unix_socket_max_connections_per_uid == 0) {
    return absl::InvalidArgumentError(
        "--max_blocks, --max_watch_streams(_per_client), "
        "--max_data_streams(_per_client), --max_segments_per_client and "
        "--unix_socket_max_connections_per_uid must be positive");
  }
  // Streams hold threads: leave threads for unary calls.
  if (c.max_rpc_threads < c.max_watch_streams + c.max_data_streams + 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_rpc_threads=", c.max_rpc_threads,
                     " leaves no threads for unary calls; it must be at least "
                     "--max_watch_streams + --max_data_streams + 16 (",
                     c.max_watch_streams + c.max_data_streams + 16, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<storage::BlockStoreOptions> StoreOptionsFor(
    const ServerConfig& c) {
  storage::BlockStoreOptions o;
  o.data_dir = c.data_dir;
  o.ram_budget_bytes = c.ram_budget_bytes;
  if (o.ram_budget_bytes == 0) {
    return absl::FailedPreconditionError(
        "cannot tell how much memory is available; set --ram_budget");
  }
  o.prefetch_depth = c.prefetch_depth;
  o.max_swap_bytes = c.max_swap_bytes;
  o.max_block_bytes = c.max_block_bytes;
  policy::ParseAlgorithm(c.algorithm, &o.algorithm);
  storage::ParseIoEngineKind(c.io_engine, &o.io.kind);
  o.io.io_unit_bytes = c.io_block_bytes;
  o.io.queue_depth = c.io_queue_depth;
  o.durable_writes = c.durable_writes;
  o.durable_by_region = c.durable_by_region;
  storage::ParseCodec(c.compression, &o.compression.codec);
  o.compression.level = c.compression_level;
  o.compression.min_ratio = c.compression_min_ratio;
  o.codec_by_region = c.codec_by_region;
  o.max_concurrent_swaps = c.max_concurrent_swaps;
  o.eviction_batch_bytes = c.eviction_batch_bytes;
  o.max_blocks = c.max_blocks;
  if (!c.encryption_key_file.empty()) {
    absl::StatusOr<std::shared_ptr<const storage::KeyRing>> keys =
        storage::KeyRing::Load(c.encryption_key_file);
    if (!keys.ok()) return keys.status();
    o.encryption_keys = *std::move(keys);
  }
  return o;
}

}  // namespace tensorpager::server
