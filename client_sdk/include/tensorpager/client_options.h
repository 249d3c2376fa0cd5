// Settings of a tensorpager::Client. Every field has a usable default, so
// Client::Connect(target) alone gives a working client.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_OPTIONS_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_OPTIONS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tensorpager/device_runtime.h"
#include "tensorpager/pressure_source.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager {

struct CacheOptions {
  // Host memory the local cache may hold. Handles on host placements live
  // in this memory, so it must hold at least the largest block accessed.
  uint64_t host_budget_bytes = 1ull << 30;
  // Device memory the local cache may hold on each GPU.
  uint64_t gpu_budget_bytes = 2ull << 30;
  // Per-device overrides of gpu_budget_bytes, indexed by device ordinal.
  std::vector<uint64_t> gpu_budget_bytes_by_device;
  // The eviction algorithm that picks local victims (the server's code).
  v1::Algorithm algorithm = v1::LRU;
  // With a GPU present, host copies live in page-locked memory so copies
  // between the host cache and a device run at full speed.
  bool pin_host_memory = true;
  // Eviction priority per region type (indexed by v1::RegionType; higher
  // stays longer), the server's defaults.
  std::array<int, 7> region_priority = {0, 1, 1, 1, 3, 1, 0};
  // Under HIGH / CRITICAL pressure on a resource the cache on it shrinks to
  // this share of its budget (and stays there until the level drops);
  // dirty blocks are written back first. At 0 the cache on that resource
  // takes no new blocks while the level lasts.
  double high_pressure_budget_share = 0.5;
  double critical_pressure_budget_share = 0.0;
};

struct ReportingOptions {
  // Accesses served locally are sent to the server (ReportAccesses) at
  // least this often, and as soon as `access_batch` of them are pending.
  absl::Duration access_interval = absl::Milliseconds(100);
  uint32_t access_batch = 4096;
  // GPU memory use (cudaMemGetInfo) and cache sizes go to the server
  // (ReportClientUsage) this often; zero disables the reports.
  absl::Duration usage_interval = absl::Seconds(1);
  // Follow the server's pressure stream (ignored when
  // ClientOptions::pressure_source is set).
  bool watch_pressure = true;
};

struct TransferOptions {
  // Chunk of Access and WriteBlock streams (at most 1 MiB) and size of one
  // pinned staging buffer.
  uint32_t chunk_bytes = 1u << 20;
  // Staging buffers per transfer: while chunk i is copied to the GPU,
  // chunks i+1.. are received into the others.
  int staging_buffers = 4;
  // Transfers that may run at once per device, each with its own stream
  // and staging ring.
  int streams_per_device = 4;
};

struct ClientOptions {
  // Deadline of each RPC.
  absl::Duration timeout = absl::Seconds(60);
  // Retries of read-only RPCs that fail with UNAVAILABLE (server restarting).
  int max_retries = 3;
  absl::Duration retry_backoff = absl::Milliseconds(100);
  // Data chunk of WriteBlock messages (at most 1 MiB).
  uint32_t write_chunk_bytes = 1u << 20;
  // gRPC connections to the server; concurrent streams are spread over
  // them (one TCP connection caps the throughput of many large streams).
  int connections = 4;

  // Authentication (the server's --tenants_file): a bearer token sent with
  // every call as "authorization: Bearer <token>". Empty: none (a server
  // with tenants may still know this process by its uid, or by its
  // client certificate).
  std::string token;
  // TLS (the server's --tls_cert_file): PEM CA certificates that signed
  // the server's certificate; setting it turns TLS on.
  std::string tls_ca_file;
  // Mutual TLS (the server's --tls_client_ca_file): this client's PEM
  // certificate chain and private key.
  std::string tls_cert_file;
  std::string tls_key_file;
  // The name the server's certificate must carry; empty: the target's
  // host.
  std::string tls_server_name;
  // Names this process in the server's Status; empty: host:pid.
  std::string client_id;
  CacheOptions cache;
  ReportingOptions reporting;
  TransferOptions transfer;
  // Threads that run Prefetch requests.
  int prefetch_threads = 2;
  // Shared-memory data path to a server on this host (unix:, localhost or
  // loopback target): an arena of this many bytes (a sealed memfd the
  // server maps) through which host-memory transfers up to its size cross
  // by memcpy instead of gRPC streams. 0 turns it off; so does a server
  // that cannot attach (the SDK then says why once and uses streams).
  uint64_t shared_memory_bytes = 64ull << 20;
  // Process-wide: raises glibc malloc's mmap and trim thresholds so the
  // large buffers gRPC allocates for every received MiB are reused rather
  // than mapped, faulted in page by page and unmapped again. That halves
  // or better the CPU cost of moving large blocks (far more where page
  // faults are expensive, as in VMs). Off by default because it changes
  // the whole process; a no-op under jemalloc or tcmalloc.
  bool tune_allocator = false;

  // null: DefaultDeviceRuntime().
  std::shared_ptr<DeviceRuntime> device_runtime;
  // null: the server's WatchPressure stream (if reporting.watch_pressure).
  std::shared_ptr<PressureSource> pressure_source;
  // Receives the SDK's log lines; null: stderr.
  std::function<void(absl::string_view)> log_sink;
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_OPTIONS_H_
