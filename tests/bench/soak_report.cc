#include "tests/bench/soak_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tensorpager::soak {
namespace {

double MiB(uint64_t kib) { return kib / 1024.0; }
double Ms(uint64_t micros) { return micros / 1000.0; }

bool IsSharedMemoryRpc(Rpc r) {
  return r == Rpc::kWriteBlockShared || r == Rpc::kAccessShared ||
         r == Rpc::kAttachSharedMemory || r == Rpc::kDetachSharedMemory ||
         r == Rpc::kBadAttach || r == Rpc::kBadSharedRange;
}

}  // namespace

std::function<void(absl::string_view)> SdkLog::Sink() {
  return [this](absl::string_view line) {
    // "I2026-01-01T00:00:00.000 tensorpager-sdk: ...": the time goes.
    const size_t space = line.find(' ');
    if (space != absl::string_view::npos && space < 32) {
      line.remove_prefix(space + 1);
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++lines_[std::string(line.substr(0, 300))];
  };
}

std::map<std::string, uint64_t> SdkLog::lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

void Report::BeginLifetime(uint64_t life, double t) {
  lifetime_start_[life] = t;
}

void Report::Sample(uint64_t life, double t, uint64_t vm_rss, uint64_t rss_anon,
                    uint64_t rss_file, uint64_t rss_shmem, uint64_t heap,
                    uint64_t threads) {
  samples_.push_back(
      RssSample{life, t, vm_rss, rss_anon, rss_file, rss_shmem, heap, threads});
}

void Report::ProgressLine(double t, uint64_t vm_rss, uint64_t rss_shmem) {
  std::printf(
      "soak: %4.0f s  calls ok %llu  transient %llu  unexpected %llu  "
      "server VmRSS %.1f MiB (shmem %.1f MiB)\n",
      t, static_cast<unsigned long long>(stats_->total(&RpcStats::ok)),
      static_cast<unsigned long long>(stats_->total(&RpcStats::transient)),
      static_cast<unsigned long long>(stats_->total(&RpcStats::unexpected)),
      MiB(vm_rss), MiB(rss_shmem));
  std::fflush(stdout);
}

bool Report::CheckLifetime(uint64_t life, double from, double tolerance,
                           std::string* out, bool* judged) const {
  std::vector<const RssSample*> after;
  double end = lifetime_start_.at(life);
  for (const RssSample& s : samples_) {
    if (s.life != life) continue;
    end = s.t;
    if (s.t >= from) after.push_back(&s);
  }
  const double start = lifetime_start_.at(life);
  *judged = after.size() >= 5;
  if (!*judged) {
    absl::StrAppendFormat(out,
                          "  lifetime %d: %.0f-%.0f s, %d samples from "
                          "%.0f s: too few to tell\n",
                          life, start, end, after.size(), from);
    return false;
  }
  const RssSample& first = *after.front();
  const RssSample& last = *after.back();
  uint64_t max_gated = 0, max_vm = 0;
  double max_at = 0;
  for (const RssSample* s : after) {
    if (s->gated() > max_gated) {
      max_gated = s->gated();
      max_at = s->t;
    }
    max_vm = std::max(max_vm, s->vm_rss);
  }
  // Steady state: the mean of the last fifth of the samples against the
  // mean of the first fifth. Single samples swing by a few percent with
  // the buffers in flight at that second (threads, staging), so comparing
  // one high sample with one low one would judge noise, not growth.
  const size_t window = std::max<size_t>(after.size() / 5, 1);
  auto mean = [&](size_t begin) {
    double sum = 0;
    for (size_t i = begin; i < begin + window; ++i) sum += after[i]->gated();
    return sum / static_cast<double>(window);
  };
  const double early = mean(0);
  const double late = mean(after.size() - window);
  const bool flat = late <= early * (1 + tolerance);
  const char* verdict = tolerance < 0 ? "" : flat ? "flat" : "GREW";
  absl::StrAppendFormat(
      out,
      "  lifetime %d: %.0f-%.0f s; %d samples from %.0f s\n"
      "    VmRSS-RssShmem: mean of the first %d samples %.1f MiB, of the last "
      "%d %.1f MiB (%+.1f%%)  %s\n",
      life, start, end, after.size(), first.t, window, MiB(early), window,
      MiB(late), 100.0 * (late / early - 1), verdict);
  absl::StrAppendFormat(
      out,
      "    VmRSS-RssShmem: first %.1f MiB, max %.1f MiB at %.0f s (%+.1f%%), "
      "last %.1f MiB\n"
      "    VmRSS:          first %.1f MiB, max %.1f MiB (%+.1f%%), last "
      "%.1f MiB; [heap] %.1f -> %.1f MiB; threads %d..%d\n",
      MiB(first.gated()), MiB(max_gated), max_at,
      100.0 * (double(max_gated) / first.gated() - 1), MiB(last.gated()),
      MiB(first.vm_rss), MiB(max_vm),
      100.0 * (double(max_vm) / first.vm_rss - 1), MiB(last.vm_rss),
      MiB(first.heap), MiB(last.heap), first.threads, last.threads);
  return flat;
}

bool Report::Print(double elapsed, double warmup_end, double rss_tolerance,
                   double max_transient_fraction, bool shared_memory,
                   const SdkLog& sdk_log,
                   const std::vector<std::string>& failures_in,
                   const std::string& rss_csv) const {
  std::vector<std::string> failures = failures_in;
  uint64_t calls = 0, ok = 0, valid = 0, transient = 0, unexpected = 0;
  uint64_t read_bytes = 0, written_bytes = 0;
  std::string table =
      absl::StrFormat("%-20s %9s %9s %9s %9s %10s %8s %8s %8s  %s\n", "call",
                      "calls", "ok", "expected", "transient", "unexpected",
                      "ok/s", "p50 ms", "p99 ms", "non-OK codes");
  for (int i = 0; i < kRpcCount; ++i) {
    const Rpc rpc = static_cast<Rpc>(i);
    const RpcStats& r = stats_->at(rpc);
    const uint64_t n = r.latency.count();
    calls += n;
    ok += r.ok;
    transient += r.transient;
    unexpected += r.unexpected;
    if (!IsBadInput(rpc)) valid += n;
    if (rpc == Rpc::kAccess || rpc == Rpc::kAccessShared ||
        rpc == Rpc::kSdkRead || rpc == Rpc::kSdkAccess) {
      read_bytes += r.bytes;
    }
    if (rpc == Rpc::kWriteBlock || rpc == Rpc::kWriteBlockShared ||
        rpc == Rpc::kSdkWrite) {
      written_bytes += r.bytes;
    }
    std::string codes;
    for (int c = 1; c < 17; ++c) {
      if (const uint64_t k = r.codes[c]; k > 0) {
        absl::StrAppend(&codes, CodeName(static_cast<grpc::StatusCode>(c)), "x",
                        k, " ");
      }
    }
    table += absl::StrFormat(
        "%-20s %9d %9d %9d %9d %10d %8.1f %8.2f %8.2f  %s\n", RpcName(rpc), n,
        r.ok.load(), r.expected.load(), r.transient.load(), r.unexpected.load(),
        r.ok / elapsed, Ms(r.latency.Quantile(0.5)),
        Ms(r.latency.Quantile(0.99)), codes);
    // Coverage: every kind of call must have worked (or, for bad inputs,
    // been refused as it must) at least once.
    if (IsSharedMemoryRpc(rpc) && !shared_memory) continue;
    if (IsBadInput(rpc) ? r.expected == 0 : r.ok == 0) {
      failures.push_back(absl::StrCat(
          RpcName(rpc), " never ",
          IsBadInput(rpc) ? "got its expected error" : "succeeded"));
    }
  }
  if (unexpected > 0) {
    failures.push_back(absl::StrCat(unexpected, " unexpected outcome(s)"));
  }
  const double transient_share =
      valid == 0 ? 0 : static_cast<double>(transient) / valid;
  if (transient_share > max_transient_fraction) {
    failures.push_back(
        absl::StrFormat("%.1f%% of calls failed transiently (limit %.1f%%)",
                        100 * transient_share, 100 * max_transient_fraction));
  }

  // The rule: the first server, after warm-up. The restarted ones (the
  // restart phase) are described from their start, not judged.
  std::string rss;
  for (const auto& [life, start] : lifetime_start_) {
    bool judged = false;
    const bool first = life == lifetime_start_.begin()->first;
    const bool flat = CheckLifetime(life, first ? warmup_end : start,
                                    first ? rss_tolerance : -1, &rss, &judged);
    if (first && !judged) {
      failures.push_back("too few RSS samples after warm-up to judge");
    } else if (first && !flat) {
      failures.push_back(
          absl::StrFormat("server RSS grew by more than %.0f%% after warm-up",
                          100 * rss_tolerance));
    }
    if (!first) {
      absl::StrAppend(&rss, "    (restart phase: not judged)\n");
    }
  }

  std::printf("\n== soak report: %.1f s\n", elapsed);
  std::printf(
      "throughput: %llu calls (%.0f/s), %llu ok (%.0f/s); block bytes "
      "written %.1f MiB (%.1f MiB/s), read %.1f MiB (%.1f MiB/s); %llu "
      "reads checked byte for byte\n",
      static_cast<unsigned long long>(calls), calls / elapsed,
      static_cast<unsigned long long>(ok), ok / elapsed,
      written_bytes / 1048576.0, written_bytes / 1048576.0 / elapsed,
      read_bytes / 1048576.0, read_bytes / 1048576.0 / elapsed,
      static_cast<unsigned long long>(stats_->verified_reads.load()));
  std::printf(
      "transient errors: %llu (%.2f%% of valid calls); blocks found lost "
      "after a restart (only in RAM at SIGTERM): %llu\n",
      static_cast<unsigned long long>(transient), 100 * transient_share,
      static_cast<unsigned long long>(stats_->lost_after_restart.load()));
  for (const std::string& n : notes_) std::printf("%s\n", n.c_str());
  std::printf("\n%s\n", table.c_str());
  std::printf(
      "server RSS (rule: in the first server's lifetime, from %.0f s on, "
      "the mean VmRSS-RssShmem of the last fifth of the samples within "
      "%.0f%% of the first fifth's):\n%s\n",
      warmup_end, 100 * rss_tolerance, rss.c_str());
  std::printf(
      "server RSS over time (MiB; [heap]: glibc's main arena, within "
      "RssAnon):\n  %6s %4s %8s %8s %8s %8s %8s %7s\n",
      "t s", "life", "VmRSS", "RssAnon", "RssFile", "RssShmem", "[heap]",
      "threads");
  for (size_t i = 0; i < samples_.size(); ++i) {
    const RssSample& s = samples_[i];
    const bool boundary = i + 1 == samples_.size() ||
                          samples_[i + 1].life != s.life || i == 0 ||
                          samples_[i - 1].life != s.life;
    if (i % 10 != 0 && !boundary) continue;
    std::printf("  %6.0f %4d %8.1f %8.1f %8.1f %8.1f %8.1f %7d\n", s.t,
                static_cast<int>(s.life), MiB(s.vm_rss), MiB(s.rss_anon),
                MiB(s.rss_file), MiB(s.rss_shmem), MiB(s.heap),
                static_cast<int>(s.threads));
  }
  if (!rss_csv.empty()) {
    std::ofstream csv(rss_csv);
    csv << "t_s,lifetime,vm_rss_kib,rss_anon_kib,rss_file_kib,rss_shmem_kib,"
           "heap_kib,threads\n";
    for (const RssSample& s : samples_) {
      csv << s.t << ',' << s.life << ',' << s.vm_rss << ',' << s.rss_anon << ','
          << s.rss_file << ',' << s.rss_shmem << ',' << s.heap << ','
          << s.threads << '\n';
    }
  }
  if (final_.has_ram()) {
    std::printf(
        "\nserver at the end: %llu blocks (%llu in RAM, %llu on disk, %llu "
        "lost), RAM tier %.1f of %.1f MiB, disk %.1f MiB; swaps out %llu, "
        "in %llu; segments %u, rings %u\n",
        static_cast<unsigned long long>(final_.blocks_registered()),
        static_cast<unsigned long long>(final_.blocks_in_ram()),
        static_cast<unsigned long long>(final_.blocks_on_disk()),
        static_cast<unsigned long long>(final_.blocks_lost()),
        final_.ram().used_bytes() / 1048576.0,
        final_.ram().capacity_bytes() / 1048576.0,
        final_.disk().used_bytes() / 1048576.0,
        static_cast<unsigned long long>(final_.efficiency().swap_outs()),
        static_cast<unsigned long long>(final_.efficiency().swap_ins()),
        final_.shared_memory_segments(), final_.shared_memory_rings());
  }
  const auto lines = sdk_log.lines();
  if (!lines.empty()) {
    std::printf("\nSDK log (distinct lines):\n");
    int shown = 0;
    for (const auto& [line, n] : lines) {
      if (++shown > 20) break;
      std::printf("  %llux %s\n", static_cast<unsigned long long>(n),
                  line.c_str());
    }
  }
  const std::vector<std::string> samples = stats_->unexpected_samples();
  if (!samples.empty()) {
    std::printf("\nunexpected outcomes (first %zu):\n", samples.size());
    for (const std::string& s : samples) std::printf("  %s\n", s.c_str());
  }
  std::printf("\n");
  for (const std::string& f : failures) std::printf("FAIL: %s\n", f.c_str());
  std::printf("soak: %s\n", failures.empty() ? "PASS" : "FAIL");
  std::fflush(stdout);
  return failures.empty();
}

}  // namespace tensorpager::soak
