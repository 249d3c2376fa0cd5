// Design notes: see the comment block at the top of adaptive_policy.h.
// The window's steering (ghosts, climber, LRU referee) is in
// adaptive_window.cc.
#include "storage/policy/adaptive_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tensorpager::policy {
namespace {

// The window holds at least this many byte-weighted mean arrivals, but
// that floor never takes more than this share of the budget (objects that
// large leave room for few entries anyway).
constexpr double kWindowFloorArrivals = 4.0;
constexpr double kMaxWindowFloorShare = 0.25;
// Arrival-size statistics forget with this weight per arrival.
constexpr double kArrivalDecay = 1.0 / 4096;

}  // namespace

AdaptivePolicy::AdaptivePolicy() : AdaptivePolicy(Options{}) {}

AdaptivePolicy::AdaptivePolicy(const Options& options)
    : options_(options),
      window_share_(std::clamp(options.initial_window, options.min_window,
                               options.max_window)),
      climb_step_(options.climb_step) {}

EntryList& AdaptivePolicy::ListOf(ListId id) {
  switch (id) {
    case kWindowList:
      return window_;
    case kProbationList:
      return probation_;
    case kProtectedList:
      return protected_;
    case kPinnedList:
      return pinned_;
    case kGhostWindowList:
      return ghost_window_;
    default:
      return ghost_main_;
  }
}

NodeIndex AdaptivePolicy::FindMemo(Handle key) const {
  // The owner asks Contains and then Touches or Inserts the same key: the
  // second lookup reuses the first unless the node was recycled since (a
  // recycled node is unlinked everywhere, or holds another key).
  if (memo_key_ == key) {
    if (memo_index_ == kNoNode) return kNoNode;
    const EntryNode& n = table_[memo_index_];
    if (n.key == key &&
        (n.list != kUnlinked || shadow_.Contains(memo_index_))) {
      return memo_index_;
    }
  }
  memo_key_ = key;
  memo_index_ = table_.Find(key);
  return memo_index_;
}

bool AdaptivePolicy::Contains(Handle key) const {
  const NodeIndex i = FindMemo(key);
  return i != kNoNode && IsResident(table_[i].list);
}

bool AdaptivePolicy::InWindow(Handle key) const {
  const NodeIndex i = table_.Find(key);
  return i != kNoNode && table_[i].list == kWindowList;
}

size_t AdaptivePolicy::size() const {
  return window_.size() + probation_.size() + protected_.size() +
         pinned_.size();
}

uint64_t AdaptivePolicy::resident_bytes() const {
  return window_.bytes() + MainBytes() + pinned_.bytes();
}

void AdaptivePolicy::ForEachResident(
    absl::FunctionRef<void(Handle)> visit) const {
  // Ghosts and keys only the shadow LRU holds are not resident.
  for (const EntryList* list : {&window_, &probation_, &protected_, &pinned_}) {
    list->ForEachKey(visit);
  }
}

uint64_t AdaptivePolicy::Budget() const {
  if (capacity_hint_ != 0) return capacity_hint_;
  if (observed_budget_ != 0) return observed_budget_;
  // Still filling and never asked for victims: everything fits so far.
  return resident_bytes();
}

uint64_t AdaptivePolicy::WindowTarget() const {
  // Recency mode between probes: the window is the whole cache, i.e. the
  // cache is an LRU (priorities buying laps as in LruPolicy).
  if (recency_mode_ && !probing_) return Budget();
  const double budget = static_cast<double>(Budget());
  const double floor = std::min(
      arrival_bytes_ > 0
          ? kWindowFloorArrivals * arrival_bytes_squared_ / arrival_bytes_
          : 0,
      kMaxWindowFloorShare * budget);
  const double target = std::max(window_share_ * budget, floor);
  return static_cast<uint64_t>(std::min(target, options_.max_window * budget));
}

uint64_t AdaptivePolicy::ProtectedTarget() const {
  const uint64_t budget = Budget();
  const uint64_t window = WindowTarget();
  const uint64_t main = budget > window ? budget - window : 0;
  return static_cast<uint64_t>(options_.protected_share *
                               static_cast<double>(main));
}

