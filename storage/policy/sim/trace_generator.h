// Small synthetic traces with known character, for tp-sim and the policy
// tests: each one rewards a different kind of policy intelligence.
#ifndef TENSORPAGER_STORAGE_POLICY_SIM_TRACE_GENERATOR_H_
#define TENSORPAGER_STORAGE_POLICY_SIM_TRACE_GENERATOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/policy/sim/trace.h"

namespace tensorpager::policy::sim {

enum class Workload {
  // Independent requests, object popularity Zipf(alpha): frequency wins.
  kZipf,
  // A Zipf hot set interrupted by long scans of never-reused objects:
  // recency-only policies let each scan flush the hot set.
  kScanHot,
  // One cyclic pass after another over more objects than fit: LRU and
  // CLOCK miss every request, keeping any fixed subset is optimal.
  kLoop,
  // Multi-turn LLM conversations: every turn rereads the conversation's KV
  // blocks, a shared system prompt, an adapter and image features, then
  // appends new KV blocks and one-shot activations; sizes from 256 KiB to
  // 32 MiB.
  kKvConversation,
  // Sweeps objects 0..N-1 up, then N-1..0 down, over and over (a scan
  // that turns round, like a join or a layer-by-layer forward and backward
  // pass). Each turn rereads the most recent objects first, so LRU keeps
  // exactly what is reused soonest: a policy that guards a fixed subset
  // against newcomers does worse than plain recency here.
  kReversingLoop,
};

struct GeneratorOptions {
  Workload workload = Workload::kZipf;
  uint64_t requests = 200'000;
  // Distinct objects of kZipf, kLoop and kReversingLoop, hot-set size of
  // kScanHot; kKvConversation derives its objects from the conversations.
  uint64_t objects = 10'000;
  double zipf_alpha = 0.9;
  // Give kZipf/kScanHot/kLoop/kReversingLoop objects mixed sizes (4 KiB to
  // 4 MiB, fixed per object) instead of 1 byte each.
  bool mixed_sizes = false;
  // kLoop and kReversingLoop: the share of requests replaced by a request
  // for a uniformly chosen object of the loop, in [0, 1].
  double noise = 0;
  uint64_t seed = 1;
};

absl::string_view WorkloadName(Workload workload);
// Accepts the names WorkloadName returns: zipf, scan_hot, loop,
// kv_conversation, reversing_loop.
bool ParseWorkload(absl::string_view text, Workload* out);

// Deterministic for given options on every platform.
absl::StatusOr<Trace> GenerateTrace(const GeneratorOptions& options);

}  // namespace tensorpager::policy::sim

#endif  // TENSORPAGER_STORAGE_POLICY_SIM_TRACE_GENERATOR_H_
