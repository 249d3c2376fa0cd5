// Hot paths are allocation-free in steady state: once a policy has seen
// its working set, Touch, Insert, Remove and SelectVictims allocate
// nothing. This binary replaces the global operator new to count.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "storage/policy/eviction_policy.h"

namespace {
// Test-only instrumentation: the replaced operator new below must reach
// it without an object, so it is a namespace-scope atomic.
std::atomic<long> g_allocations{0};
}  // namespace

// GCC cannot see that these replacements pair malloc with free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace tensorpager::policy {
namespace {

class PolicyAllocationTest : public testing::TestWithParam<Algorithm> {};

TEST_P(PolicyAllocationTest, SteadyStateAllocatesNothing) {
  std::unique_ptr<EvictionPolicy> policy = MakePolicy(GetParam());
  constexpr uint64_t kCapacity = 2000;
  policy->SetCapacity(kCapacity);
  std::vector<Handle> victims;
  victims.reserve(1024);
  std::mt19937_64 rng(3);
  // Skewed keys over a universe 10x the cache, mixed sizes and priorities.
  auto step = [&] {
    const uint64_t r = rng();
    const Handle key = (r % 4 == 0) ? r % 20000 : r % 500;
    if (policy->Contains(key)) {
      policy->Touch(key);
      if (r % 97 == 0) policy->SetPinned(key, true);
      if (r % 89 == 0) policy->SetPinned(key, false);
      return;
    }
    const uint64_t bytes = 1 + (r >> 32) % 8;
    if (policy->resident_bytes() + bytes > kCapacity) {
      victims.clear();
      policy->SelectVictims(
          policy->resident_bytes() + bytes - kCapacity,
          [](Handle) { return true; }, &victims);
      for (Handle v : victims) policy->Remove(v, RemoveReason::kEvicted);
    }
    policy->Insert(key, bytes, static_cast<int>((r >> 40) % 3));
  };
  for (int i = 0; i < 400000; ++i) step();
  const long before = g_allocations.load();
  for (int i = 0; i < 200000; ++i) step();
  EXPECT_EQ(g_allocations.load() - before, 0);
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, PolicyAllocationTest,
                         testing::Values(Algorithm::kLru, Algorithm::kClock,
                                         Algorithm::kAdaptive),
                         [](const testing::TestParamInfo<Algorithm>& info) {
                           return std::string(AlgorithmName(info.param));
                         });

}  // namespace
}  // namespace tensorpager::policy
