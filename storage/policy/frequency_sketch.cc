#include "storage/policy/frequency_sketch.h"

#include <algorithm>
#include <bit>

#include "absl/base/attributes.h"

namespace tensorpager::policy {
namespace {

constexpr uint64_t kResetMask = 0x7777777777777777ull;
constexpr size_t kMinCapacity = 64;
// Halving period in multiples of the capacity, TinyLFU's recommended 10.
constexpr uint64_t kSamplePerEntry = 10;
// Doorkeeper bits per sample slot; with 2 probes in one word this keeps
// false positives near 5-6% when every addition of a period is a distinct
// key (a little above an unblocked filter's, for one cache line a probe).
constexpr uint64_t kDoorkeeperBitsPerSample = 8;
// See the header: how far a workload of distant reuse may stretch the
// sketch beyond what the cache size asks for.
constexpr size_t kMaxGrowth = 16;
// A period whose additions are mostly first sightings is too short.
constexpr double kGrowFirstSightingShare = 0.5;

}  // namespace

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t FrequencySketch::Mix(
    uint64_t key) {
  // SplitMix64's finaliser: handles are dense integers and need spreading.
  key += 0x9e3779b97f4a7c15ull;
  key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;
  key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
  return key ^ (key >> 31);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline FrequencySketch::Hashes
FrequencySketch::HashesOf(uint64_t key) {
  const uint64_t block = Mix(key);
  return {block, Mix(block)};
}

void FrequencySketch::EnsureCapacity(size_t entries) {
  entries = std::bit_ceil(std::max(entries, kMinCapacity));
  max_capacity_ = std::max(max_capacity_, entries * kMaxGrowth);
  if (capacity_ == 0) {
    capacity_ = entries;
    table_.assign(capacity_ / kBlockWords, Block{});
    block_mask_ = table_.size() - 1;
    sample_size_ = kSamplePerEntry * capacity_;
    const uint64_t bits =
        std::bit_ceil(sample_size_ * kDoorkeeperBitsPerSample);
    doorkeeper_.assign(bits / 64, 0);
    doorkeeper_mask_ = doorkeeper_.size() - 1;
    return;
  }
  while (capacity_ < entries) Grow();
}

void FrequencySketch::Grow() {
  const size_t blocks = table_.size();
  table_.resize(2 * blocks);
  std::copy_n(table_.begin(), blocks, table_.begin() + blocks);
  const size_t words = doorkeeper_.size();
  doorkeeper_.resize(2 * words);
  std::copy_n(doorkeeper_.begin(), words, doorkeeper_.begin() + words);
  capacity_ *= 2;
  block_mask_ = table_.size() - 1;
  sample_size_ *= 2;
  doorkeeper_mask_ = doorkeeper_.size() - 1;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline FrequencySketch::Slots
FrequencySketch::SlotsOf(const Hashes& h) const {
  // Counter i lives in word pair i of the block (which word of the pair,
  // and which of its 16 nibbles, from byte i of the high half of
  // `within`), so the four never share a word. Written out rather than
  // looped: this runs on every request, and -O2 does not unroll it.
  const auto slot = [&h](int i, int* word, int* shift) {
    const uint64_t bits = h.within >> (32 + 8 * i);
    *word = 2 * i + static_cast<int>(bits & 1);
    *shift = static_cast<int>(bits >> 1 & 15) * 4;
  };
  Slots s;
  s.block = h.block & block_mask_;
  slot(0, &s.word[0], &s.shift[0]);
  slot(1, &s.word[1], &s.shift[1]);
  slot(2, &s.word[2], &s.shift[2]);
  slot(3, &s.word[3], &s.shift[3]);
  return s;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int FrequencySketch::MinCount(
    const Slots& s) const {
  const Block& b = table_[s.block];
  const auto count = [&](int i) {
    return static_cast<int>(b.words[s.word[i]] >> s.shift[i] & 15);
  };
  return std::min({count(0), count(1), count(2), count(3)});
}

void FrequencySketch::Increment(uint64_t key) {
  if (capacity_ == 0) EnsureCapacity(kMinCapacity);
  const Hashes h = HashesOf(key);
  uint64_t& door = doorkeeper_[DoorkeeperIndex(h)];
  const uint64_t bits = DoorkeeperBits(h);
  if ((door & bits) != bits) {
    door |= bits;
    ++first_sightings_;
  } else {
    // Conservative update: raise only the counters at the current minimum,
    // which keeps over-estimates from colliding keys low.
    const Slots s = SlotsOf(h);
    const int min = MinCount(s);
    if (min < 15) {
      Block& b = table_[s.block];
      const auto raise = [&](int i) {
        uint64_t& word = b.words[s.word[i]];
        if (static_cast<int>(word >> s.shift[i] & 15) == min) {
          word += uint64_t{1} << s.shift[i];
        }
      };
      raise(0);
      raise(1);
      raise(2);
      raise(3);
    }
  }
  if (++additions_ >= sample_size_) Reset();
}

int FrequencySketch::Frequency(uint64_t key) const {
  if (capacity_ == 0) return 0;
  const Hashes h = HashesOf(key);
  const uint64_t bits = DoorkeeperBits(h);
  const bool seen = (doorkeeper_[DoorkeeperIndex(h)] & bits) == bits;
  return MinCount(SlotsOf(h)) + (seen ? 1 : 0);
}

void FrequencySketch::Reset() {
  const bool too_short =
      static_cast<double>(first_sightings_) >
      kGrowFirstSightingShare * static_cast<double>(additions_);
  for (Block& block : table_) {
    for (uint64_t& word : block.words) word = (word >> 1) & kResetMask;
  }
  std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
  additions_ = 0;
  first_sightings_ = 0;
  if (too_short && capacity_ < max_capacity_) Grow();
}

}  // namespace tensorpager::policy
