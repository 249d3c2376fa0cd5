#include "storage/extent_reclaimer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

namespace tensorpager::storage {
namespace {

constexpr uint64_t kA = 4096;

// Records each punch; can hold punches until released, and can answer
// as a filesystem without holes does.
class PunchRecorder final : public IoEngine {
 public:
  std::string_view name() const override { return "recorder"; }
  bool direct_io() const override { return true; }
  void TransferBatch(absl::Span<IoRequest>) override {}
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Reserve(uint64_t) override { return absl::OkStatus(); }
  uint64_t file_size() const override { return 1 << 30; }
  absl::StatusOr<bool> Discard(uint64_t offset, uint64_t length) override {
    std::unique_lock<std::mutex> lock(mu_);
    released_.wait(lock, [&] { return !hold_; });
    punches_.push_back({offset, length});
    return can_punch_;
  }

  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    released_.notify_all();
  }
  void CannotPunch() {
    std::lock_guard<std::mutex> lock(mu_);
    can_punch_ = false;
  }
  std::vector<Extent> punches() {
    std::lock_guard<std::mutex> lock(mu_);
    return punches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable released_;
  bool hold_ = false;
  bool can_punch_ = true;
  std::vector<Extent> punches_;
};

TEST(ExtentReclaimerTest, PunchesNeighboursTogetherThenFrees) {
  PunchRecorder engine;
  ExtentAllocator allocator(64 * kA, kA);
  std::vector<Extent> e;
  for (int i = 0; i < 5; ++i) e.push_back(*allocator.Allocate(kA));
  ExtentReclaimer reclaimer(&engine, &allocator);
  // [0, 2) and [3, 5) in shuffled order: two punches; [2] stays allocated.
  reclaimer.Free({e[4], e[0], e[3], e[1]});
  reclaimer.Drain();
  EXPECT_EQ(engine.punches(),
            (std::vector<Extent>{{0, 2 * kA}, {3 * kA, 2 * kA}}));
  const AllocatorStats s = allocator.Stats();
  EXPECT_EQ(s.used_bytes, kA);
  EXPECT_EQ(s.extents, 1u);
  EXPECT_EQ(reclaimer.pending_bytes(), 0u);
}

TEST(ExtentReclaimerTest, QueuedExtentsCountAsFreeButAreNotReused) {
  PunchRecorder engine;
  ExtentAllocator allocator(4 * kA, kA);
  const Extent a = *allocator.Allocate(2 * kA);
  const Extent b = *allocator.Allocate(2 * kA);
  ExtentReclaimer reclaimer(&engine, &allocator);
  engine.Hold();
  reclaimer.Free({a});
  // Users see the space back at once...
  AllocatorStats s = reclaimer.Stats();
  EXPECT_EQ(s.used_bytes, 2 * kA);
  EXPECT_EQ(s.free_bytes, 2 * kA);
  EXPECT_EQ(s.extents, 1u);
  EXPECT_EQ(reclaimer.pending_bytes(), 2 * kA);
  // ...but the allocator cannot hand it out before its bytes are punched.
  EXPECT_EQ(allocator.Allocate(kA).status().code(),
            absl::StatusCode::kResourceExhausted);
  engine.Release();
  reclaimer.Drain();
  s = reclaimer.Stats();
  EXPECT_EQ(s.used_bytes, 2 * kA);
  EXPECT_EQ(s.extents, 1u);
  EXPECT_TRUE(allocator.Allocate(2 * kA).ok());
  reclaimer.Free({b});
}

TEST(ExtentReclaimerTest, WithoutHolesStopsPunchingButStillFrees) {
  PunchRecorder engine;
  engine.CannotPunch();
  ExtentAllocator allocator(8 * kA, kA);
  const Extent a = *allocator.Allocate(kA);
  const Extent b = *allocator.Allocate(kA);
  const Extent c = *allocator.Allocate(kA);
  ExtentReclaimer reclaimer(&engine, &allocator);
  reclaimer.Free({a});
  reclaimer.Drain();
  reclaimer.Free({c});
  reclaimer.Drain();
  EXPECT_EQ(engine.punches().size(), 1u);  // asked once, then never again
  EXPECT_EQ(allocator.Stats().used_bytes, kA);
  reclaimer.Free({b});
}

TEST(ExtentReclaimerTest, StoppingPunchesAndFreesWhatIsQueued) {
  PunchRecorder engine;
  ExtentAllocator allocator(8 * kA, kA);
  const Extent a = *allocator.Allocate(kA);
  {
    ExtentReclaimer reclaimer(&engine, &allocator);
    reclaimer.Free({a});
  }
  EXPECT_EQ(engine.punches(), (std::vector<Extent>{a}));
  EXPECT_EQ(allocator.Stats().used_bytes, 0u);
}

}  // namespace
}  // namespace tensorpager::storage
