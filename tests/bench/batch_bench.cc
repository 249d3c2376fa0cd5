// tp-batch-bench: the C++ SDK's batch get (Client::GetBatch) against a
// running tensorpagerd, as the reference of tests/bench/py_bench.py's
// "Python batch get vs C++" row. Puts `pages` blocks of `page_bytes` once,
// then reads them as one batch into buffers allocated once, over and over
// for `seconds`, from one thread; prints one line:
//   gib_per_s=<GiB/s> batches=<n> seconds=<s> path=<shm|tcp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "tensorpager/client.h"

ABSL_FLAG(std::string, target, "", "tensorpagerd host:port; required");
ABSL_FLAG(std::string, ns, "tp-batch-bench", "Namespace of the pages");
ABSL_FLAG(int, pages, 128, "Blocks per batch");
ABSL_FLAG(int, page_bytes, 64 << 10, "Bytes per block");
ABSL_FLAG(double, seconds, 1.0, "Measuring time");
ABSL_FLAG(uint64_t, shared_memory_bytes, 64ull << 20,
          "ClientOptions::shared_memory_bytes (0: gRPC messages only)");
ABSL_FLAG(bool, tune_allocator, true, "ClientOptions::tune_allocator");

namespace tensorpager::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "tp-batch-bench: %s: %s\n", what.c_str(),
               s.ToString().c_str());
  std::exit(1);
}

template <typename Outcome>
void CheckAll(const std::string& what,
              const absl::StatusOr<std::vector<Outcome>>& outcomes) {
  if (!outcomes.ok()) Die(what, outcomes.status());
  for (const Outcome& o : *outcomes) {
    if (!o.status.ok()) Die(what, o.status);
  }
}

int Main() {
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) {
    Die("flags", absl::InvalidArgumentError("--target is required"));
  }
  const std::string ns = absl::GetFlag(FLAGS_ns);
  const int pages = absl::GetFlag(FLAGS_pages);
  const size_t page_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_page_bytes));
  ClientOptions options;
  options.shared_memory_bytes = absl::GetFlag(FLAGS_shared_memory_bytes);
  options.tune_allocator = absl::GetFlag(FLAGS_tune_allocator);
  options.log_sink = [](absl::string_view) {};
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(target, options);
  if (!client.ok()) Die("connect", client.status());
  Client& sdk = **client;
  if (absl::Status s = sdk.WaitUntilReady(absl::Seconds(30)); !s.ok()) {
    Die("tensorpagerd not ready", s);
  }

  std::vector<std::string> ids;
  std::string value(page_bytes, '\0');
  for (size_t i = 0; i < page_bytes; ++i) value[i] = static_cast<char>(i * 7);
  std::vector<PutItem> puts(pages);
  for (int i = 0; i < pages; ++i) {
    ids.push_back(absl::StrCat("page-", page_bytes, "-", i));
    puts[i].id = ids.back();
    puts[i].data = absl::MakeConstSpan(
        reinterpret_cast<const std::byte*>(value.data()), value.size());
    puts[i].region_type = v1::KV_CACHE;
  }
  CheckAll("put", sdk.PutBatch(ns, puts));

  std::vector<std::vector<std::byte>> buffers(
      pages, std::vector<std::byte>(page_bytes));
  std::vector<GetItem> gets(pages);
  for (int i = 0; i < pages; ++i) {
    gets[i].id = ids[i];
    gets[i].out = absl::MakeSpan(buffers[i]);
  }
  CheckAll("warm-up get", sdk.GetBatch(ns, gets));

  const auto window =
      std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds));
  const Clock::time_point start = Clock::now();
  uint64_t batches = 0;
  while (Clock::now() - start < window) {
    CheckAll("get", sdk.GetBatch(ns, gets));
    ++batches;
  }
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  const double gib = static_cast<double>(batches) * pages * page_bytes /
                     static_cast<double>(1ull << 30);
  std::printf("gib_per_s=%.4f batches=%llu seconds=%.3f path=%s\n",
              gib / elapsed, static_cast<unsigned long long>(batches), elapsed,
              sdk.batch_path().shared_memory ? "shm" : "tcp");
  if (absl::StatusOr<UnregisterOutcome> r = sdk.UnregisterPrefix(ns, "page-");
      !r.ok()) {
    Die("cleanup", r.status());
  }
  return 0;
}

}  // namespace
}  // namespace tensorpager::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tensorpager::bench::Main();
}
