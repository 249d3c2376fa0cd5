// tp-sdk-bench's section with a data set 4x the server's RAM budget: the
// KV-offload steady state, where new pages keep arriving and older ones
// go to the NVMe tier. sdk_bench.sh sets its rows against fio on the same
// directory in the same run.
#ifndef TENSORPAGER_TESTS_BENCH_SDK_BENCH_BEYOND_RAM_H_
#define TENSORPAGER_TESTS_BENCH_SDK_BENCH_BEYOND_RAM_H_

#include <cstdint>
#include <string>
#include <vector>

namespace tensorpager::bench {

struct BeyondRamOptions {
  std::string data_dir;  // the server's
  uint64_t ram_budget = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> streams;
  double seconds = 1.0;
  bool tune_allocator = true;
};

struct BeyondRamRow {
  // "write new" (a put of a block not seen before), "rewrite" (of a block
  // on disk), "read" (of a block on disk).
  std::string op;
  uint64_t size = 0;
  int streams = 0;
  double gib_s = 0;
  double from_disk = -1;  // reads: the share the server served from disk
};

// Fills the server with 4x its RAM budget per size, then measures each
// op. The server runs LRU and the ops walk the blocks in the order they
// were written, so every rewrite and read finds its block on disk.
std::vector<BeyondRamRow> MeasureBeyondRam(const BeyondRamOptions& options);

// The table, then one "beyond-ram OP SIZE STREAMS GIB/S" line per row for
// sdk_bench.sh.
void PrintBeyondRam(const std::vector<BeyondRamRow>& rows, uint64_t ram_budget);

}  // namespace tensorpager::bench

#endif  // TENSORPAGER_TESTS_BENCH_SDK_BENCH_BEYOND_RAM_H_