int AdaptivePolicy::Score(const EntryNode& n) const {
  int frequency = sketch_.Frequency(n.key);
  if (options_.stale_gaps > 0 && n.gap > 0) {
    const uint64_t idle = static_cast<uint32_t>(clock_) - n.last_access;
    const uint64_t interval =
        std::max<uint64_t>({static_cast<uint64_t>(options_.stale_gaps * n.gap),
                            static_cast<uint64_t>(size()), uint64_t{1}});
    // Most victims are not idle that long: skip the division for them.
    if (idle >= interval) {
      const uint64_t halvings = idle / interval;
      frequency = halvings >= 8 ? 0 : frequency >> halvings;
    }
  }
  return frequency + n.priority;
}

void AdaptivePolicy::NoteAccess(EntryNode& n, bool has_history) {
  if (has_history) {
    const uint64_t gap = std::min<uint64_t>(
        uint64_t{static_cast<uint32_t>(clock_) - n.last_access} + 1,
        std::numeric_limits<uint32_t>::max());
    n.gap = static_cast<uint32_t>(n.gap == 0 ? gap : (n.gap + gap) / 2);
  }
  n.last_access = static_cast<uint32_t>(clock_);
}

void AdaptivePolicy::NoteArrivalSize(uint64_t bytes) {
  max_arrival_bytes_ = std::max(max_arrival_bytes_, bytes);
  const double b = static_cast<double>(bytes);
  arrival_bytes_ = arrival_bytes_ * (1 - kArrivalDecay) + b;
  arrival_bytes_squared_ = arrival_bytes_squared_ * (1 - kArrivalDecay) + b * b;
}

void AdaptivePolicy::MoveWindowOverflowToMain() {
  // While main has room (the cache is still filling, or main lost entries
  // to erases), window overflow moves there without a contest.
  const uint64_t budget = Budget();
  const uint64_t window_target = WindowTarget();
  const uint64_t main_target =
      budget > window_target ? budget - window_target : 0;
  while (window_.size() > 1 && window_.bytes() > window_target) {
    const NodeIndex oldest = window_.back();
    if (MainBytes() + table_[oldest].bytes > main_target) break;
    window_.Unlink(oldest);
    probation_.PushFront(oldest);
  }
}

void AdaptivePolicy::DemoteProtectedOverflow() {
  const uint64_t target = ProtectedTarget();
  while (protected_.size() > 1 && protected_.bytes() > target) {
    const NodeIndex i = protected_.back();
    protected_.Unlink(i);
    probation_.PushFront(i);
  }
}

void AdaptivePolicy::ForgetOldGhosts(EntryList& ghosts) {
  const uint64_t limit = static_cast<uint64_t>(options_.ghost_budgets *
                                               static_cast<double>(Budget()));
  while (!ghosts.empty() && ghosts.bytes() > limit) {
    const NodeIndex i = ghosts.back();
    ghosts.Unlink(i);
    ReleaseIfUnused(i);
  }
}

void AdaptivePolicy::Insert(Handle key, uint64_t bytes, int priority) {
  NodeIndex i = FindMemo(key);
  if (i != kNoNode && IsResident(table_[i].list)) {
    // Already resident: a size change plus a hit. The shadow's byte count
    // follows the new size.
    if (shadow_.Contains(i)) shadow_.Resize(i, bytes);
    ListOf(table_[i].list).SetBytes(i, bytes);
    table_[i].priority = ClampPriority(priority);
    Touch(key);
    return;
  }
  sketch_.Increment(key);
  // A node that is not resident is a ghost, or a key only the shadow LRU
  // still holds; either way its reuse gap is known.
  const bool has_history = i != kNoNode;
  bool lru_hit = false;
  if (has_history) {
    const ListId ghost = table_[i].list;
    if (IsGhost(ghost)) {
      OnGhostHit(ghost, bytes);
      ListOf(ghost).Unlink(i);
    }
    lru_hit = shadow_.Contains(i);
    // Relinked below with the new size.
    if (lru_hit) shadow_.Unlink(i);
  } else {
    i = table_.Add(key);
    memo_key_ = key;
    memo_index_ = i;
  }
  ClimbOnRequest(/*hit=*/false, lru_hit);
  EntryNode& n = table_[i];
  ++clock_;
  NoteAccess(n, has_history);
  NoteArrivalSize(bytes);
  n.bytes = bytes;
  n.priority = ClampPriority(priority);
  n.credits = n.priority;
  n.pinned = false;
  window_.PushFront(i);
  ShadowAccess(i);
  max_resident_entries_ = std::max(max_resident_entries_, size());
  sketch_.EnsureCapacity(
      std::max(max_resident_entries_, kMinStatisticsEntries));
  MoveWindowOverflowToMain();
}

