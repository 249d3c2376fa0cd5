#include "tests/bench/sdk_bench_beyond_ram.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/sdk_bench_common.h"
#include "tests/testing/server_process.h"

namespace tensorpager::bench {

std::vector<BeyondRamRow> MeasureBeyondRam(const BeyondRamOptions& o) {
  testing::ServerProcess::Options so;
  so.data_dir = o.data_dir;
  // Room on disk for the data set and what the "write new" runs add.
  so.flags = {absl::StrCat("--ram_budget=", o.ram_budget / kMiB, "MiB"),
              absl::StrCat("--max_swap_size=", 64 * o.ram_budget / kMiB, "MiB"),
              "--algorithm=lru"};
  auto server = testing::ServerProcess::Start(so);
  if (!server.ok()) Die("start tensorpagerd", server.status());
  int max_streams = 1;
  for (int64_t s : o.streams) max_streams = std::max<int>(max_streams, s);
  std::mt19937_64 rng(7);
  std::vector<BeyondRamRow> rows;
  for (int64_t size : o.sizes) {
    const uint64_t count = 4 * o.ram_budget / size;
    auto sdk =
        Connect((*server)->target(), 4 * max_streams * size, o.tune_allocator);
    std::string value(size, '\0');
    for (char& c : value) c = static_cast<char>(rng());
    std::fprintf(stderr, "  4x RAM, %s: %lu blocks\n", SizeName(size).c_str(),
                 static_cast<unsigned long>(count));
    Fill(*sdk, size, count, value, max_streams);
    PutItem item_template;
    item_template.data = absl::MakeSpan(
        reinterpret_cast<const std::byte*>(value.data()), value.size());
    item_template.region_type = v1::KV_CACHE;
    for (int64_t s : o.streams) {
      const int streams = static_cast<int>(s);
      // New keys: each put creates a block; they are removed again after,
      // so every run starts from the same data set.
      const std::string prefix = absl::StrCat("new", size, "x", streams, "-");
      BeyondRamRow put{"write new", static_cast<uint64_t>(size), streams};
      put.gib_s = Timed(streams, o.seconds, size, [&](int t, uint64_t i) {
        PutItem item = item_template;
        item.id = absl::StrCat(prefix, t, "-", i);
        auto outcome = sdk->PutBatch("default", {&item, 1});
        if (!outcome.ok()) return outcome.status();
        return (*outcome)[0].status;
      });
      rows.push_back(put);
      if (auto r = sdk->UnregisterPrefix("default", prefix); !r.ok()) {
        Die("unregister the new blocks", r.status());
      }
      // One cursor for all streams: each op takes the least recently
      // used block, which LRU has put on disk.
      std::atomic<uint64_t> cursor{0};
      BeyondRamRow rewrite{"rewrite", static_cast<uint64_t>(size), streams};
      rewrite.gib_s = Timed(streams, o.seconds, size, [&](int, uint64_t) {
        return sdk->Write(Id(size, cursor++ % count), value).status();
      });
      rows.push_back(rewrite);
      BeyondRamRow read{"read", static_cast<uint64_t>(size), streams};
      auto st0 = sdk->Status();
      read.gib_s = Timed(streams, o.seconds, size, [&](int, uint64_t) {
        return AccessOnce(*sdk, size, cursor++ % count);
      });
      auto st1 = sdk->Status();
      if (st0.ok() && st1.ok()) {
        const double disk =
            st1->efficiency().disk_hits() - st0->efficiency().disk_hits();
        const double ram =
            st1->efficiency().ram_hits() - st0->efficiency().ram_hits();
        read.from_disk = disk + ram > 0 ? disk / (disk + ram) : 0;
      }
      rows.push_back(read);
    }
  }
  return rows;
}

void PrintBeyondRam(const std::vector<BeyondRamRow>& rows,
                    uint64_t ram_budget) {
  std::printf(
      "\nSDK alone, data set 4x the server's RAM budget (%lu MiB of "
      "blocks per size, budget %lu MiB, LRU; rewrites and reads walk the "
      "blocks oldest first, so each finds its block on disk)\n",
      static_cast<unsigned long>(4 * ram_budget / kMiB),
      static_cast<unsigned long>(ram_budget / kMiB));
  std::printf("%-10s %-7s %-8s %-10s %s\n", "op", "value", "streams",
              "SDK GiB/s", "served from disk");
  for (const BeyondRamRow& r : rows) {
    std::printf("%-10s %-7s %-8d %-10.3f %s\n", r.op.c_str(),
                SizeName(r.size).c_str(), r.streams, r.gib_s,
                r.from_disk >= 0
                    ? absl::StrFormat("%.0f%%", 100 * r.from_disk).c_str()
                    : "");
  }
  for (const BeyondRamRow& r : rows) {
    std::string op = r.op;
    std::replace(op.begin(), op.end(), ' ', '_');
    std::printf("beyond-ram %s %lu %d %.4f\n", op.c_str(),
                static_cast<unsigned long>(r.size), r.streams, r.gib_s);
  }
}

}  // namespace tensorpager::bench
