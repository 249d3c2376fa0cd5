// ADAPTIVE: size-aware W-TinyLFU with a ghost-steered admission window.
// (Design notes to be written once the experiments settle.)
#include "storage/policy/adaptive_policy.h"

#include <algorithm>
#include <cstdlib>

namespace tensorpager::policy {

AdaptivePolicy::AdaptivePolicy() : AdaptivePolicy(Options{}) {}

AdaptivePolicy::AdaptivePolicy(const Options& options)
    : options_(options),
      window_share_(options.initial_window),
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

bool AdaptivePolicy::Contains(Key key) const {
  const NodeIndex i = table_.Find(key);
  return i != kNoNode && !IsGhost(table_[i].list);
}

size_t AdaptivePolicy::size() const {
  return window_.size() + probation_.size() + protected_.size() +
         pinned_.size();
}

uint64_t AdaptivePolicy::resident_bytes() const {
  return window_.bytes() + probation_.bytes() + protected_.bytes() +
         pinned_.bytes();
}

uint64_t AdaptivePolicy::Budget() const {
  if (capacity_hint_ != 0) return capacity_hint_;
  if (observed_budget_ != 0) return observed_budget_;
  return resident_bytes();
}

uint64_t AdaptivePolicy::WindowTarget() const {
  const double budget = static_cast<double>(Budget());
  const double floor = options_.floor_mode == 0 ? 0 : options_.floor_mode == 1 ? recent_max_bytes_ : options_.floor_k * (sum_bytes_ > 0 ? sum_sq_bytes_ / sum_bytes_ : 0);
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
  return sketch_.Frequency(n.key) + n.priority;
}

void AdaptivePolicy::Climb(bool hit) {
  if (!options_.climb_adapt) return;
  if (hit) {
    ++sample_hits_;
  } else {
    ++sample_misses_;
  }
  const uint64_t total = sample_hits_ + sample_misses_;
  const double sample =
      options_.climb_sample *
      static_cast<double>(std::max<size_t>(max_resident_entries_, 64));
  if (static_cast<double>(total) < sample) return;
  const double hit_rate = static_cast<double>(sample_hits_) / total;
  const double change = hit_rate - previous_hit_rate_;
  const double amount = change >= 0 ? climb_step_ : -climb_step_;
  window_share_ = std::clamp(window_share_ + amount, options_.min_window,
                             options_.max_window);
  climb_step_ = std::abs(change) >= options_.climb_restart
                    ? options_.climb_step * (amount >= 0 ? 1 : -1)
                    : options_.climb_decay * amount;
  previous_hit_rate_ = hit_rate;
  sample_hits_ = sample_misses_ = 0;
}

void AdaptivePolicy::OnGhostHit(ListId ghost, uint64_t bytes) {
  if (!options_.ghost_adapt) return;
  const uint64_t budget = Budget();
  if (budget == 0) return;
  const double w = static_cast<double>(ghost_window_.bytes());
  const double m = static_cast<double>(ghost_main_.bytes());
  const double step =
      static_cast<double>(bytes) / static_cast<double>(budget);
  if (ghost == kGhostWindowList) {
    window_share_ += step * std::max(1.0, m / std::max(w, 1.0));
  } else {
    window_share_ -= step * std::max(1.0, w / std::max(m, 1.0));
  }
  window_share_ =
      std::clamp(window_share_, options_.min_window, options_.max_window);
}

void AdaptivePolicy::DemoteProtectedOverflow() {
  const uint64_t target = ProtectedTarget();
  while (protected_.bytes() > target && protected_.size() > 1) {
    const NodeIndex i = protected_.back();
    protected_.Unlink(i);
    probation_.PushFront(i);
  }
}

void AdaptivePolicy::ForgetOldGhosts(EntryList& ghosts) {
  const uint64_t limit = static_cast<uint64_t>(
      options_.ghost_budgets * static_cast<double>(Budget()));
  while (ghosts.bytes() > limit && !ghosts.empty()) {
    const NodeIndex i = ghosts.back();
    ghosts.Unlink(i);
    table_.Release(i);
  }
}

void AdaptivePolicy::Insert(Key key, uint64_t bytes, int priority) {
  NodeIndex i = table_.Find(key);
  if (i != kNoNode && !IsGhost(table_[i].list)) {
    // Already resident: a size change plus a hit.
    ListOf(table_[i].list).SetBytes(i, bytes);
    table_[i].priority = ClampPriority(priority);
    Touch(key);
    return;
  }
  sketch_.Increment(key);
  Climb(false);
  if (i != kNoNode) {
    const ListId ghost = table_[i].list;
    OnGhostHit(ghost, bytes);
    ListOf(ghost).Unlink(i);
  } else {
    i = table_.Add(key);
  }
  recent_max_bytes_ = std::max(static_cast<double>(bytes), recent_max_bytes_);
  {
    const double b = static_cast<double>(bytes);
    sum_bytes_ = sum_bytes_ * (1 - 1.0 / 4096) + b;
    sum_sq_bytes_ = sum_sq_bytes_ * (1 - 1.0 / 4096) + b * b;
  }
  EntryNode& n = table_[i];
  n.bytes = bytes;
  n.priority = ClampPriority(priority);
  n.credits = n.priority;
  n.flags = 0;
  n.pinned = false;
  window_.PushFront(i);
  max_resident_entries_ = std::max(max_resident_entries_, size());
  sketch_.EnsureCapacity(std::max<size_t>(options_.sketch_min, options_.sketch_scale * max_resident_entries_));

  // While the main segment has room, window overflow moves there without
  // an admission contest (the cache is still filling).
  const uint64_t budget = Budget();
  const uint64_t window_target = WindowTarget();
  const uint64_t main_target = budget > window_target ? budget - window_target : 0;
  while (window_.size() > 1 && window_.bytes() > window_target) {
    const NodeIndex oldest = window_.back();
    if (probation_.bytes() + protected_.bytes() + table_[oldest].bytes >
        main_target) {
      break;
    }
    window_.Unlink(oldest);
    probation_.PushFront(oldest);
  }
}

void AdaptivePolicy::Touch(Key key) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode || IsGhost(table_[i].list)) return;
  sketch_.Increment(key);
  Climb(true);
  EntryNode& n = table_[i];
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
    default:
      break;
  }
}

