#include "storage/policy/sim/simulator.h"

#include <chrono>
#include <vector>

namespace tensorpager::policy::sim {

SimResult Replay(const Trace& trace, EvictionPolicy& policy,
                 uint64_t capacity_bytes, const SimOptions& options) {
  SimResult r;
  r.policy = std::string(policy.name());
  r.capacity_bytes = capacity_bytes;
  if (options.capacity_hint) policy.SetCapacity(capacity_bytes);
  std::vector<Handle> victims;
  const auto any = [](Handle) { return true; };
  uint64_t calls = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const Request& q : trace.requests) {
    r.requested_bytes += q.bytes;
    ++calls;
    if (policy.Contains(q.key)) {
      ++calls;
      policy.Touch(q.key);
      continue;
    }
    ++r.misses;
    r.missed_bytes += q.bytes;
    if (q.bytes > capacity_bytes) continue;
    const uint64_t resident = policy.resident_bytes();
    if (resident + q.bytes > capacity_bytes) {
      victims.clear();
      ++calls;
      const uint64_t need = resident + q.bytes - capacity_bytes;
      if (policy.SelectVictims(need, any, &victims) < need) continue;
      for (Handle v : victims) policy.Remove(v, RemoveReason::kEvicted);
      calls += victims.size();
    }
    ++calls;
    policy.Insert(q.key, q.bytes, /*priority=*/0);
  }
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  r.requests = trace.requests.size();
  r.policy_calls = calls;
  return r;
}

SimResult Simulate(const Trace& trace, Algorithm algorithm,
                   uint64_t capacity_bytes, const SimOptions& options) {
  std::unique_ptr<EvictionPolicy> policy = MakePolicy(algorithm);
  return Replay(trace, *policy, capacity_bytes, options);
}

}  // namespace tensorpager::policy::sim
