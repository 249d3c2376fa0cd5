// Approximate access counts for TinyLFU admission: a count-min sketch of
// 4-bit counters (conservative update) behind a doorkeeper Bloom filter.
// Both are blocked, as in Caffeine's sketch: a key's four counters share
// one 64-byte block and its two doorkeeper bits one word, so an increment
// or an estimate costs two cache misses rather than six (the sketch is
// ADAPTIVE's largest structure and outgrows the CPU caches first).
// The doorkeeper absorbs the first sighting of every key, so one-hit
// wonders never reach the counters; every `sample_size` additions all
// counters are halved and the doorkeeper cleared, which ages old
// popularity away (TinyLFU's reset, Einziger et al. 2017).
//
// A period of 10x the cache's entries is too short when keys come back
// only after many more distinct keys (a loop over 50x the cache): every
// estimate is then 0 or 1 and admission churns. When most additions of a
// period are first sightings, the sketch doubles its period (up to
// kMaxGrowth times the size the cache asked for), so the history grows to
// cover the reuse distances the workload really has.
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

  // Sizes the sketch for at least `entries` keys (the cache's entry count);
  // only grows, keeping what was counted.
  void EnsureCapacity(size_t entries);
  size_t capacity() const { return capacity_; }

  void Increment(uint64_t key);
  int Frequency(uint64_t key) const;

  // Additions between two halvings.
  uint64_t sample_size() const { return sample_size_; }

 private:
  // Where a key's four counters live: their block, and the word index
  // within it and bit shift of each.
  struct Slots {
    size_t block;
    int word[4];
    int shift[4];
  };
  // A key's two hashes: `block` picks its counter block and doorkeeper
  // word (low and high half), `within` its counters and doorkeeper bits.
  struct Hashes {
    uint64_t block;
    uint64_t within;
  };

  static uint64_t Mix(uint64_t key);
  static Hashes HashesOf(uint64_t key);
  Slots SlotsOf(const Hashes& h) const;
  int MinCount(const Slots& s) const;
  // The index of `h`'s doorkeeper word, and its two bits there.
  size_t DoorkeeperIndex(const Hashes& h) const {
    return (h.block >> 32) & doorkeeper_mask_;
  }
  static uint64_t DoorkeeperBits(const Hashes& h) {
    return uint64_t{1} << (h.within & 63) | uint64_t{1} << (h.within >> 6 & 63);
  }
  // Doubles the table and the doorkeeper. A key's block and doorkeeper
  // word either stay or move up by the old size, so copying each half into
  // the new one keeps every estimate.
  void Grow();
  void Reset();

  size_t capacity_ = 0;
  // Growth driven by the workload stops here.
  size_t max_capacity_ = 0;
  // 16 four-bit counters per word, 8 words per block, a block per cache
  // line; a key owns one counter in each pair of words of its block.
  static constexpr int kBlockWords = 8;
  struct alignas(64) Block {
    uint64_t words[kBlockWords] = {};
  };
  std::vector<Block> table_;
  uint64_t block_mask_ = 0;
  std::vector<uint64_t> doorkeeper_;
  // Words of the doorkeeper, less one.
  uint64_t doorkeeper_mask_ = 0;
  uint64_t sample_size_ = 0;
  uint64_t additions_ = 0;
  // Additions in this period that were a key's first sighting.
  uint64_t first_sightings_ = 0;
};

}  // namespace tensorpager::policy

#endif  // TENSORPAGER_STORAGE_POLICY_FREQUENCY_SKETCH_H_
