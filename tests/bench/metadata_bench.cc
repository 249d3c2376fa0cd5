// tp-metadata-bench: what a registered block costs the server, at the
// scale of a GPU node's KV offload (tens of millions of 16-token pages).
//
// Puts `--blocks` small KV pages (64-hex-character ids, as chained prefix
// hashes are; a dtype and a shape) through PutBatch, with a RAM budget far
// below the data set so the pages end on disk as in the steady state, and
// reports:
//   - server RSS growth per registered block, while running and after a
//     restart (goal: <= 200 bytes);
//   - the restart: stop, start, first Status answered (goal: <= 10 s);
//   - Lookup of 128 random keys and a batch get of resident blocks at the
//     full count against the same at 10k blocks, measured on a second
//     server in the same run (goal: ratio ~1).
// The data dir must be on a real disk with room for blocks * 4 KiB; the
// run uses a fresh directory in it and removes it at the end.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tensorpager/client.h"
#include "tests/bench/sdk_bench_common.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(std::string, data_dir, "", "Parent of the servers' data dirs");
ABSL_FLAG(uint64_t, blocks, 1'000'000, "Blocks to register");
ABSL_FLAG(uint64_t, small_blocks, 10'000, "Blocks of the reference server");
ABSL_FLAG(int, block_bytes, 4096, "Bytes per block");
ABSL_FLAG(int, batch, 1024, "Blocks per PutBatch");
ABSL_FLAG(int, streams, 2, "Concurrent PutBatch callers");
ABSL_FLAG(double, seconds, 1.0, "Measuring time of each rate");
ABSL_FLAG(bool, keep_data, false,
          "Keep the run's data directory (its path is printed) to profile a "
          "restart of the big server by hand");

namespace tensorpager::bench {
namespace {

constexpr int kLookupKeys = 128;
// Reads of resident blocks: a hot set that stays in the RAM tier.
constexpr uint64_t kHotBlocks = 1024;
constexpr int kGetBatch = 16;

// A chained prefix hash stands in for an engine's page key: 64 hex chars.
std::string PageId(uint64_t i) {
  std::mt19937_64 mix(i * 0x9E3779B97F4A7C15ull + 1);
  return absl::StrFormat("%016x%016x%016x%016x", mix(), mix(), mix(), mix());
}

// Resident set of `pid`, bytes.
uint64_t RssBytes(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    uint64_t kib = 0;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits.push_back(c);
    }
    if (absl::SimpleAtoi(digits, &kib)) return kib << 10;
  }
  Die("read VmRSS", absl::InternalError(absl::StrCat("pid ", pid)));
}

v1::StatusResponse StatusOf(Client& sdk) {
  absl::StatusOr<v1::StatusResponse> s = sdk.Status();
  if (!s.ok()) Die("Status", s.status());
  return *s;
}

// Puts blocks [0, count) with `streams` threads in batches.
void PutAll(Client& sdk, uint64_t count, const std::string& value) {
  const int streams = absl::GetFlag(FLAGS_streams);
  const uint64_t batch = absl::GetFlag(FLAGS_batch);
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> done{0};
  const Clock::time_point start = Clock::now();
  auto worker = [&] {
    std::vector<PutItem> items;
    for (;;) {
      const uint64_t first = next.fetch_add(batch);
      if (first >= count) return;
      const uint64_t n = std::min(batch, count - first);
      items.assign(n, PutItem{});
      for (uint64_t k = 0; k < n; ++k) {
        PutItem& item = items[k];
        item.id = PageId(first + k);
        item.data = absl::MakeSpan(
            reinterpret_cast<const std::byte*>(value.data()), value.size());
        item.region_type = v1::KV_CACHE;
        item.dtype = v1::BFLOAT16;
        item.shape = {2, 8, static_cast<int64_t>(value.size() / 32)};
      }
      auto outcomes = sdk.PutBatch("kv", items, /*durable=*/false);
      if (!outcomes.ok()) Die("PutBatch", outcomes.status());
      for (const PutOutcome& o : *outcomes) {
        if (!o.status.ok()) Die("put", o.status);
      }
      const uint64_t total = done.fetch_add(n) + n;
      if (total / 1'000'000 != (total - n) / 1'000'000) {
        const double s =
            std::chrono::duration<double>(Clock::now() - start).count();
        std::fprintf(stderr, "  %" PRIu64 " blocks put, %.0f/s\n", total,
                     total / s);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < streams; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
}

// Operations per second of `op` over `seconds` from one thread.
template <typename Op>
double Rate(Op op) {
  const double seconds = absl::GetFlag(FLAGS_seconds);
  uint64_t ops = 0;
  const Clock::time_point start = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    op(ops++);
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return ops / elapsed;
}

struct Rates {
  double lookup_keys_s = 0;
  double get_blocks_s = 0;
  // Policy operations: seconds per switch of algorithm (which carries the
  // resident blocks over) and the blocks it carried; seconds per swap-in
  // by bytes (which looks for the most recently used blocks on disk).
  double switch_s = 0;
  uint64_t switch_resident = 0;
  double swap_in_s = 0;
};

// Seconds `op` took.
template <typename Op>
double SecondsOf(Op op) {
  const Clock::time_point start = Clock::now();
  op();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds `pid` has used so far.
double CpuSeconds(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces): state is the
  // 3rd field, utime and stime the 14th and 15th.
  const size_t close = stat.rfind(')');
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    Die("read CPU time", absl::InternalError(absl::StrCat("pid ", pid)));
  }
  return static_cast<double>(utime + stime) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Waits until `pid` uses under a tenth of a core for a second (at most a
// few minutes), so that rates are measured on an idle server, as on the
// small one: after millions of puts, RocksDB compacts in the background
// and would take a core from the rates being measured. Returns the wait.
double WaitIdle(pid_t pid) {
  const Clock::time_point start = Clock::now();
  double last = CpuSeconds(pid);
  while (Clock::now() - start < std::chrono::minutes(5)) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double now = CpuSeconds(pid);
    if (now - last < 0.1) break;
    last = now;
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Lookups of random registered keys, and gets of the hot set (read once
// first so it is resident and most recently used).
Rates MeasureRates(Client& sdk, uint64_t count, const std::string& value) {
  std::mt19937_64 rng(11);
  std::vector<std::string> keys(kLookupKeys);
  Rates r;
  r.lookup_keys_s = kLookupKeys * Rate([&](uint64_t) {
                      for (std::string& k : keys) k = PageId(rng() % count);
                      auto l = sdk.Lookup("kv", keys);
                      if (!l.ok()) Die("Lookup", l.status());
                      if (l->prefix_hits != kLookupKeys) {
                        Die("Lookup", absl::InternalError("a key is missing"));
                      }
                    });
  const uint64_t hot = std::min(kHotBlocks, count);
  std::vector<std::string> out(kGetBatch, std::string(value.size(), '\0'));
  std::vector<GetItem> items(kGetBatch);
  auto get = [&](uint64_t op) {
    for (int k = 0; k < kGetBatch; ++k) {
      items[k].id = PageId(count - 1 - (op * kGetBatch + k) % hot);
      items[k].out = absl::MakeSpan(reinterpret_cast<std::byte*>(out[k].data()),
                                    out[k].size());
    }
    auto g = sdk.GetBatch("kv", items);
    if (!g.ok()) Die("GetBatch", g.status());
    for (const GetOutcome& o : *g) {
      if (!o.status.ok()) Die("get", o.status);
    }
  };
  for (uint64_t op = 0; op < hot / kGetBatch; ++op) get(op);
  r.get_blocks_s = kGetBatch * Rate(get);

  // Four of each, the mean.
  constexpr int kRounds = 4;
  for (int i = 0; i < kRounds; ++i) {
    r.switch_s += SecondsOf([&] {
                    auto p = sdk.SetPolicy(i % 2 == 0 ? v1::ADAPTIVE : v1::LRU);
                    if (!p.ok()) Die("SetPolicy", p.status());
                    r.switch_resident = p->resident_blocks();
                  }) /
                  kRounds;
  }
  for (int i = 0; i < kRounds; ++i) {
    // Room first (not timed), so the swap-in has blocks to bring back.
    auto out = sdk.SwapBytes(v1::SWAP_OUT, kMiB);
    if (!out.ok()) Die("swap out", out.status());
    r.swap_in_s += SecondsOf([&] {
                     auto in = sdk.SwapBytes(v1::SWAP_IN, kMiB);
                     if (!in.ok()) Die("swap in", in.status());
                   }) /
                   kRounds;
  }
  return r;
}

struct Server {
  std::unique_ptr<testing::ServerProcess> process;
  std::unique_ptr<Client> sdk;
};

Server StartServer(const std::string& dir, uint64_t blocks, uint64_t bytes) {
  testing::ServerProcess::Options so;
  so.data_dir = dir;
  so.startup_timeout = absl::Minutes(10);
  const uint64_t disk = blocks * ((bytes + 4095) / 4096 * 4096);
  so.flags = {"--ram_budget=256MiB",
              absl::StrCat("--max_swap_size=", disk / kMiB + 1024, "MiB"),
              absl::StrCat("--max_blocks=", blocks + kHotBlocks),
              "--algorithm=lru"};
  auto process = testing::ServerProcess::Start(so);
  if (!process.ok()) Die("start tensorpagerd", process.status());
  Server s;
  s.process = std::move(*process);
  s.sdk = Connect(s.process->target(), 0, true);
  return s;
}

// A fresh directory under `parent` for one run, removed when it ends.
class RunDir {
 public:
  explicit RunDir(const std::string& parent) {
    std::string path = parent + "/metadata-bench.XXXXXX";
    if (::mkdtemp(path.data()) == nullptr) {
      Die("create a directory under --data_dir",
          absl::InternalError(std::strerror(errno)));
    }
    path_ = path;
  }
  ~RunDir() {
    if (absl::GetFlag(FLAGS_keep_data)) {
      std::fprintf(stderr, "kept %s\n", path_.c_str());
      return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int Main() {
  if (absl::GetFlag(FLAGS_data_dir).empty()) {
    Die("flags", absl::InvalidArgumentError("--data_dir is required"));
  }
  const RunDir run_dir(absl::GetFlag(FLAGS_data_dir));
  const std::string& data_dir = run_dir.path();
  const uint64_t blocks = absl::GetFlag(FLAGS_blocks);
  const uint64_t small = std::min(absl::GetFlag(FLAGS_small_blocks), blocks);
  const std::string value(absl::GetFlag(FLAGS_block_bytes), '\x5a');

  std::fprintf(stderr, "reference server: %" PRIu64 " blocks\n", small);
  Rates at_small;
  {
    Server ref = StartServer(data_dir + "/small", small, value.size());
    PutAll(*ref.sdk, small, value);
    WaitIdle(ref.process->pid());
    at_small = MeasureRates(*ref.sdk, small, value);
  }

  std::fprintf(stderr, "server: %" PRIu64 " blocks\n", blocks);
  Server big = StartServer(data_dir + "/big", blocks, value.size());
  StatusOf(*big.sdk);
  const uint64_t rss_empty = RssBytes(big.process->pid());
  const Clock::time_point put_start = Clock::now();
  PutAll(*big.sdk, blocks, value);
  const double put_s =
      std::chrono::duration<double>(Clock::now() - put_start).count();
  const double idle_wait_s = WaitIdle(big.process->pid());
  std::fprintf(stderr, "server idle %.1f s after the puts\n", idle_wait_s);
  const Rates at_big = MeasureRates(*big.sdk, blocks, value);
  const v1::StatusResponse running = StatusOf(*big.sdk);
  const uint64_t rss_running = RssBytes(big.process->pid());

  // Restart: a graceful stop, then the clock runs from the start of the
  // process to the first Status answered.
  if (absl::Status s = big.process->Stop(); !s.ok()) Die("stop", s);
  big.sdk.reset();
  const Clock::time_point restart_start = Clock::now();
  if (absl::Status s = big.process->Restart(); !s.ok()) Die("restart", s);
  big.sdk = Connect(big.process->target(), 0, true);
  const v1::StatusResponse restarted = StatusOf(*big.sdk);
  const double restart_s =
      std::chrono::duration<double>(Clock::now() - restart_start).count();
  const uint64_t rss_restarted = RssBytes(big.process->pid());
  // A fresh server's RSS before any block, for the restarted figure.
  Server empty = StartServer(data_dir + "/empty", 1, value.size());
  StatusOf(*empty.sdk);
  const uint64_t rss_fresh = RssBytes(empty.process->pid());

  auto per_block = [&](uint64_t rss, uint64_t base, uint64_t ram) {
    return (static_cast<double>(rss) - base - ram) / blocks;
  };
  std::printf("metadata_bench: %" PRIu64 " blocks of %zu B, put at %.0f/s\n",
              blocks, value.size(), blocks / put_s);
  std::printf("%-34s %12s %10s %s\n", "figure", "value", "goal", "note");
  std::printf("%-34s %12.0f %10s RAM tier %.0f MiB excluded\n",
              "RSS per block, running (B)",
              per_block(rss_running, rss_empty, running.ram().used_bytes()),
              "<= 200", running.ram().used_bytes() / double(kMiB));
  std::printf("%-34s %12.0f %10s RAM tier %.0f MiB excluded\n",
              "RSS per block, after restart (B)",
              per_block(rss_restarted, rss_fresh, restarted.ram().used_bytes()),
              "<= 200", restarted.ram().used_bytes() / double(kMiB));
  std::printf("%-34s %12.2f %10s %" PRIu64 " blocks recovered\n",
              "restart to first Status (s)", restart_s, "<= 10",
              restarted.blocks_registered());
  std::printf("%-34s %12.2f %10s %.0f vs %.0f keys/s\n", "Lookup rate, big/10k",
              at_big.lookup_keys_s / at_small.lookup_keys_s, "~1",
              at_big.lookup_keys_s, at_small.lookup_keys_s);
  std::printf("%-34s %12.2f %10s %.0f vs %.0f blocks/s\n",
              "resident GetBatch rate, big/10k",
              at_big.get_blocks_s / at_small.get_blocks_s, "~1",
              at_big.get_blocks_s, at_small.get_blocks_s);
  // The switch carries the resident blocks over: per resident block, as
  // the two servers hold different numbers in RAM.
  auto per_resident = [](const Rates& r) {
    return r.switch_s /
           static_cast<double>(std::max<uint64_t>(r.switch_resident, 1));
  };
  std::printf("%-34s %12.2f %10s %.3f s (%" PRIu64
              " resident) vs %.3f s (%" PRIu64 ")\n",
              "policy switch per resident, 10k/big",
              per_resident(at_small) / per_resident(at_big), "~1",
              at_big.switch_s, at_big.switch_resident, at_small.switch_s,
              at_small.switch_resident);
  std::printf("%-34s %12.3f %10s %.3f s vs %.3f s\n",
              "swap-in of 1 MiB by bytes, 10k/big",
              at_small.swap_in_s / at_big.swap_in_s, "~1", at_big.swap_in_s,
              at_small.swap_in_s);
  return 0;
}

}  // namespace
}  // namespace tensorpager::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tensorpager::bench::Main();
}
