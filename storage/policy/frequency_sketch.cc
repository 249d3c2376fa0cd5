#include "storage/policy/frequency_sketch.h"

#include <algorithm>
#include <bit>

namespace tensorpager::policy {
namespace {

constexpr uint64_t kResetMask = 0x7777777777777777ull;
constexpr size_t kMinCapacity = 64;
// Halving period in multiples of the capacity, TinyLFU's recommended 10.
constexpr uint64_t kSamplePerEntry = 10;
// Doorkeeper bits per sample slot; with 2 probes this keeps false positives
// near 5% when every addition of a period is a distinct key.
constexpr uint64_t kDoorkeeperBitsPerSample = 8;
// See the header: how far a workload of distant reuse may stretch the
// sketch beyond what the cache size asks for.
constexpr size_t kMaxGrowth = 16;
// A period whose additions are mostly first sightings is too short.
constexpr double kGrowFirstSightingShare = 0.5;

}  // namespace

uint64_t FrequencySketch::Mix(uint64_t key) {
  // SplitMix64's finaliser: handles are dense integers and need spreading.
  key += 0x9e3779b97f4a7c15ull;
  key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;
  key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
  return key ^ (key >> 31);
}

void FrequencySketch::EnsureCapacity(size_t entries) {
  entries = std::bit_ceil(std::max(entries, kMinCapacity));
  max_capacity_ = std::max(max_capacity_, entries * kMaxGrowth);
  if (capacity_ == 0) {
    capacity_ = entries;
    table_.assign(capacity_, 0);
    table_mask_ = capacity_ - 1;
    sample_size_ = kSamplePerEntry * capacity_;
    const uint64_t bits =
        std::bit_ceil(sample_size_ * kDoorkeeperBitsPerSample);
    doorkeeper_.assign(bits / 64, 0);
    doorkeeper_mask_ = bits - 1;
    return;
  }
  while (capacity_ < entries) Grow();
}

void FrequencySketch::Grow() {
  const size_t words = table_.size();
  table_.resize(2 * words);
  std::copy_n(table_.begin(), words, table_.begin() + words);
  const size_t bits_words = doorkeeper_.size();
  doorkeeper_.resize(2 * bits_words);
  std::copy_n(doorkeeper_.begin(), bits_words,
              doorkeeper_.begin() + bits_words);
  capacity_ *= 2;
  table_mask_ = capacity_ - 1;
  sample_size_ *= 2;
  doorkeeper_mask_ = 2 * doorkeeper_mask_ + 1;
}

FrequencySketch::Slots FrequencySketch::SlotsOf(uint64_t hash) const {
  // Double hashing picks four words; each key uses a different nibble row
  // (counters 4i..4i+3) of its i-th word.
  const uint64_t h2 = Mix(hash);
  const uint64_t step = hash >> 17 | 1;
  Slots s;
  for (int i = 0; i < 4; ++i) {
    s.word[i] = (h2 + static_cast<uint64_t>(i) * step) & table_mask_;
    s.shift[i] = (i * 4 + static_cast<int>((h2 >> (8 * i + 32)) & 3)) * 4;
  }
  return s;
}

bool FrequencySketch::DoorkeeperHas(uint64_t hash) const {
  const uint64_t b1 = hash & doorkeeper_mask_;
  const uint64_t b2 = (hash >> 32) & doorkeeper_mask_;
  return (doorkeeper_[b1 >> 6] >> (b1 & 63) & 1) != 0 &&
         (doorkeeper_[b2 >> 6] >> (b2 & 63) & 1) != 0;
}

void FrequencySketch::DoorkeeperAdd(uint64_t hash) {
  const uint64_t b1 = hash & doorkeeper_mask_;
  const uint64_t b2 = (hash >> 32) & doorkeeper_mask_;
  doorkeeper_[b1 >> 6] |= uint64_t{1} << (b1 & 63);
  doorkeeper_[b2 >> 6] |= uint64_t{1} << (b2 & 63);
}

void FrequencySketch::Increment(uint64_t key) {
  if (capacity_ == 0) EnsureCapacity(kMinCapacity);
  const uint64_t h = Mix(key);
  if (!DoorkeeperHas(h)) {
    DoorkeeperAdd(h);
    ++first_sightings_;
  } else {
    // Conservative update: raise only the counters at the current minimum,
    // which keeps over-estimates from colliding keys low.
    const Slots s = SlotsOf(h);
    int min = 15;
    for (int i = 0; i < 4; ++i) {
      min =
          std::min(min, static_cast<int>(table_[s.word[i]] >> s.shift[i] & 15));
    }
    if (min < 15) {
      for (int i = 0; i < 4; ++i) {
        if (static_cast<int>(table_[s.word[i]] >> s.shift[i] & 15) == min) {
          table_[s.word[i]] += uint64_t{1} << s.shift[i];
        }
      }
    }
  }
  if (++additions_ >= sample_size_) Reset();
}

int FrequencySketch::Frequency(uint64_t key) const {
  if (capacity_ == 0) return 0;
  const uint64_t h = Mix(key);
  const Slots s = SlotsOf(h);
  int min = 15;
  for (int i = 0; i < 4; ++i) {
    min = std::min(min, static_cast<int>(table_[s.word[i]] >> s.shift[i] & 15));
  }
  return min + (DoorkeeperHas(h) ? 1 : 0);
}

void FrequencySketch::Reset() {
  const bool too_short =
      static_cast<double>(first_sightings_) >
      kGrowFirstSightingShare * static_cast<double>(additions_);
  for (uint64_t& word : table_) word = (word >> 1) & kResetMask;
  std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
  additions_ = 0;
  first_sightings_ = 0;
  if (too_short && capacity_ < max_capacity_) Grow();
}

}  // namespace tensorpager::policy
