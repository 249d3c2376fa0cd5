// The soak's bookkeeping (see soak.cc): a latency histogram and outcome
// counters per RPC, the server's lifetimes (restarts) and the rules that
// sort every answer into ok, expected (a bad input refused with its
// precise code), transient (documented: limits, restarts) or unexpected.
#ifndef TENSORPAGER_TESTS_BENCH_SOAK_STATS_H_
#define TENSORPAGER_TESTS_BENCH_SOAK_STATS_H_

#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tensorpager::soak {

using Clock = std::chrono::steady_clock;

// Every kind of call the soak makes, one row of the report each. "sdk.*"
// rows go through the C++ SDK (which may use the shared-memory path), the
// others through raw gRPC stubs; "bad.*" rows are bad inputs.
enum class Rpc {
  kRegisterBlock,
  kWriteBlock,
  kWriteBlockShared,
  kAccess,
  kAccessTouch,
  kAccessShared,
  kSwapOut,
  kSwapIn,
  kPin,
  kUnpin,
  kUnregisterBlock,
  kGetBlock,
  kListBlocks,
  kStatus,
  kReportAccesses,
  kWatchPressure,
  kAttachSharedMemory,
  kDetachSharedMemory,
  kSdkRegister,
  kSdkWrite,
  kSdkRead,
  kSdkAccess,
  kSdkUnregister,
  // Bad inputs: each answer must carry exactly the expected code.
  kBadId,
  kBadDuplicate,
  kBadZeroSize,
  kBadOversizeChunk,
  kBadWriteRange,
  kBadReadRange,
  kBadChunkBytes,
  kBadUnknownBlock,
  kBadUnwritten,
  kBadSwapRequest,
  kBadSwapPinned,
  kBadListToken,
  kBadSegment,
  kBadSharedRange,
  kBadAttach,
  kCount
};
constexpr int kRpcCount = static_cast<int>(Rpc::kCount);
const char* RpcName(Rpc rpc);
bool IsBadInput(Rpc rpc);

// Microseconds in log-linear buckets (32 per power of two, about 3%).
class LatencyHistogram {
 public:
  void Record(uint64_t micros);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Lower bound of the bucket holding quantile q (0 < q <= 1), in µs.
  uint64_t Quantile(double q) const;

 private:
  static constexpr int kSub = 32;
  static constexpr int kBuckets = 40 * kSub;
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
};

struct RpcStats {
  LatencyHistogram latency;
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> expected{0};   // bad input, right code
  std::atomic<uint64_t> transient{0};  // documented transient error
  std::atomic<uint64_t> unexpected{0};
  std::atomic<uint64_t> bytes{0};  // block bytes moved by ok calls
  std::array<std::atomic<uint64_t>, 17> codes{};  // non-OK answers by code
};

// The server's lifetimes. The epoch is even while a server runs and odd
// while it restarts; lifetime() numbers the servers from 1.
class ServerLife {
 public:
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // 1 for the first server; while a restart runs, the one coming up.
  static uint64_t LifetimeOf(uint64_t epoch) { return (epoch + 1) / 2 + 1; }
  uint64_t lifetime() const { return LifetimeOf(epoch()); }
  void BeginRestart();
  void EndRestart();
  // A call that began at `start_epoch` and has just ended met a restart:
  // it began or ended while one ran, or one began in between.
  bool Overlapped(uint64_t start_epoch) const {
    return (start_epoch & 1) != 0 || epoch() != start_epoch;
  }
  // Within `grace` of the last restart's end: channels may still be
  // reconnecting (gRPC backs off between connection attempts).
  bool RecentlyRestarted(Clock::duration grace) const;

 private:
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int64_t> last_end_ns_{0};  // Clock, 0: never restarted
};

class SoakStats {
 public:
  SoakStats() : start_(Clock::now()) {}
  double SecondsSinceStart() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }
  RpcStats& at(Rpc rpc) { return rpcs_[static_cast<int>(rpc)]; }
  const RpcStats& at(Rpc rpc) const { return rpcs_[static_cast<int>(rpc)]; }
  // Keeps the first few descriptions of unexpected outcomes for the report.
  void Unexpected(const std::string& what);
  std::vector<std::string> unexpected_samples() const;
  uint64_t total(std::atomic<uint64_t> RpcStats::*field) const;
  // Blocks a restart left TIER_LOST (written, only in RAM at SIGTERM).
  std::atomic<uint64_t> lost_after_restart{0};
  // Checked reads: block bytes compared with what was written.
  std::atomic<uint64_t> verified_reads{0};

 private:
  std::array<RpcStats, kRpcCount> rpcs_;
  const Clock::time_point start_;
  mutable std::mutex mu_;
  std::vector<std::string> samples_;
};

// One call being timed. Valid() and Bad() record it and say how it went.
class CallRecorder {
 public:
  CallRecorder(SoakStats* stats, const ServerLife* life, Rpc rpc,
               absl::string_view who);
  uint64_t start_epoch() const { return start_epoch_; }
  // A call on valid input. OK: true. Otherwise the error is transient when
  // it is RESOURCE_EXHAUSTED (a server limit), UNAVAILABLE or CANCELLED
  // around a restart, or one of `if_restarted` for a call that overlapped a
  // restart; anything else is unexpected. `detail` names the input.
  bool Valid(const grpc::Status& s, absl::string_view detail,
             std::initializer_list<grpc::StatusCode> if_restarted = {},
             uint64_t bytes = 0);
  // A bad input: it must fail with `want` (transient errors as above).
  // Returns whether the answer was `want`.
  bool Bad(const grpc::Status& s, grpc::StatusCode want,
           absl::string_view detail);
  // A valid call whose answer was OK but wrong (bytes, sizes, listings).
  void Wrong(absl::string_view what);
  // Also transient for this call whatever the restarts (a documented
  // "retry" answer of the RPC).
  void AlsoTransient(grpc::StatusCode code) { also_transient_ = code; }
  // Whether the last Valid/Bad answer was classed transient.
  bool transient() const { return transient_; }
  bool overlapped() const { return life_->Overlapped(start_epoch_); }

 private:
  void Finish();
  bool IsTransient(const grpc::Status& s,
                   std::initializer_list<grpc::StatusCode> if_restarted) const;
  void Fail(const grpc::Status& s, absl::string_view detail,
            absl::string_view why);

  SoakStats* stats_;
  const ServerLife* life_;
  Rpc rpc_;
  std::string who_;
  Clock::time_point start_;
  uint64_t start_epoch_;
  bool finished_ = false;
  bool transient_ = false;
  grpc::StatusCode also_transient_ = grpc::StatusCode::OK;
};

std::string CodeName(grpc::StatusCode code);
// Transient answers this thread has seen (a client backs off after one).
uint64_t TransientsOnThisThread();

}  // namespace tensorpager::soak

#endif  // TENSORPAGER_TESTS_BENCH_SOAK_STATS_H_