void AdaptivePolicy::Remove(Key key, RemoveReason reason) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode) return;
  EntryNode& n = table_[i];
  if (IsGhost(n.list)) {
    if (reason == RemoveReason::kErased) {
      ListOf(n.list).Unlink(i);
      table_.Release(i);
    }
    return;
  }
  const ListId from = n.list;
  ListOf(from).Unlink(i);
  if (reason == RemoveReason::kErased || from == kPinnedList) {
    table_.Release(i);
    return;
  }
  n.flags = 0;
  EntryList& ghosts = from == kWindowList ? ghost_window_ : ghost_main_;
  ghosts.PushFront(i);
  ForgetOldGhosts(ghosts);
}

void AdaptivePolicy::SetPinned(Key key, bool pinned) {
  const NodeIndex i = table_.Find(key);
  if (i == kNoNode || IsGhost(table_[i].list) || table_[i].pinned == pinned) {
    return;
  }
  EntryNode& n = table_[i];
  ListOf(n.list).Unlink(i);
  n.pinned = pinned;
  if (pinned) {
    pinned_.PushFront(i);
  } else {
    // Back into circulation as a fresh arrival; its sketch history decides
    // whether it keeps a main-segment place.
    n.credits = n.priority;
    window_.PushFront(i);
  }
}

void AdaptivePolicy::Choose(NodeIndex i, std::vector<Key>* out) {
  table_[i].flags |= kChosen;
  chosen_.push_back(i);
  out->push_back(table_[i].key);
}

NodeIndex AdaptivePolicy::NextWindowCandidate(
    absl::FunctionRef<bool(Key)> eligible) {
  while (window_cursor_ != kNoNode) {
    const NodeIndex i = window_cursor_;
    window_cursor_ = window_.newer(i);
    if (eligible(table_[i].key)) return i;
  }
  return kNoNode;
}

NodeIndex AdaptivePolicy::NextMainVictim(
    absl::FunctionRef<bool(Key)> eligible) {
  if (pending_head_ < pending_.size()) return pending_[pending_head_];
  for (int pass = 0; pass < 2; ++pass) {
    EntryList& list = pass == 0 ? probation_ : protected_;
    NodeIndex& cursor = pass == 0 ? probation_cursor_ : protected_cursor_;
    while (cursor != kNoNode) {
      const NodeIndex i = cursor;
      cursor = list.newer(i);
      EntryNode& n = table_[i];
      if ((n.flags & kChosen) != 0 || !eligible(n.key)) continue;
      if (n.credits > 0) {
        --n.credits;
        list.MoveToFront(i);
        continue;
      }
      pending_.push_back(i);
      return i;
    }
  }
  return kNoNode;
}

