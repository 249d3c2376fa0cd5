// Replays a trace through an EvictionPolicy the way tensorpagerd's RAM tier
// drives it: a hit is Touch; a miss asks SelectVictims for room, removes the
// victims with kEvicted and Inserts the object. Objects larger than the
// whole cache are counted as misses and not inserted.
#ifndef TENSORPAGER_STORAGE_POLICY_SIM_SIMULATOR_H_
#define TENSORPAGER_STORAGE_POLICY_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>

#include "storage/policy/eviction_policy.h"
#include "storage/policy/sim/trace.h"

namespace tensorpager::policy::sim {

struct SimOptions {
  // Tell the policy the cache size through SetCapacity, as the server does.
  bool capacity_hint = true;
};

struct SimResult {
  std::string policy;
  uint64_t capacity_bytes = 0;
  uint64_t requests = 0;
  uint64_t misses = 0;
  uint64_t requested_bytes = 0;
  uint64_t missed_bytes = 0;
  // Calls made on the EvictionPolicy interface (Contains included).
  uint64_t policy_calls = 0;
  double seconds = 0;

  double miss_ratio() const {
    return requests == 0 ? 0 : static_cast<double>(misses) / requests;
  }
  double byte_miss_ratio() const {
    return requested_bytes == 0
               ? 0
               : static_cast<double>(missed_bytes) / requested_bytes;
  }
};

// `policy` should be empty; it is left holding the final cache contents.
SimResult Replay(const Trace& trace, EvictionPolicy& policy,
                 uint64_t capacity_bytes, const SimOptions& options = {});

// Replays through a fresh MakePolicy(algorithm).
SimResult Simulate(const Trace& trace, Algorithm algorithm,
                   uint64_t capacity_bytes, const SimOptions& options = {});

}  // namespace tensorpager::policy::sim

#endif  // TENSORPAGER_STORAGE_POLICY_SIM_SIMULATOR_H_
