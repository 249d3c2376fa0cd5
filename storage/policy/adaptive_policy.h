// ADAPTIVE eviction; the design notes are at the top of adaptive_policy.cc.
#ifndef TENSORPAGER_STORAGE_POLICY_ADAPTIVE_POLICY_H_
#define TENSORPAGER_STORAGE_POLICY_ADAPTIVE_POLICY_H_

#include <cstdint>
#include <vector>

#include "storage/policy/entry_list.h"
#include "storage/policy/entry_table.h"
#include "storage/policy/eviction_policy.h"
#include "storage/policy/frequency_sketch.h"

namespace tensorpager::policy {

class AdaptivePolicy final : public EvictionPolicy {
 public:
  struct Options {
    // Starting share of the budget for the admission window.
    double initial_window = 0.01;
    // Bounds of the window share the adaptation may choose.
    double min_window = 0.01;
    double max_window = 0.99;
    // Share of the main segment reserved for entries hit there.
    double protected_share = 0.80;
    // Each ghost list remembers evicted entries worth this many budgets.
    double ghost_budgets = 1.0;
    // Hill-climbing sample, in multiples of the resident entry count.
    double climb_sample = 10.0;
    double climb_step = 0.0625;
    double climb_decay = 0.98;
    double climb_restart = 0.05;
    bool ghost_adapt = true;
    bool climb_adapt = false;
    bool victim_sum = false;
    bool random_admit = false;
    size_t sketch_min = 64;
    int margin = 0;
    int floor_mode = 1;
    double floor_k = 2;
    double sketch_scale = 1.0;
  };

  AdaptivePolicy();
  explicit AdaptivePolicy(const Options& options);

  Algorithm algorithm() const override { return Algorithm::kAdaptive; }
  std::string_view name() const override { return "ADAPTIVE"; }
  void Insert(Key key, uint64_t bytes, int priority) override;
  void Touch(Key key) override;
  void Remove(Key key, RemoveReason reason) override;
  void SetPinned(Key key, bool pinned) override;
  bool Contains(Key key) const override;
  uint64_t SelectVictims(uint64_t bytes, absl::FunctionRef<bool(Key)> eligible,
                         std::vector<Key>* out) override;
  size_t size() const override;
  uint64_t resident_bytes() const override;
  void SetCapacity(uint64_t bytes) override { capacity_hint_ = bytes; }

  // The admission window's current share of the budget (for tests and
  // tp-sim's diagnostics).
  double window_share() const { return window_share_; }
  // Evicted keys remembered as ghosts.
  size_t ghost_count() const {
    return ghost_window_.size() + ghost_main_.size();
  }

 private:
  enum : ListId {
    kWindowList = 1,
    kProbationList,
    kProtectedList,
    kPinnedList,
    kGhostWindowList,
    kGhostMainList,
  };
  // EntryNode::flags bit: chosen by the SelectVictims call in progress.
  static constexpr uint8_t kChosen = 1;

  EntryList& ListOf(ListId id);
  bool IsGhost(ListId id) const {
    return id == kGhostWindowList || id == kGhostMainList;
  }
  uint64_t Budget() const;
  uint64_t WindowTarget() const;
  uint64_t ProtectedTarget() const;
  void OnGhostHit(ListId ghost, uint64_t bytes);
  void Climb(bool hit);
  void DemoteProtectedOverflow();
  void ForgetOldGhosts(EntryList& ghosts);
  int Score(const EntryNode& n) const;

  // SelectVictims helpers.
  NodeIndex NextMainVictim(absl::FunctionRef<bool(Key)> eligible);
  NodeIndex NextWindowCandidate(absl::FunctionRef<bool(Key)> eligible);
  void Choose(NodeIndex i, std::vector<Key>* out);

  Options options_;
  EntryTable table_;
  EntryList window_{&table_, kWindowList};
  EntryList probation_{&table_, kProbationList};
  EntryList protected_{&table_, kProtectedList};
  EntryList pinned_{&table_, kPinnedList};
  EntryList ghost_window_{&table_, kGhostWindowList};
  EntryList ghost_main_{&table_, kGhostMainList};
  FrequencySketch sketch_;

  uint64_t capacity_hint_ = 0;
  // Resident bytes seen by the last SelectVictims: the budget when no hint.
  uint64_t observed_budget_ = 0;
  size_t max_resident_entries_ = 0;
  double window_share_;
  // Largest recent arrival, decaying by e every `size()` arrivals.
  double recent_max_bytes_ = 0;
  double sum_bytes_ = 0;
  double sum_sq_bytes_ = 0;

  // Hill-climbing state.
  uint64_t sample_hits_ = 0;
  uint64_t sample_misses_ = 0;
  double previous_hit_rate_ = 0;
  double climb_step_;

  uint64_t random_state_ = 0x2545f4914f6cdd1dull;

  // Scratch for SelectVictims, reused so steady state allocates nothing.
  std::vector<NodeIndex> chosen_;
  std::vector<NodeIndex> group_;
  size_t pending_head_ = 0;
  std::vector<NodeIndex> pending_;
  NodeIndex probation_cursor_ = kNoNode;
  NodeIndex protected_cursor_ = kNoNode;
  NodeIndex window_cursor_ = kNoNode;
  bool probation_done_ = false;
  bool protected_done_ = false;
  bool window_done_ = false;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_ADAPTIVE_POLICY_H_
