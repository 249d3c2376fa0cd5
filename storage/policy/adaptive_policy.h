// ADAPTIVE: a size-aware W-TinyLFU whose admission window is steered by
// ghost hits (as ARC steers its recency/frequency split) and by hit-rate
// hill climbing (as Caffeine does), with frequency estimates that decay
// both globally and per entry, refereed by a shadow LRU that sends it back
// to recency whenever plain LRU would have missed less.
//
// Layout. Resident entries live in one of three LRU lists: a small
// admission *window*, and a *main* segment split SLRU-style into
// *probation* and *protected* (80% of main). New entries enter the window.
// An entry hit in probation moves to protected; protected overflow drops
// back to probation. Pinned entries sit on a list of their own that victim
// selection never walks.
//
// Admission (TinyLFU, Einziger et al. 2017). When the window outgrows its
// share, its oldest entry becomes a candidate for main. It competes with
// the oldest probation entries: as many as must leave to make room for it
// (size-aware, after Einziger et al. 2022, "Lightweight robust size aware
// cache management"). The candidate enters main only if its estimated
// frequency beats the byte-weighted mean frequency of those entries,
// rounded up: byte for byte it must be worth more than what it displaces,
// which keeps both the object and the byte miss ratio in view. Otherwise
// the candidate is the victim. Ties keep the incumbents, which is what
// makes a scan or a loop larger than the cache unable to flush main.
// Frequencies come from a count-min sketch with a doorkeeper and periodic
// halving (frequency_sketch.h); the sketch lengthens its history when most keys
// it sees are new, so loops much larger than the cache are recognised too.
// Region priority adds to the estimate and gives extra laps in main.
//
// Per-entry decay. Time is counted in arrivals (misses). A victim idle for
// longer than both twice its own typical reuse gap and one cache's worth
// of arrivals has its estimate halved per such interval: popular entries
// whose pattern has stopped (a finished conversation's KV blocks) stop
// blocking newcomers long before the sketch's global halving would let
// them, while a loop's entries (never idle longer than their gap) and a hot
// set during a scan shorter than the cache keep their full weight. The gap
// survives eviction in the entry's ghost.
//
// Window size. Evicted entries are remembered as ghosts (keys and sizes
// only, each ghost list bounded by one budget of bytes), in two lists by
// where they were evicted from. A re-request of a key evicted from the
// window says a larger window would have hit, one evicted from main says a
// larger main would have: the window grows or shrinks by the re-requested
// bytes, scaled by the ratio of the two ghost lists (ARC's rule, Megiddo &
// Modha 2003). This reacts within a few misses, which is what recency-heavy
// traces (one-hit objects reused once, like corda) need. On top, every
// 10 x resident-entries requests a hill climber compares hit rates and
// nudges the window the way that helped (Caffeine's climber), which
// rescues phases where neither ghost list sees re-requests. It scores a
// window by the hits it earned beyond the shadow LRU's (below) on the same
// requests, so a change of phase in the workload, which moves both, is not
// mistaken for the window's doing. The window never drops below 4x the
// byte-weighted mean arrival size (up to a quarter of the budget), so a
// large arrival is absorbed by the window rather than forcing main
// evictions that candidates would then refill uncontested.
//
// The LRU referee. A frequency filter can lose to plain recency: on a loop
// that sweeps up and then back down, each turn re-requests the newest keys
// first, the sketch favours them by one count over main's, and the ghosts
// see only window re-requests, so main half-switches to them at every turn
// and ends up holding neither the old set nor the new one (0.1-0.2 more
// misses than LRU). So ADAPTIVE keeps a shadow LRU (shadow_lru.h): the keys
// LRU would hold in the same budget, linked through the table's nodes, so
// it costs no extra lookup. A CUSUM of ADAPTIVE's misses less the shadow's
// that reaches 32 + resident-entries/128 switches to recency mode (its floor
// lets a lead bank four such thresholds, not more, so a short losing streak
// inside a long win does not undo it and a new loss is still caught). In
// recency mode the window is the whole budget, so the cache is an LRU
// (priorities buying laps in it as in LruPolicy); ghosts leave the window
// alone, and the climber only probes a window max_window minus one step
// for a sample, waiting 1, 2, 4 ... 64 samples after each probe that loses.
// A probe that beats the shadow LRU by 4 hits in its sample (a loop LRU
// cannot serve) returns to frequency mode. At the switch, the resident
// keys the shadow LRU holds move to the window in its order and main's
// other entries go first, so the cache is at once the LRU over what it
// holds. The switch costs at most one cache of misses, once (the keys LRU
// holds that main had turned away; on the first turn of a reversing loop,
// all of them). A larger loss is never sustained.
//
// Victim selection is SelectVictims(bytes): it runs the contests above
// until `bytes` are chosen, and when the window is within its share it
// takes main's oldest entries (probation, then protected), then the
// window's. Entries stay tracked until the owner removes them; admitted
// candidates move to probation during the call. Every operation is O(1)
// amortised; the sketch and the node pool allocate only when the cache
// reaches a new size.
#ifndef TENSORPAGER_STORAGE_POLICY_ADAPTIVE_POLICY_H_
#define TENSORPAGER_STORAGE_POLICY_ADAPTIVE_POLICY_H_

