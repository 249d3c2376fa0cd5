// Counters of the SDK's local cache, for dashboards and the examples.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CACHE_STATS_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CACHE_STATS_H_

#include <cstdint>
#include <vector>

#include "tensorpager/placement.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager {

// One memory pool of the local cache: host memory or one device.
struct PoolStats {
  Placement placement = Placement::Host();
  uint64_t budget_bytes = 0;
  // The budget lowered by memory pressure (equal to budget_bytes at LOW).
  uint64_t effective_budget_bytes = 0;
  // Bytes held by local copies (rounded up to the allocation classes).
  uint64_t resident_bytes = 0;
  // Freed buffers kept for reuse; given back under pressure.
  uint64_t spare_bytes = 0;
  uint64_t blocks = 0;
  v1::PressureLevel pressure = v1::LOW;
};

struct CacheStats {
  // Accesses served by the local copy on the placement asked for.
  uint64_t hits = 0;
  // Accesses served by copying another local copy (host <-> device), with
  // no RPC.
  uint64_t local_transfers = 0;
  // Accesses that fetched the block from the server.
  uint64_t misses = 0;
  uint64_t bytes_fetched = 0;       // server -> local cache
  uint64_t bytes_written_back = 0;  // local cache -> server (dirty blocks)
  uint64_t write_backs = 0;
  uint64_t bytes_host_to_device = 0;
  uint64_t bytes_device_to_host = 0;
  uint64_t evictions = 0;           // local copies dropped for room
  uint64_t pressure_evictions = 0;  // local copies dropped under pressure
  uint64_t accesses_reported = 0;   // local accesses the server accepted
  uint64_t prefetches = 0;
  // Transfers (either way) that crossed through the shared-memory arena
  // rather than a gRPC stream, and their bytes.
  uint64_t shared_memory_transfers = 0;
  uint64_t shared_memory_bytes = 0;
  // Of those, the ones that needed no RPC (the arena's request ring).
  uint64_t shared_memory_ring_transfers = 0;
  std::vector<PoolStats> pools;

  // Share of accesses that needed no RPC.
  double hit_rate() const {
    const uint64_t all = hits + local_transfers + misses;
    return all == 0 ? 0.0 : static_cast<double>(hits + local_transfers) / all;
  }
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CACHE_STATS_H_
