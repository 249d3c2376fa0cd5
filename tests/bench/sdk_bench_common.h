// What tp-sdk-bench's sections share: timing, connecting, filling the
// server with blocks, and reading them back through the SDK.
#ifndef TENSORPAGER_TESTS_BENCH_SDK_BENCH_COMMON_H_
#define TENSORPAGER_TESTS_BENCH_SDK_BENCH_COMMON_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tensorpager/client.h"

namespace tensorpager::bench {

using Clock = std::chrono::steady_clock;
inline constexpr uint64_t kMiB = 1 << 20;

[[noreturn]] void Die(absl::string_view what, const absl::Status& s);
// "1,4,8" -> {1, 4, 8}; dies on anything else.
std::vector<int64_t> ParseList(const std::string& text);
// "4 MiB", "64 KiB".
std::string SizeName(uint64_t size);

// Runs `op(stream, i)` on `streams` threads until `seconds` pass; returns
// GiB/s over `bytes_per_op` * operations.
double Timed(int streams, double seconds, uint64_t bytes_per_op,
             const std::function<absl::Status(int, uint64_t)>& op);

std::unique_ptr<Client> Connect(const std::string& target, uint64_t host_cache,
                                bool tune_allocator);

// The id of block `i` of the `size` set.
std::string Id(uint64_t size, uint64_t i);

// Registers `count` blocks of `size` and writes them once with `streams`
// threads; returns the write figure of that pass (GiB/s).
double Fill(Client& sdk, uint64_t size, uint64_t count,
            const std::string& value, int streams);

// Reads block `index` through Access and drops the local copy, so every
// read fetches from the server: this measures the data path, not the
// local cache.
absl::Status AccessOnce(Client& sdk, uint64_t size, uint64_t index);

}  // namespace tensorpager::bench

#endif  // TENSORPAGER_TESTS_BENCH_SDK_BENCH_COMMON_H_