uint64_t AdaptivePolicy::SelectVictims(uint64_t bytes,
                                       absl::FunctionRef<bool(Key)> eligible,
                                       std::vector<Key>* out) {
  if (bytes == 0) return 0;
  if (capacity_hint_ == 0) observed_budget_ = resident_bytes();
  chosen_.clear();
  pending_.clear();
  pending_head_ = 0;
  probation_cursor_ = probation_.back();
  protected_cursor_ = protected_.back();
  window_cursor_ = window_.back();

  const uint64_t budget = Budget();
  // The caller frees room for an entry that will arrive in the window; its
  // size follows from the budget when the caller asked for exactly
  // resident + incoming - budget bytes. A caller shedding load with nothing
  // arriving (RAM pressure) is bounded by the largest entry seen.
  const uint64_t resident = resident_bytes();
  const uint64_t incoming =
      budget + bytes > resident
          ? std::min<uint64_t>(budget + bytes - resident,
                               std::max<uint64_t>(bytes, recent_max_bytes_))
          : 0;
  // The window always has room for the arrival itself.
  const uint64_t window_target = std::max(WindowTarget(), incoming);
  const uint64_t main_target = budget > window_target ? budget - window_target : 0;
  uint64_t freed = 0;
  uint64_t window_chosen = 0;
  uint64_t main_chosen = 0;

  // Takes pending_[pending_head_ ...] as a group worth at least `room`.
  auto gather = [&](uint64_t room, uint64_t* group_bytes, int* group_score) {
    group_.clear();
    *group_bytes = 0;
    *group_score = 0;
    size_t k = pending_head_;
    while (*group_bytes < room) {
      NodeIndex v;
      if (k < pending_.size()) {
        v = pending_[k];
      } else {
        const size_t saved = pending_head_;
        pending_head_ = pending_.size();
        v = NextMainVictim(eligible);
        pending_head_ = saved;
        if (v == kNoNode) break;
      }
      ++k;
      group_.push_back(v);
      *group_bytes += table_[v].bytes;
      const int s = Score(table_[v]);
      *group_score = options_.victim_sum ? *group_score + s
                                         : std::max(*group_score, s);
    }
  };

  while (freed < bytes) {
    const bool window_over =
        window_.bytes() - window_chosen + incoming > window_target;
    if (window_over) {
      const NodeIndex c = NextWindowCandidate(eligible);
      if (c != kNoNode) {
        const uint64_t cb = table_[c].bytes;
        const uint64_t main_now =
            probation_.bytes() + protected_.bytes() - main_chosen;
        if (cb > main_target) {
          Choose(c, out);
          window_chosen += cb;
          freed += cb;
          continue;
        }
        if (main_now + cb <= main_target) {
          window_.Unlink(c);
          probation_.PushFront(c);
          continue;
        }
        uint64_t group_bytes;
        int group_score;
        gather(main_now + cb - main_target, &group_bytes, &group_score);
        bool admit = false;
        if (!group_.empty()) {
          const int cs = Score(table_[c]);
          admit = cs > group_score + options_.margin;
          if (!admit && options_.random_admit && cs >= 6) {
            random_state_ ^= random_state_ << 13;
            random_state_ ^= random_state_ >> 7;
            random_state_ ^= random_state_ << 17;
            admit = (random_state_ & 127) == 0;
          }
        }
        if (admit) {
          for (NodeIndex v : group_) {
            Choose(v, out);
            main_chosen += table_[v].bytes;
            freed += table_[v].bytes;
          }
          pending_head_ += group_.size();
          window_.Unlink(c);
          probation_.PushFront(c);
        } else {
          Choose(c, out);
          window_chosen += cb;
          freed += cb;
        }
        continue;
      }
    }
    const NodeIndex v = NextMainVictim(eligible);
    if (v != kNoNode) {
      ++pending_head_;
      Choose(v, out);
      main_chosen += table_[v].bytes;
      freed += table_[v].bytes;
      continue;
    }
    const NodeIndex c = NextWindowCandidate(eligible);
    if (c == kNoNode) break;
    Choose(c, out);
    window_chosen += table_[c].bytes;
    freed += table_[c].bytes;
  }
  for (NodeIndex i : chosen_) table_[i].flags &= ~kChosen;
  return freed;
}

}  // namespace tensorpager::policy