void AdaptivePolicy::Touch(Handle key) {
  const NodeIndex i = FindMemo(key);
  if (i == kNoNode || !IsResident(table_[i].list)) return;
  sketch_.Increment(key);
  ClimbOnRequest(/*hit=*/true, /*lru_hit=*/shadow_.Contains(i));
  ShadowAccess(i);
  EntryNode& n = table_[i];
  NoteAccess(n, /*has_history=*/true);
  n.credits = n.priority;
  switch (n.list) {
    case kWindowList:
      window_.MoveToFront(i);
      break;
    case kProbationList:
      probation_.Unlink(i);
      protected_.PushFront(i);
      DemoteProtectedOverflow();
      break;
    case kProtectedList:
      protected_.MoveToFront(i);
      break;
    default:  // pinned
      break;
  }
}

void AdaptivePolicy::Remove(Handle key, RemoveReason reason) {
  const NodeIndex i = FindMemo(key);
  if (i == kNoNode) return;
  EntryNode& n = table_[i];
  const ListId from = n.list;
  if (!IsResident(from)) {
    // A ghost or a key only the shadow LRU holds: erasing forgets it.
    if (reason == RemoveReason::kErased) {
      if (IsGhost(from)) ListOf(from).Unlink(i);
      Forget(i);
    }
    return;
  }
  ListOf(from).Unlink(i);
  if (reason == RemoveReason::kErased || from == kPinnedList) {
    Forget(i);
    return;
  }
  EntryList& ghosts = from == kWindowList ? ghost_window_ : ghost_main_;
  ghosts.PushFront(i);
  ForgetOldGhosts(ghosts);
}

void AdaptivePolicy::SetPinned(Handle key, bool pinned) {
  const NodeIndex i = FindMemo(key);
  if (i == kNoNode || !IsResident(table_[i].list) ||
      table_[i].pinned == pinned) {
    return;
  }
  EntryNode& n = table_[i];
  ListOf(n.list).Unlink(i);
  n.pinned = pinned;
  if (pinned) {
    pinned_.PushFront(i);
  } else {
    // Back into circulation through the window: its sketch history decides
    // whether it earns a main-segment place again.
    n.credits = n.priority;
    window_.PushFront(i);
  }
}

void AdaptivePolicy::StartSelection() {
  main_victims_.clear();
  main_committed_ = 0;
  probation_cursor_ = probation_.back();
  protected_cursor_ = protected_.back();
  window_cursor_ = window_.back();
}

void AdaptivePolicy::AdmitDuringSelection(NodeIndex c) {
  window_.Unlink(c);
  probation_.PushFront(c);
  // A probation scan that already ran out must still see the newcomer.
  if (probation_cursor_ == kNoNode) probation_cursor_ = c;
}

NodeIndex AdaptivePolicy::NextWindowCandidate(
    absl::FunctionRef<bool(Handle)> eligible) {
  while (window_cursor_ != kNoNode) {
    const NodeIndex i = window_cursor_;
    window_cursor_ = window_.newer(i);
    if (eligible(table_[i].key)) return i;
  }
  return kNoNode;
}

NodeIndex AdaptivePolicy::PeekMainVictim(
    size_t k, absl::FunctionRef<bool(Handle)> eligible) {
  while (main_victims_.size() <= main_committed_ + k) {
    NodeIndex found = kNoNode;
    for (EntryList* list : {&probation_, &protected_}) {
      NodeIndex& cursor =
          list == &probation_ ? probation_cursor_ : protected_cursor_;
      while (cursor != kNoNode && found == kNoNode) {
        const NodeIndex i = cursor;
        cursor = list->newer(i);
        EntryNode& n = table_[i];
        if (!eligible(n.key)) continue;
        if (n.credits > 0) {
          // Priority buys another lap; the cursor meets it again later
          // (at once if it is already the newest).
          --n.credits;
          if (cursor == kNoNode) {
            cursor = i;
          } else {
            list->MoveToFront(i);
          }
          continue;
        }
        found = i;
      }
      if (found != kNoNode) break;
    }
    if (found == kNoNode) return kNoNode;
    main_victims_.push_back({found, kUnscored});
  }
  return main_victims_[main_committed_ + k].node;
}

