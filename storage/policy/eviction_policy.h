// The eviction-policy interface shared by tensorpagerd and the client SDK.
// Policies track resident (RAM-tier or local-cache) entries only and do no
// I/O; the owner asks them for victims, moves the bytes, then reports back.
// Policies are not thread-safe: the owner serialises calls (the block store
// holds its mutex).
#ifndef TENSORPAGER_STORAGE_POLICY_EVICTION_POLICY_H_
#define TENSORPAGER_STORAGE_POLICY_EVICTION_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"

namespace tensorpager::policy {

// The number the owner gives an entry it tracks in a policy (never reused
// while tracked): a slot handle, not the block's identity, which is a
// storage::BlockKey (storage/base/block_key.h).
using Handle = uint64_t;

enum class Algorithm { kLru, kClock, kAdaptive };

// Why an entry leaves the policy. Evicted entries may be remembered as ghosts
// so a quick re-reference can be detected; erased ones are forgotten.
enum class RemoveReason { kEvicted, kErased };

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;

  virtual Algorithm algorithm() const = 0;
  virtual std::string_view name() const = 0;

  // A new resident entry. `priority` ranks region types (higher stays
  // longer); policies that ignore it must still accept it.
  virtual void Insert(Handle key, uint64_t bytes, int priority) = 0;
  // A hit on a resident entry. Unknown keys are ignored.
  virtual void Touch(Handle key) = 0;
  // The entry is no longer resident. Unknown keys are ignored.
  virtual void Remove(Handle key, RemoveReason reason) = 0;
  // Pinned entries are never chosen as victims. Unknown keys are ignored.
  virtual void SetPinned(Handle key, bool pinned) = 0;
  virtual bool Contains(Handle key) const = 0;

  // Appends to `out`, in eviction order, unpinned entries for which
  // `eligible` returns true until their sizes add up to at least `bytes` or
  // no candidate is left. Entries stay tracked (the caller removes those it
  // really evicts, with kEvicted). Returns the bytes chosen.
  virtual uint64_t SelectVictims(uint64_t bytes,
                                 absl::FunctionRef<bool(Handle)> eligible,
                                 std::vector<Handle>* out) = 0;

  virtual size_t size() const = 0;
  virtual uint64_t resident_bytes() const = 0;
  // Calls `visit` once for every tracked entry, pinned ones included, in no
  // promised order: what an owner switching policies carries over, in
  // time that follows the resident entries, not every entry it knows.
  virtual void ForEachResident(absl::FunctionRef<void(Handle)> visit) const = 0;

  // Optional hint: the byte budget the resident entries share (the RAM
  // tier's budget, the SDK cache's size). Policies that split the budget
  // into segments use it; without a hint they take the resident bytes seen
  // when victims are requested as the budget. 0 withdraws the hint.
  virtual void SetCapacity(uint64_t /*bytes*/) {}
};

std::unique_ptr<EvictionPolicy> MakePolicy(Algorithm algorithm);
std::string_view AlgorithmName(Algorithm algorithm);
// Accepts "lru", "clock", "adaptive" in any case.
bool ParseAlgorithm(std::string_view text, Algorithm* out);

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_EVICTION_POLICY_H_
