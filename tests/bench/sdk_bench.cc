// tp-sdk-bench: the C++ SDK's data path against Redis, in one run (see
// sdk_bench.sh). Starts tensorpagerd (tests/testing/ServerProcess) and
// redis-server on free loopback ports, then for 4 MiB and 64 KiB values at
// 1, 4 and 8 concurrent streams measures SDK Write vs Redis SET and SDK
// Access (every access a local-cache miss, so bytes come from the server)
// vs Redis GET; repeats the SDK side with a data set 4x the server's RAM
// budget; and measures the cost of a local-cache hit.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tensorpager/client.h"
#include "tests/bench/sdk_bench_beyond_ram.h"
#include "tests/bench/sdk_bench_common.h"
#include "tests/bench/sdk_bench_redis.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(std::string, data_dir, "",
          "Directory on the disk under test for tensorpagerd's data (and "
          "redis' working dir); required");
ABSL_FLAG(std::string, redis_server, "/usr/bin/redis-server",
          "redis-server binary");
ABSL_FLAG(double, seconds, 1.0, "Measuring time per case");
ABSL_FLAG(int, fit_set_mib, 256,
          "Data set per value size of the in-RAM runs (fits the RAM budget)");
ABSL_FLAG(int, ram_budget_mib, 1024, "Server RAM budget of the in-RAM runs");
ABSL_FLAG(int, small_ram_budget_mib, 128,
          "Server RAM budget of the runs with a data set 4x larger");
ABSL_FLAG(std::string, sizes, "4194304,65536", "Value sizes in bytes");
ABSL_FLAG(std::string, streams, "1,4,8", "Concurrent streams");
ABSL_FLAG(std::string, sections, "redis,beyond_ram,local_hit",
          "Which parts to run: redis (SDK vs Redis, data set in RAM), "
          "beyond_ram (data set 4x the RAM budget), local_hit");
ABSL_FLAG(bool, tune_allocator, true,
          "ClientOptions::tune_allocator for the SDK side (the setting "
          "recommended for bulk transfers)");

namespace tensorpager::bench {
namespace {

struct Row {
  std::string op;
  uint64_t size;
  int streams;
  double sdk;
  double redis;  // < 0: no reference
  double local_hit_rate;
};

double LocalHitNanos(Client& sdk, int threads, uint64_t blocks) {
  constexpr uint64_t kOps = 400000;
  std::vector<std::thread> pool;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (uint64_t i = 0; i < kOps; ++i) {
        absl::StatusOr<BlockHandle> h =
            sdk.Access(Id(4096, (i + t * 7) % blocks));
        if (!h.ok() || !h->local()) Die("local hit", h.status());
      }
    });
  }
  for (std::thread& t : pool) t.join();
  const double elapsed =
      std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  return elapsed / kOps;  // per operation of one thread
}