int AdaptivePolicy::MainVictimScore(size_t k) {
  // Nothing a score depends on (the sketch, the arrival clock, the
  // resident count) changes during one selection, so each victim is
  // scored once however many candidates it faces.
  MainVictim& v = main_victims_[main_committed_ + k];
  if (v.score == kUnscored) v.score = Score(table_[v.node]);
  return v.score;
}

uint64_t AdaptivePolicy::SelectVictims(uint64_t bytes,
                                       absl::FunctionRef<bool(Handle)> eligible,
                                       std::vector<Handle>* out) {
  if (bytes == 0) return 0;
  if (capacity_hint_ == 0) observed_budget_ = resident_bytes();
  StartSelection();

  const uint64_t budget = Budget();
  const uint64_t resident = resident_bytes();
  // The room is for an entry that will arrive in the window. A caller
  // asking for exactly resident + arrival - budget bytes tells us the
  // arrival's size; one shedding load with nothing arriving is bounded by
  // the largest arrival seen.
  const uint64_t arrival = budget + bytes > resident
                               ? std::min(budget + bytes - resident,
                                          std::max(bytes, max_arrival_bytes_))
                               : 0;
  const uint64_t window_target = std::max(WindowTarget(), arrival);
  const uint64_t main_target =
      budget > window_target ? budget - window_target : 0;

  uint64_t chosen = 0;
  uint64_t window_chosen = 0;
  uint64_t main_chosen = 0;
  auto choose_main = [&](size_t count) {
    for (size_t k = 0; k < count; ++k) {
      const NodeIndex v = main_victims_[main_committed_ + k].node;
      out->push_back(table_[v].key);
      main_chosen += table_[v].bytes;
      chosen += table_[v].bytes;
    }
    main_committed_ += count;
  };
  auto choose_window = [&](NodeIndex c) {
    if (recency_mode_ && table_[c].credits > 0) {
      // In recency mode the window is nearly the whole cache and main too
      // small to hold the prioritised entries: priority buys laps in the
      // window instead, as in LRU. The cursor meets the entry again at the
      // front (at once if it is the newest).
      --table_[c].credits;
      if (window_cursor_ == kNoNode) {
        window_cursor_ = c;
      } else {
        window_.MoveToFront(c);
      }
      return;
    }
    out->push_back(table_[c].key);
    window_chosen += table_[c].bytes;
    chosen += table_[c].bytes;
  };

  while (chosen < bytes) {
    const bool window_over =
        window_.bytes() - window_chosen + arrival > window_target;
    const NodeIndex c = window_over ? NextWindowCandidate(eligible) : kNoNode;
    if (c != kNoNode) {
      const uint64_t candidate_bytes = table_[c].bytes;
      const uint64_t main_now = MainBytes() - main_chosen;
      if (candidate_bytes > main_target) {
        choose_window(c);
        continue;
      }
      if (main_now + candidate_bytes <= main_target) {
        AdmitDuringSelection(c);
        continue;
      }
      // Byte for byte, the candidate must be worth more than what it
      // displaces: its frequency must beat the byte-weighted mean
      // frequency of the victims, rounded up (for a single victim, simply
      // that victim's).
      const uint64_t room = main_now + candidate_bytes - main_target;
      uint64_t group_bytes = 0;
      double weighted_score = 0;
      size_t group = 0;
      while (group_bytes < room) {
        const NodeIndex v = PeekMainVictim(group, eligible);
        if (v == kNoNode) break;
        group_bytes += table_[v].bytes;
        weighted_score += static_cast<double>(MainVictimScore(group)) *
                          static_cast<double>(table_[v].bytes);
        ++group;
      }
      const double group_score =
          group_bytes == 0
              ? 0
              : std::ceil(weighted_score / static_cast<double>(group_bytes));
      if (group > 0 && group_bytes >= room && Score(table_[c]) > group_score) {
        choose_main(group);
        AdmitDuringSelection(c);
      } else {
        choose_window(c);
      }
      continue;
    }
    if (PeekMainVictim(0, eligible) != kNoNode) {
      choose_main(1);
      continue;
    }
    const NodeIndex last = NextWindowCandidate(eligible);
    if (last == kNoNode) break;
    choose_window(last);
  }
  return chosen;
}

}  // namespace tensorpager::policy
