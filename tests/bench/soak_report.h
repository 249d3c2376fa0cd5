// The soak's report: throughput, latency per RPC, outcomes, the server's
// RSS over time and the RSS rule (see soak.cc).
#ifndef TENSORPAGER_TESTS_BENCH_SOAK_REPORT_H_
#define TENSORPAGER_TESTS_BENCH_SOAK_REPORT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tensorpager/v1/tensorpager.pb.h"
#include "tests/bench/soak_stats.h"

namespace tensorpager::soak {

// What the SDK clients logged, by distinct line.
class SdkLog {
 public:
  std::function<void(absl::string_view)> Sink();
  std::map<std::string, uint64_t> lines() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> lines_;
};

class Report {
 public:
  explicit Report(const SoakStats* stats) : stats_(stats) {}

  void BeginLifetime(uint64_t life, double t);
  // Memory in KiB, as /proc/<pid>/status gives it.
  void Sample(uint64_t life, double t, uint64_t vm_rss, uint64_t rss_anon,
              uint64_t rss_file, uint64_t rss_shmem, uint64_t heap,
              uint64_t threads);
  void ProgressLine(double t, uint64_t vm_rss, uint64_t rss_shmem);
  void FinalStatus(const v1::StatusResponse& status) { final_ = status; }
  // A line for the report's head.
  void Note(std::string line) { notes_.push_back(std::move(line)); }

  // Prints everything; returns whether the run passed.
  // `warmup_end`: seconds into the run where the first server's RSS
  // starts to count.
  bool Print(double elapsed, double warmup_end, double rss_tolerance,
             double max_transient_fraction, bool shared_memory,
             const SdkLog& sdk_log, const std::vector<std::string>& failures,
             const std::string& rss_csv) const;

 private:
  struct RssSample {
    uint64_t life;
    double t;
    uint64_t vm_rss, rss_anon, rss_file, rss_shmem, heap, threads;
    uint64_t gated() const { return vm_rss - rss_shmem; }
  };
  // Describes one lifetime's RSS after `from` (seconds into the run) in
  // `out`; false when it grew by more than `tolerance` (< 0: not judged),
  // or had too few samples to tell (`*judged` false).
  bool CheckLifetime(uint64_t life, double from, double tolerance,
                     std::string* out, bool* judged) const;

  const SoakStats* stats_;
  std::map<uint64_t, double> lifetime_start_;
  std::vector<RssSample> samples_;
  v1::StatusResponse final_;
  std::vector<std::string> notes_;
};

}  // namespace tensorpager::soak

#endif  // TENSORPAGER_TESTS_BENCH_SOAK_REPORT_H_
