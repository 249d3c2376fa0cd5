#include "storage/policy/eviction_policy.h"

#include "absl/strings/ascii.h"
#include "storage/policy/adaptive_policy.h"
#include "storage/policy/clock_policy.h"
#include "storage/policy/lru_policy.h"

namespace tensorpager::policy {

std::unique_ptr<EvictionPolicy> MakePolicy(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kLru:
      return std::make_unique<LruPolicy>();
    case Algorithm::kClock:
      return std::make_unique<ClockPolicy>();
    case Algorithm::kAdaptive:
      return std::make_unique<AdaptivePolicy>();
  }
  return std::make_unique<LruPolicy>();
}

std::string_view AlgorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kLru:
      return "LRU";
    case Algorithm::kClock:
      return "CLOCK";
    case Algorithm::kAdaptive:
      return "ADAPTIVE";
  }
  return "LRU";
}

bool ParseAlgorithm(std::string_view text, Algorithm* out) {
  const std::string lower = absl::AsciiStrToLower(std::string(text));
  if (lower == "lru") {
    *out = Algorithm::kLru;
  } else if (lower == "clock") {
    *out = Algorithm::kClock;
  } else if (lower == "adaptive") {
    *out = Algorithm::kAdaptive;
  } else {
    return false;
  }
  return true;
}

}  // namespace tensorpager::policy
