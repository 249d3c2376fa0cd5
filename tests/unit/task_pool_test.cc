#include "storage/base/task_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace tensorpager::base {
namespace {

TEST(TaskPoolTest, RunsEveryItemOnce) {
  TaskPool pool(4);
  EXPECT_EQ(pool.parallelism(), 4);
  std::vector<std::atomic<int>> runs(1000);
  pool.ParallelFor(runs.size(), [&](size_t i) { ++runs[i]; });
  for (const auto& r : runs) EXPECT_EQ(r.load(), 1);
  pool.ParallelFor(0, [&](size_t) { FAIL() << "no items, no calls"; });
}

TEST(TaskPoolTest, ItemsRunSideBySide) {
  TaskPool pool(4);
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  // Each item waits until all four are in: only possible when four run at
  // once (bounded, so a broken pool fails instead of hanging).
  pool.ParallelFor(4, [&](size_t) {
    const int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    for (int i = 0; i < 2000 && running.load() < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  EXPECT_EQ(peak.load(), 4);
}

TEST(TaskPoolTest, ParallelismOneRunsOnTheCaller) {
  TaskPool pool(1);
  const auto caller = std::this_thread::get_id();
  std::set<std::thread::id> threads;
  pool.ParallelFor(8,
                   [&](size_t) { threads.insert(std::this_thread::get_id()); });
  EXPECT_EQ(threads, std::set<std::thread::id>{caller});
}

TEST(TaskPoolTest, NestedAndConcurrentCallersFinish) {
  TaskPool pool(3);
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      pool.ParallelFor(
          5, [&](size_t) { pool.ParallelFor(5, [&](size_t) { ++total; }); });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 5 * 5);
}

}  // namespace
}  // namespace tensorpager::base