#include <cstdint>
#include <vector>

#include "storage/policy/entry_list.h"
#include "storage/policy/entry_table.h"
#include "storage/policy/eviction_policy.h"
#include "storage/policy/frequency_sketch.h"
#include "storage/policy/shadow_lru.h"

namespace tensorpager::policy {

class AdaptivePolicy final : public EvictionPolicy {
 public:
  struct Options {
    // Window share of the budget at start, and the range adaptation keeps
    // it in.
    double initial_window = 0.01;
    double min_window = 0.01;
    double max_window = 0.99;
    // Share of main reserved for entries hit while in main.
    double protected_share = 0.80;
    // Bytes each ghost list remembers, in budgets.
    double ghost_budgets = 1.0;
    // A victim idle for more than this many of its own reuse gaps (and
    // more than one cache's worth of arrivals) has its frequency halved per
    // such interval; 0 disables the decay.
    double stale_gaps = 2.0;
    // Hill climbing: sample length in resident entries, first step as a
    // share of the budget, step decay per sample, and the hit-rate change
    // that restarts the search with a full step.
    bool hill_climbing = true;
    double climb_sample = 10.0;
    double climb_step = 0.0625;
    double climb_decay = 0.98;
    double climb_restart = 0.05;
    // The LRU referee: misses LRU would have avoided, net of hits only
    // ADAPTIVE made, that send the window to max_window at once: this
    // many, plus one per `referee_entries` resident entries. 0 disables the
    // referee (the climber then compares raw hit rates).
    double referee_misses = 32;
    double referee_entries = 128;
    // How many of those thresholds a lead over LRU may bank.
    double referee_credit = 4;
  };

  AdaptivePolicy();
  explicit AdaptivePolicy(const Options& options);

  Algorithm algorithm() const override { return Algorithm::kAdaptive; }
  std::string_view name() const override { return "ADAPTIVE"; }
  void Insert(Handle key, uint64_t bytes, int priority) override;
  void Touch(Handle key) override;
  void Remove(Handle key, RemoveReason reason) override;
  void SetPinned(Handle key, bool pinned) override;
  bool Contains(Handle key) const override;
  uint64_t SelectVictims(uint64_t bytes,
                         absl::FunctionRef<bool(Handle)> eligible,
                         std::vector<Handle>* out) override;
  size_t size() const override;
  uint64_t resident_bytes() const override;
  void ForEachResident(absl::FunctionRef<void(Handle)> visit) const override;
  void SetCapacity(uint64_t bytes) override { capacity_hint_ = bytes; }

  // The window's current share of the budget.
  double window_share() const { return window_share_; }
  // Whether the LRU referee has sent the policy to recency mode.
  bool recency_mode() const { return recency_mode_; }
  // Evicted keys remembered as ghosts.
  size_t ghost_count() const {
    return ghost_window_.size() + ghost_main_.size();
  }
  // Whether `key` is resident in the admission window (tests use it to
  // tell admission from eviction).
  bool InWindow(Handle key) const;

 private:
  // Sketch sizing and the hill climber's sample never go below this many
  // entries, so a nearly empty cache still gets sensible statistics.
  static constexpr size_t kMinStatisticsEntries = 64;

  enum : ListId {
    kWindowList = 1,
    kProbationList,
    kProtectedList,
    kPinnedList,
    kGhostWindowList,
    kGhostMainList,
  };

