#include "storage/policy/sim/trace_generator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::policy::sim {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
// Bounds the Zipf sampler's table (8 bytes per object).
constexpr uint64_t kMaxObjects = uint64_t{1} << 26;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// SplitMix64 stream; std:: distributions are avoided because their output
// differs between standard libraries.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ull;
    return SplitMix64(state_);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>(Uniform() * static_cast<double>(n));
  }
  // Uniform in [lo, hi].
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }

 private:
  uint64_t state_;
};

// Ranks 0..n-1 with P(rank k) proportional to 1 / (k + 1)^alpha.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double alpha) : cdf_(n) {
    double sum = 0;
    for (uint64_t k = 0; k < n; ++k) {
      sum += 1.0 / std::pow(static_cast<double>(k + 1), alpha);
      cdf_[k] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  uint64_t Sample(Rng& rng) const {
    const double u = rng.Uniform();
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return std::min<uint64_t>(it - cdf_.begin(), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

// 4 KiB * 2^k with P(k) = 2^-(k+1), k capped at 10: every size class holds
// about the same share of the bytes, so byte and object miss ratios differ.
uint64_t MixedSize(uint64_t key, uint64_t seed) {
  const uint64_t h = SplitMix64(key ^ SplitMix64(seed));
  const int k = std::min(std::countr_zero(h | (1ull << 63)), 10);
  return (4 * kKiB) << k;
}

class TraceBuilder {
 public:
  TraceBuilder(const GeneratorOptions& options, Trace* trace)
      : options_(options), trace_(trace) {
    trace_->requests.reserve(options.requests);
  }
  bool full() const { return trace_->requests.size() >= options_.requests; }
  void Add(uint64_t key, uint64_t bytes) {
    if (!full()) trace_->requests.push_back(Request{key, bytes});
  }
  // Objects of the simple workloads: 1 byte or a mixed size.
  void AddObject(uint64_t key) {
    Add(key, options_.mixed_sizes ? MixedSize(key, options_.seed) : 1);
  }

 private:
  const GeneratorOptions& options_;
  Trace* trace_;
};

void GenerateZipf(const GeneratorOptions& o, Rng& rng, TraceBuilder& out) {
  const ZipfSampler zipf(o.objects, o.zipf_alpha);
  while (!out.full()) out.AddObject(zipf.Sample(rng));
}

void GenerateScanHot(const GeneratorOptions& o, Rng& rng, TraceBuilder& out) {
  const ZipfSampler zipf(o.objects, o.zipf_alpha);
  // Scanned objects never repeat; their ids start far above the hot set.
  uint64_t next_scan_key = uint64_t{1} << 40;
  while (!out.full()) {
    for (uint64_t i = 0; i < 3 * o.objects && !out.full(); ++i) {
      out.AddObject(zipf.Sample(rng));
    }
    for (uint64_t i = 0; i < o.objects && !out.full(); ++i) {
      out.AddObject(next_scan_key++);
    }
  }
}

// Replaces a `noise` share of the requests by uniformly chosen objects.
void AddLoopObject(const GeneratorOptions& o, Rng& rng, uint64_t key,
                   TraceBuilder& out) {
  if (o.noise > 0 && rng.Uniform() < o.noise) key = rng.Below(o.objects);
  out.AddObject(key);
}

void GenerateLoop(const GeneratorOptions& o, Rng& rng, TraceBuilder& out) {
  for (uint64_t i = 0; !out.full(); ++i) {
    AddLoopObject(o, rng, i % o.objects, out);
  }
}

void GenerateReversingLoop(const GeneratorOptions& o, Rng& rng,
                           TraceBuilder& out) {
  while (!out.full()) {
    for (uint64_t i = 0; i < o.objects && !out.full(); ++i) {
      AddLoopObject(o, rng, i, out);
    }
    for (uint64_t i = o.objects; i > 0 && !out.full(); --i) {
      AddLoopObject(o, rng, i - 1, out);
    }
  }
}

void GenerateKvConversation(Rng& rng, TraceBuilder& out) {
  constexpr uint64_t kPageBytes = 512 * kKiB;
  constexpr int kAdapters = 4;
  constexpr uint64_t kAdapterBytes = 32 * kMiB;
  constexpr int kSystemPrompts = 8;
  constexpr int kActiveConversations = 48;
  uint64_t next_key = 1;

  std::vector<uint64_t> adapters;
  for (int i = 0; i < kAdapters; ++i) adapters.push_back(next_key++);
  std::vector<std::vector<uint64_t>> prompts(kSystemPrompts);
  for (auto& pages : prompts) {
    const uint64_t n = rng.Between(4, 32);
    for (uint64_t i = 0; i < n; ++i) pages.push_back(next_key++);
  }
  const ZipfSampler adapter_pick(kAdapters, 1.0);
  const ZipfSampler prompt_pick(kSystemPrompts, 1.0);

  struct Block {
    uint64_t key;
    uint64_t bytes;
  };
  struct Conversation {
    uint64_t adapter;
    int prompt;
    int turns_left;
    std::vector<Block> history;  // KV pages and image features
  };
  auto start = [&]() {
    Conversation c;
    c.adapter = adapters[adapter_pick.Sample(rng)];
    c.prompt = static_cast<int>(prompt_pick.Sample(rng));
    // Geometric number of turns, mean about 5, at most 16.
    c.turns_left = 1;
    while (c.turns_left < 16 && rng.Uniform() < 0.8) ++c.turns_left;
    return c;
  };
  std::vector<Conversation> active;
  for (int i = 0; i < kActiveConversations; ++i) active.push_back(start());

  while (!out.full()) {
    Conversation& c = active[rng.Below(active.size())];
    out.Add(c.adapter, kAdapterBytes);
    for (uint64_t page : prompts[c.prompt]) out.Add(page, kPageBytes);
    for (const Block& b : c.history) out.Add(b.key, b.bytes);
    if (rng.Uniform() < 0.2) {
      const Block image{next_key++, rng.Between(2, 8) * kMiB};
      c.history.push_back(image);
      out.Add(image.key, image.bytes);
    }
    const uint64_t new_pages = rng.Between(1, 4);
    for (uint64_t i = 0; i < new_pages; ++i) {
      const Block page{next_key++, kPageBytes};
      c.history.push_back(page);
      out.Add(page.key, page.bytes);
    }
    // Activations: written and read once within the turn, never again.
    const uint64_t activations = rng.Between(1, 2);
    for (uint64_t i = 0; i < activations; ++i) {
      out.Add(next_key++, rng.Between(1, 4) * kMiB);
    }
    if (--c.turns_left == 0) c = start();
  }
}

}  // namespace

absl::string_view WorkloadName(Workload workload) {
  switch (workload) {
    case Workload::kZipf:
      return "zipf";
    case Workload::kScanHot:
      return "scan_hot";
    case Workload::kLoop:
      return "loop";
    case Workload::kKvConversation:
      return "kv_conversation";
    case Workload::kReversingLoop:
      return "reversing_loop";
  }
  return "zipf";
}

bool ParseWorkload(absl::string_view text, Workload* out) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (Workload w : {Workload::kZipf, Workload::kScanHot, Workload::kLoop,
                     Workload::kKvConversation, Workload::kReversingLoop}) {
    if (lower == WorkloadName(w)) {
      *out = w;
      return true;
    }
  }
  return false;
}

absl::StatusOr<Trace> GenerateTrace(const GeneratorOptions& options) {
  if (options.requests == 0) {
    return absl::InvalidArgumentError("a generated trace needs requests > 0");
  }
  if (options.objects == 0 || options.objects > kMaxObjects) {
    return absl::InvalidArgumentError(absl::StrCat(
        "objects ", options.objects, " is outside [1, ", kMaxObjects, "]"));
  }
  if (!(options.zipf_alpha >= 0) || options.zipf_alpha > 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("zipf_alpha ", options.zipf_alpha, " is outside [0, 10]"));
  }
  if (!(options.noise >= 0) || options.noise > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise ", options.noise, " is outside [0, 1]"));
  }
  Trace trace;
  trace.name = std::string(WorkloadName(options.workload));
  Rng rng(options.seed);
  TraceBuilder out(options, &trace);
  switch (options.workload) {
    case Workload::kZipf:
      GenerateZipf(options, rng, out);
      break;
    case Workload::kScanHot:
      GenerateScanHot(options, rng, out);
      break;
    case Workload::kLoop:
      GenerateLoop(options, rng, out);
      break;
    case Workload::kReversingLoop:
      GenerateReversingLoop(options, rng, out);
      break;
    case Workload::kKvConversation:
      GenerateKvConversation(rng, out);
      break;
  }
  return trace;
}

}  // namespace tensorpager::policy::sim
