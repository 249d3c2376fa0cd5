// ADAPTIVE's window steering: ARC's ghost rule, the hill climber, and the
// shadow-LRU referee with its recency mode. Design notes: the comment block
// at the top of adaptive_policy.h.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "storage/policy/adaptive_policy.h"

namespace tensorpager::policy {
namespace {

// In recency mode, samples to wait before the next probe of a smaller
// window: 1 after a fallback, doubled by every probe that fails, up to this.
constexpr uint32_t kMaxProbeWait = 64;

}  // namespace

void AdaptivePolicy::OnGhostHit(ListId ghost, uint64_t bytes) {
  const uint64_t budget = Budget();
  // In recency mode the window stays at max_window but for the climber's
  // probes: ghosts would grow it back in the middle of a probe, and the
  // keys main gave up in the fallback, coming back as main-ghost hits,
  // would shrink it at once.
  if (budget == 0 || recency_mode_) return;
  const double window_ghosts =
      std::max(static_cast<double>(ghost_window_.bytes()), 1.0);
  const double main_ghosts =
      std::max(static_cast<double>(ghost_main_.bytes()), 1.0);
  const double step = static_cast<double>(bytes) / static_cast<double>(budget);
  if (ghost == kGhostWindowList) {
    window_share_ += step * std::max(1.0, main_ghosts / window_ghosts);
  } else {
    window_share_ -= step * std::max(1.0, window_ghosts / main_ghosts);
  }
  window_share_ =
      std::clamp(window_share_, options_.min_window, options_.max_window);
}

void AdaptivePolicy::ShadowAccess(NodeIndex i) {
  if (shadow_.Contains(i)) {
    shadow_.MoveToFront(i);
    return;
  }
  shadow_.PushFront(i);
  const uint64_t budget = Budget();
  while (shadow_.bytes() > budget && shadow_.back() != i) {
    const NodeIndex oldest = shadow_.back();
    shadow_.Unlink(oldest);
    ReleaseIfUnused(oldest);
  }
}

void AdaptivePolicy::ReleaseIfUnused(NodeIndex i) {
  if (table_[i].list == kUnlinked && !shadow_.Contains(i)) table_.Release(i);
}

void AdaptivePolicy::Forget(NodeIndex i) {
  if (shadow_.Contains(i)) shadow_.Unlink(i);
  table_.Release(i);
}

void AdaptivePolicy::FallBackToRecency() {
  // The window is an LRU: at max_window the cache is LRU but for main's
  // small remainder. Reordered by the shadow, it is at once the LRU over
  // what the cache holds.
  // Already in recency mode, this ends a probe that lost: wait longer
  // before the next one.
  probe_wait_ = recency_mode_ ? std::min(2 * probe_wait_, kMaxProbeWait) : 1;
  window_share_ = options_.max_window;
  OrderResidentByRecency();
  recency_mode_ = true;
  probing_ = false;
  idle_samples_ = 0;
  sample_hits_ = sample_misses_ = sample_lru_hits_ = 0;
  regret_ = 0;
}

void AdaptivePolicy::OrderResidentByRecency() {
  // The shadow LRU knows the order of every key LRU would hold. Moving the
  // resident ones among them to the window's front, oldest first, makes
  // the window that order at once; what stays in main is older than all
  // of them and goes first. Without this, victims came from main in
  // main's own order, recent keys LRU keeps among them. One walk of the
  // shadow per switch: a switch comes at most once per climber sample
  // (10 x entries requests).
  for (NodeIndex i = shadow_.back(); i != kNoNode; i = shadow_.newer(i)) {
    switch (table_[i].list) {
      case kWindowList:
        window_.MoveToFront(i);
        break;
      case kProbationList:
      case kProtectedList:
        ListOf(table_[i].list).Unlink(i);
        window_.PushFront(i);
        break;
      default:  // pinned, a ghost, or a key only the shadow holds
        break;
    }
  }
}

bool AdaptivePolicy::RefereeOnRequest(bool hit, bool lru_hit) {
  if (options_.referee_misses <= 0 || hit == lru_hit) return false;
  // CUSUM of ADAPTIVE's misses less LRU's. The floor lets a lead bank a
  // few thresholds, so a short losing streak inside a long win does not
  // throw the win away, but never more, so a later loss is still caught
  // quickly; the threshold grows slowly with the cache.
  const double threshold =
      options_.referee_misses +
      static_cast<double>(max_resident_entries_) / options_.referee_entries;
  regret_ = std::max(regret_ + (lru_hit ? 1.0 : -1.0),
                     -options_.referee_credit * threshold);
  if (regret_ < threshold) return false;
  FallBackToRecency();
  return true;
}

void AdaptivePolicy::ClimbOnRequest(bool hit, bool lru_hit) {
  if (RefereeOnRequest(hit, lru_hit)) return;
  const bool referee = options_.referee_misses > 0;
  if (!options_.hill_climbing && !recency_mode_) return;
  if (hit) {
    ++sample_hits_;
  } else {
    ++sample_misses_;
  }
  if (lru_hit) ++sample_lru_hits_;
  const uint64_t requests = sample_hits_ + sample_misses_;
  const double sample = options_.climb_sample *
                        static_cast<double>(std::max(max_resident_entries_,
                                                     kMinStatisticsEntries));
  if (static_cast<double>(requests) < sample) return;
  // Hits the window's size earned beyond what LRU got on the same
  // requests: a change of phase in the workload moves both alike, so the
  // climber compares windows rather than phases.
  const double net = static_cast<double>(sample_hits_) -
                     (referee ? static_cast<double>(sample_lru_hits_) : 0.0);
  sample_hits_ = sample_misses_ = sample_lru_hits_ = 0;
  if (recency_mode_) {
    ProbeOnSample(net);
    return;
  }
  const double score = net / static_cast<double>(requests);
  const double change = score - previous_score_;
  // A difference of less than one request is no evidence either way.
  if (std::abs(change) * static_cast<double>(requests) < 1.0) return;
  // Keep going the same way while the score does not fall.
  const double step = change >= 0 ? climb_step_ : -climb_step_;
  window_share_ = std::clamp(window_share_ + step, options_.min_window,
                             options_.max_window);
  climb_step_ = std::abs(change) >= options_.climb_restart
                    ? std::copysign(options_.climb_step, step)
                    : options_.climb_decay * step;
  previous_score_ = score;
}

void AdaptivePolicy::ProbeOnSample(double net) {
  if (probing_) {
    // The sample ran with a smaller window. Frequency pays again when it
    // beat LRU by a clear margin (a loop LRU cannot serve): leave recency
    // mode and let the climber and the ghosts go on from here.
    probing_ = false;
    if (net >= options_.referee_misses / 8) {
      recency_mode_ = false;
      climb_step_ = -options_.climb_step;
      previous_score_ = 0;
      return;
    }
    window_share_ = options_.max_window;
    probe_wait_ = std::min(2 * probe_wait_, kMaxProbeWait);
    idle_samples_ = 0;
    return;
  }
  if (++idle_samples_ < probe_wait_) return;
  probing_ = true;
  window_share_ =
      std::max(options_.max_window - options_.climb_step, options_.min_window);
}

}  // namespace tensorpager::policy
