// Approximate access counts for TinyLFU admission: a count-min sketch of
// 4-bit counters (conservative update) behind a doorkeeper Bloom filter.
// The doorkeeper absorbs the first sighting of every key, so one-hit
// wonders never reach the counters; every `sample_size` additions all
// counters are halved and the doorkeeper cleared, which ages old
// popularity away (TinyLFU's reset, Einziger et al. 2017).
#ifndef TENSORPAGER_STORAGE_POLICY_FREQUENCY_SKETCH_H_
#define TENSORPAGER_STORAGE_POLICY_FREQUENCY_SKETCH_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tensorpager::policy {

class FrequencySketch {
 public:
  // The largest estimate: 15 from the counters plus 1 from the doorkeeper.
  static constexpr int kMaxFrequency = 16;

  FrequencySketch() = default;

  // Sizes the sketch for about `entries` distinct hot keys; only grows.
  // Growing allocates and forgets the counts, so callers grow in steps.
  void EnsureCapacity(size_t entries);
  size_t capacity() const { return capacity_; }

  void Increment(uint64_t key);
  int Frequency(uint64_t key) const;

  // Additions between two halvings.
  uint64_t sample_size() const { return sample_size_; }

 private:
  static uint64_t Mix(uint64_t key);
  void Reset();

  size_t capacity_ = 0;
  // 16 four-bit counters per word; a key owns one counter in each of four
  // words, each at a different nibble row.
  std::vector<uint64_t> table_;
  uint64_t table_mask_ = 0;
  std::vector<uint64_t> doorkeeper_;
  uint64_t doorkeeper_mask_ = 0;
  uint64_t sample_size_ = 0;
  uint64_t additions_ = 0;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_FREQUENCY_SKETCH_H_