  EntryList& ListOf(ListId id);
  // table_.Find with a one-entry memo.
  NodeIndex FindMemo(Handle key) const;
  static bool IsGhost(ListId id) {
    return id == kGhostWindowList || id == kGhostMainList;
  }
  static bool IsResident(ListId id) {
    return id >= kWindowList && id <= kPinnedList;
  }
  uint64_t Budget() const;
  uint64_t WindowTarget() const;
  uint64_t ProtectedTarget() const;
  uint64_t MainBytes() const { return probation_.bytes() + protected_.bytes(); }
  int Score(const EntryNode& n) const;
  void NoteAccess(EntryNode& n, bool has_history);
  void NoteArrivalSize(uint64_t bytes);
  void OnGhostHit(ListId ghost, uint64_t bytes);
  // Records a request for the referee and the hill climber; `lru_hit` says
  // whether the shadow LRU held the key.
  void ClimbOnRequest(bool hit, bool lru_hit);
  // Returns whether the referee just fell back to recency.
  bool RefereeOnRequest(bool hit, bool lru_hit);
  void FallBackToRecency();
  // Orders the window by the shadow LRU's recency, taking in the main
  // entries the shadow holds (a fallback's first step).
  void OrderResidentByRecency();
  // Recency mode's replacement for a climber step; `net` is the sample's
  // hits less the shadow LRU's.
  void ProbeOnSample(double net);
  // Makes `i` the shadow LRU's most recent key and trims it to the budget.
  void ShadowAccess(NodeIndex i);
  // Releases `i`'s node once no list (resident, ghost or shadow) holds it.
  void ReleaseIfUnused(NodeIndex i);
  void Forget(NodeIndex i);
  void MoveWindowOverflowToMain();
  void DemoteProtectedOverflow();
  void ForgetOldGhosts(EntryList& ghosts);

  // SelectVictims helpers; state lives in the scratch members below.
  void StartSelection();
  NodeIndex NextWindowCandidate(absl::FunctionRef<bool(Handle)> eligible);
  void AdmitDuringSelection(NodeIndex c);
  // The k-th main victim not yet committed, scanning on demand.
  NodeIndex PeekMainVictim(size_t k, absl::FunctionRef<bool(Handle)> eligible);
  // Score() of that victim (which PeekMainVictim must have found).
  int MainVictimScore(size_t k);

  Options options_;
  EntryTable table_;
  EntryList window_{&table_, kWindowList};
  EntryList probation_{&table_, kProbationList};
  EntryList protected_{&table_, kProtectedList};
  EntryList pinned_{&table_, kPinnedList};
  EntryList ghost_window_{&table_, kGhostWindowList};
  EntryList ghost_main_{&table_, kGhostMainList};
  ShadowLru shadow_{&table_};
  FrequencySketch sketch_;

  // Counts arrivals (inserts of non-resident keys): the time base of reuse
  // gaps and idle times.
  uint64_t clock_ = 0;
  uint64_t capacity_hint_ = 0;
  // Without a hint: the resident bytes seen by the last SelectVictims.
  uint64_t observed_budget_ = 0;
  size_t max_resident_entries_ = 0;
  double window_share_;
  // Decaying sums of arrival sizes and their squares: their ratio is the
  // byte-weighted mean arrival size.
  double arrival_bytes_ = 0;
  double arrival_bytes_squared_ = 0;
  uint64_t max_arrival_bytes_ = 0;

  uint64_t sample_hits_ = 0;
  uint64_t sample_misses_ = 0;
  uint64_t sample_lru_hits_ = 0;
  // The climber's measure of the last sample: hit rate, less the shadow
  // LRU's when the referee is on.
  double previous_score_ = 0;
  double climb_step_;
  // The referee's running count: +1 per request only the shadow LRU hit,
  // -1 per request only ADAPTIVE hit, floored at minus its threshold.
  double regret_ = 0;
  // Set by a fallback to recency; cleared by a probe of a smaller window
  // that beats LRU. While set, ghost hits leave the window alone.
  bool recency_mode_ = false;
  // Whether the sample being measured runs with a probe's smaller window.
  bool probing_ = false;
  // Samples to wait at max_window before the next probe, and waited so far.
  uint32_t probe_wait_ = 1;
  uint32_t idle_samples_ = 0;

  // FindMemo's last key and its node (kNoNode: not in the table).
  mutable Handle memo_key_ = 0;
  mutable NodeIndex memo_index_ = kNoNode;

  // SelectVictims scratch, reused so steady state allocates nothing.
  // Main victims found so far, each with its score (kUnscored until a
  // contest needs it).
  static constexpr int kUnscored = -1;
  struct MainVictim {
    NodeIndex node;
    int score;
  };
  std::vector<MainVictim> main_victims_;
  size_t main_committed_ = 0;
  NodeIndex probation_cursor_ = kNoNode;
  NodeIndex protected_cursor_ = kNoNode;
  NodeIndex window_cursor_ = kNoNode;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_ADAPTIVE_POLICY_H_