int Main() {
  if (absl::GetFlag(FLAGS_data_dir).empty()) {
    Die("flags", absl::InvalidArgumentError("--data_dir is required"));
  }
  // Absolute: redis-server changes into its --dir.
  const std::string data_dir =
      std::filesystem::absolute(absl::GetFlag(FLAGS_data_dir)).string();
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const std::vector<int64_t> sizes = ParseList(absl::GetFlag(FLAGS_sizes));
  const std::vector<int64_t> streams = ParseList(absl::GetFlag(FLAGS_streams));
  const uint64_t fit_set = absl::GetFlag(FLAGS_fit_set_mib) * kMiB;
  const uint64_t small_budget =
      absl::GetFlag(FLAGS_small_ram_budget_mib) * kMiB;
  const int max_streams = *std::max_element(streams.begin(), streams.end());
  for (const char* sub : {"fit", "big", "hits", "redis"}) {
    std::filesystem::remove_all(data_dir + "/" + sub);
  }
  std::filesystem::create_directories(data_dir + "/redis");

  const std::string sections = absl::GetFlag(FLAGS_sections);
  auto wanted = [&sections](absl::string_view name) {
    for (absl::string_view s : absl::StrSplit(sections, ',')) {
      if (s == name) return true;
    }
    return false;
  };
  std::mt19937_64 rng(42);
  std::vector<Row> rows;

  // ---- Data set in RAM: SDK vs Redis ----
  if (wanted("redis")) {
    testing::ServerProcess::Options so;
    so.data_dir = data_dir + "/fit";
    so.flags = {absl::StrCat("--ram_budget=",
                             absl::GetFlag(FLAGS_ram_budget_mib), "MiB"),
                "--max_swap_size=4GiB"};
    auto server = testing::ServerProcess::Start(so);
    if (!server.ok()) Die("start tensorpagerd", server.status());
    auto redis = RedisServer::Start(absl::GetFlag(FLAGS_redis_server),
                                    data_dir + "/redis");
    if (!redis.ok()) Die("start redis-server", redis.status());
    std::vector<std::unique_ptr<RespClient>> resp;
    for (int t = 0; t < max_streams; ++t) {
      auto c = RespClient::Connect((*redis)->port());
      if (!c.ok()) Die("connect redis", c.status());
      resp.push_back(*std::move(c));
    }
    for (int64_t size : sizes) {
      const uint64_t count = fit_set / size;
      // Room for the handles of every stream, far below the data set.
      auto sdk = Connect((*server)->target(), 4 * max_streams * size,
                         absl::GetFlag(FLAGS_tune_allocator));
      std::string value(size, '\0');
      for (char& c : value) c = static_cast<char>(rng());
      std::fprintf(stderr, "  %s: %lu blocks\n", SizeName(size).c_str(),
                   static_cast<unsigned long>(count));
      Fill(*sdk, size, count, value, max_streams);
      for (uint64_t i = 0; i < count; ++i) {
        if (absl::Status s = resp[0]->Set(Id(size, i), value); !s.ok()) {
          Die("redis fill", s);
        }
      }
      std::vector<std::vector<char>> bufs(max_streams, std::vector<char>(size));
      for (int64_t s : streams) {
        std::fprintf(stderr, "  %s x%ld: write\n", SizeName(size).c_str(), s);
        Row w{"write", static_cast<uint64_t>(size), static_cast<int>(s), 0, 0,
              0};
        w.sdk = Timed(s, seconds, size, [&](int t, uint64_t i) {
          return sdk->Write(Id(size, (i * s + t) % count), value).status();
        });
        w.redis = Timed(s, seconds, size, [&](int t, uint64_t i) {
          return resp[t]->Set(Id(size, (i * s + t) % count), value);
        });
        rows.push_back(w);
        std::fprintf(stderr, "  %s x%ld: access\n", SizeName(size).c_str(), s);
        const CacheStats before = sdk->LocalStats();
        Row a{"access", static_cast<uint64_t>(size), static_cast<int>(s), 0, 0,
              0};
        a.sdk = Timed(s, seconds, size, [&](int t, uint64_t i) {
          return AccessOnce(*sdk, size, (i * s + t) % count);
        });
        const CacheStats after = sdk->LocalStats();
        const uint64_t local = after.hits - before.hits;
        const uint64_t all = local + after.misses - before.misses;
        a.local_hit_rate = all ? static_cast<double>(local) / all : 0;
        a.redis = Timed(s, seconds, size, [&](int t, uint64_t i) {
          return resp[t]->Get(Id(size, (i * s + t) % count),
                              absl::MakeSpan(bufs[t]));
        });
        rows.push_back(a);
      }
    }
  }

  // ---- Data set 4x the server's RAM budget: the SDK alone ----
  std::vector<BeyondRamRow> big_rows;
  if (wanted("beyond_ram")) {
    big_rows = MeasureBeyondRam(
        {.data_dir = data_dir + "/big",
         .ram_budget = small_budget,
         .sizes = sizes,
         .streams = streams,
         .seconds = seconds,
         .tune_allocator = absl::GetFlag(FLAGS_tune_allocator)});
  }

  // ---- Local-hit cost ----
  double hit_ns_1 = 0, hit_ns_n = 0;
  if (wanted("local_hit")) {
    testing::ServerProcess::Options so;
    so.data_dir = data_dir + "/hits";
    so.flags = {"--ram_budget=256MiB"};
    auto server = testing::ServerProcess::Start(so);
    if (!server.ok()) Die("start tensorpagerd", server.status());
    auto sdk = Connect((*server)->target(), 64 * kMiB,
                       absl::GetFlag(FLAGS_tune_allocator));
    constexpr uint64_t kBlocks = 256;
    Fill(*sdk, 4096, kBlocks, std::string(4096, 'h'), 4);
    for (uint64_t i = 0; i < kBlocks; ++i) {
      if (auto h = sdk->Access(Id(4096, i)); !h.ok()) Die("warm", h.status());
    }
    hit_ns_1 = LocalHitNanos(*sdk, 1, kBlocks);
    hit_ns_n = LocalHitNanos(*sdk, max_streams, kBlocks);
  }

  if (!rows.empty()) {
    std::printf(
        "SDK vs Redis, loopback, data set %d MiB per size in the server's "
        "RAM (budget %d MiB); SDK accesses all miss the local cache\n",
        absl::GetFlag(FLAGS_fit_set_mib), absl::GetFlag(FLAGS_ram_budget_mib));
    std::printf("%-7s %-7s %-8s %-10s %-11s %-6s %-5s %s\n", "op", "value",
                "streams", "SDK GiB/s", "Redis GiB/s", "ratio", "goal",
                "SDK local hits");
    for (const Row& r : rows) {
      const double goal = r.size >= kMiB ? 1.0 : 0.8;
      const double ratio = r.sdk / r.redis;
      std::printf(
          "%-7s %-7s %-8d %-10.2f %-11.2f %-6.2f %-5s %s\n", r.op.c_str(),
          SizeName(r.size).c_str(), r.streams, r.sdk, r.redis, ratio,
          ratio >= goal ? "met" : absl::StrFormat("<%.1f", goal).c_str(),
          r.op == "access"
              ? absl::StrFormat("%.0f%%", 100 * r.local_hit_rate).c_str()
              : "");
    }
  }
  if (!big_rows.empty()) PrintBeyondRam(big_rows, small_budget);
  if (hit_ns_1 > 0) {
    std::printf(
        "\nLocal-cache hit (Access + release of a resident 4 KiB block): "
        "%.0f ns with 1 thread, %.0f ns per op with %d threads\n",
        hit_ns_1, hit_ns_n, max_streams);
  }
  return 0;
}

}  // namespace
}  // namespace tensorpager::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tensorpager::bench::Main();
}
