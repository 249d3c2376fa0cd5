#include "tests/bench/soak_stats.h"

#include <bit>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tensorpager::soak {
namespace {

// After a restart, how long UNAVAILABLE counts as the channels' reconnect
// backoff (gRPC's default backoff reaches a few seconds after a short
// outage; the SDK's channels keep that default).
constexpr Clock::duration kReconnectGrace = std::chrono::seconds(20);
constexpr size_t kMaxSamples = 40;
thread_local uint64_t transients_on_thread = 0;

constexpr const char* kNames[kRpcCount] = {
    "RegisterBlock",
    "WriteBlock",
    "WriteBlockShared",
    "Access",
    "Access(touch_only)",
    "AccessShared",
    "Swap(OUT)",
    "Swap(IN)",
    "Pin",
    "Unpin",
    "UnregisterBlock",
    "GetBlock",
    "ListBlocks",
    "Status",
    "ReportAccesses",
    "WatchPressure",
    "AttachSharedMemory",
    "DetachSharedMemory",
    "sdk.Register",
    "sdk.Write",
    "sdk.Read",
    "sdk.Access+Evict",
    "sdk.Unregister",
    "bad.invalid_id",
    "bad.duplicate_id",
    "bad.zero_size",
    "bad.oversize_chunk",
    "bad.write_range",
    "bad.read_range",
    "bad.chunk_bytes",
    "bad.unknown_block",
    "bad.unwritten_block",
    "bad.swap_request",
    "bad.swap_pinned",
    "bad.list_token",
    "bad.segment",
    "bad.shared_range",
    "bad.attach",
};

}  // namespace

uint64_t TransientsOnThisThread() { return transients_on_thread; }

const char* RpcName(Rpc rpc) { return kNames[static_cast<int>(rpc)]; }

bool IsBadInput(Rpc rpc) { return rpc >= Rpc::kBadId; }

std::string CodeName(grpc::StatusCode code) {
  // gRPC's codes are absl's, number for number.
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

void LatencyHistogram::Record(uint64_t micros) {
  int index;
  if (micros < kSub) {
    index = static_cast<int>(micros);
  } else {
    const int e = std::bit_width(micros) - 1;  // >= 5
    const int sub = static_cast<int>((micros >> (e - 5)) & (kSub - 1));
    index = std::min((e - 4) * kSub + sub, kBuckets - 1);
  }
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t LatencyHistogram::Quantile(double q) const {
  const uint64_t n = count();
  if (n == 0) return 0;
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(q * n));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      if (i < kSub) return i;
      const int e = i / kSub + 4;
      return (static_cast<uint64_t>(kSub + i % kSub)) << (e - 5);
    }
  }
  return 0;
}

void ServerLife::BeginRestart() { epoch_.fetch_add(1); }

void ServerLife::EndRestart() {
  last_end_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                         Clock::now().time_since_epoch())
                         .count());
  epoch_.fetch_add(1);
}

bool ServerLife::RecentlyRestarted(Clock::duration grace) const {
  const int64_t end = last_end_ns_.load();
  if (end == 0) return false;
  const Clock::time_point at{std::chrono::nanoseconds(end)};
  return Clock::now() - at < grace;
}

void SoakStats::Unexpected(const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (samples_.size() < kMaxSamples) samples_.push_back(what);
}

std::vector<std::string> SoakStats::unexpected_samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_;
}

uint64_t SoakStats::total(std::atomic<uint64_t> RpcStats::*field) const {
  uint64_t n = 0;
  for (const RpcStats& r : rpcs_) n += (r.*field).load();
  return n;
}

CallRecorder::CallRecorder(SoakStats* stats, const ServerLife* life, Rpc rpc,
                           absl::string_view who)
    : stats_(stats),
      life_(life),
      rpc_(rpc),
      who_(who),
      start_(Clock::now()),
      start_epoch_(life->epoch()) {}

void CallRecorder::Finish() {
  if (finished_) return;
  finished_ = true;
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          Clock::now() - start_)
                          .count();
  stats_->at(rpc_).latency.Record(static_cast<uint64_t>(micros));
}

bool CallRecorder::IsTransient(
    const grpc::Status& s,
    std::initializer_list<grpc::StatusCode> if_restarted) const {
  const grpc::StatusCode code = s.error_code();
  if (code == grpc::StatusCode::RESOURCE_EXHAUSTED) return true;
  if (code == also_transient_) return true;
  const bool restarted = life_->Overlapped(start_epoch_);
  if (code == grpc::StatusCode::UNAVAILABLE ||
      code == grpc::StatusCode::CANCELLED) {
    return restarted || life_->RecentlyRestarted(kReconnectGrace);
  }
  if (!restarted) return false;
  for (grpc::StatusCode c : if_restarted) {
    if (c == code) return true;
  }
  return false;
}

void CallRecorder::Fail(const grpc::Status& s, absl::string_view detail,
                        absl::string_view why) {
  stats_->at(rpc_).unexpected.fetch_add(1);
  stats_->Unexpected(absl::StrCat(
      absl::StrFormat("%.1f s: ", stats_->SecondsSinceStart()), RpcName(rpc_),
      " [", who_, ", server lifetime ", ServerLife::LifetimeOf(start_epoch_),
      "] ", detail, ": ", why,
      s.ok() ? ""
             : absl::StrCat(" -> ", CodeName(s.error_code()), ": ",
                            s.error_message())));
}

bool CallRecorder::Valid(const grpc::Status& s, absl::string_view detail,
                         std::initializer_list<grpc::StatusCode> if_restarted,
                         uint64_t bytes) {
  Finish();
  transient_ = false;
  RpcStats& r = stats_->at(rpc_);
  if (s.ok()) {
    r.ok.fetch_add(1);
    r.bytes.fetch_add(bytes);
    return true;
  }
  r.codes[static_cast<int>(s.error_code()) % 17].fetch_add(1);
  if (IsTransient(s, if_restarted)) {
    transient_ = true;
    ++transients_on_thread;
    r.transient.fetch_add(1);
  } else {
    Fail(s, detail, "unexpected error on a valid call");
  }
  return false;
}

bool CallRecorder::Bad(const grpc::Status& s, grpc::StatusCode want,
                       absl::string_view detail) {
  Finish();
  transient_ = false;
  RpcStats& r = stats_->at(rpc_);
  if (!s.ok()) r.codes[static_cast<int>(s.error_code()) % 17].fetch_add(1);
  if (s.error_code() == want) {
    r.expected.fetch_add(1);
    return true;
  }
  if (!s.ok() && IsTransient(s, {})) {
    transient_ = true;
    ++transients_on_thread;
    r.transient.fetch_add(1);
    return false;
  }
  Fail(s, detail, absl::StrCat("bad input must fail with ", CodeName(want)));
  return false;
}

void CallRecorder::Wrong(absl::string_view what) {
  Finish();
  // Counted once as unexpected: the call itself was counted ok.
  Fail(grpc::Status::OK, "answer", what);
}

}  // namespace tensorpager::soak
