#include "tests/bench/sdk_bench_common.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tensorpager::bench {

[[noreturn]] void Die(absl::string_view what, const absl::Status& s) {
  std::fprintf(stderr, "tp-sdk-bench: %s: %s\n", std::string(what).c_str(),
               s.ToString().c_str());
  std::exit(1);
}

std::vector<int64_t> ParseList(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) {
      Die("bad list", absl::InvalidArgumentError(text));
    }
    out.push_back(v);
  }
  return out;
}

std::string SizeName(uint64_t size) {
  return size >= kMiB ? absl::StrCat(size / kMiB, " MiB")
                      : absl::StrCat(size / 1024, " KiB");
}

// Runs `op(stream, i)` on `streams` threads until `seconds` pass; returns
// GiB/s over `bytes_per_op` * operations.
double Timed(int streams, double seconds, uint64_t bytes_per_op,
             const std::function<absl::Status(int, uint64_t)>& op) {
  std::atomic<uint64_t> ops{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point start;
  for (int t = 0; t < streams; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      const Clock::time_point end =
          start + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(seconds));
      uint64_t n = 0;
      for (uint64_t i = 0; Clock::now() < end; ++i, ++n) {
        if (absl::Status s = op(t, i); !s.ok()) Die("operation failed", s);
      }
      ops.fetch_add(n);
    });
  }
  while (ready.load() < streams) std::this_thread::yield();
  start = Clock::now();
  go.store(true);
  for (std::thread& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  return ops.load() * static_cast<double>(bytes_per_op) / elapsed /
         (1ull << 30);
}

std::unique_ptr<Client> Connect(const std::string& target, uint64_t host_cache,
                                bool tune_allocator) {
  ClientOptions o;
  o.cache.host_budget_bytes = host_cache;
  o.tune_allocator = tune_allocator;
  o.log_sink = [](absl::string_view) {};
  auto c = Client::Connect(target, o);
  if (!c.ok()) Die("connect", c.status());
  if (absl::Status s = (*c)->WaitUntilReady(absl::Seconds(30)); !s.ok()) {
    Die("tensorpagerd not ready", s);
  }
  return *std::move(c);
}

std::string Id(uint64_t size, uint64_t i) {
  return absl::StrCat("v", size, "-", i);
}

// Registers `count` blocks of `size` and writes them once with `streams`
// threads; returns the write figure of that pass (GiB/s).
double Fill(Client& sdk, uint64_t size, uint64_t count,
            const std::string& value, int streams) {
  for (uint64_t i = 0; i < count; ++i) {
    BlockSpec spec{Id(size, i)};
    spec.size_bytes = size;
    spec.region_type = v1::KV_CACHE;
    if (auto r = sdk.Register(spec); !r.ok()) Die("register", r.status());
  }
  std::atomic<uint64_t> next{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < streams; ++t) {
    threads.emplace_back([&] {
      for (uint64_t i = next++; i < count; i = next++) {
        if (auto w = sdk.Write(Id(size, i), value); !w.ok()) {
          Die("write", w.status());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  return count * static_cast<double>(size) / elapsed / (1ull << 30);
}

absl::Status AccessOnce(Client& sdk, uint64_t size, uint64_t index) {
  const std::string id = Id(size, index);
  {
    absl::StatusOr<BlockHandle> h = sdk.Access(id);
    if (!h.ok()) return h.status();
    if (h->size() != size) return absl::DataLossError("wrong size");
  }
  return sdk.Evict(id);
}

}  // namespace tensorpager::bench
