// tp-sim: replays cache traces through tensorpager's eviction policies (the
// same objects MakePolicy gives tensorpagerd) and reports miss ratios, or
// writes a synthetic trace.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/policy/eviction_policy.h"
#include "storage/policy/sim/cache_size.h"
#include "storage/policy/sim/simulator.h"
#include "storage/policy/sim/trace.h"
#include "storage/policy/sim/trace_generator.h"

ABSL_FLAG(std::vector<std::string>, trace, {},
          "Comma-separated CSV traces to replay ('timestamp,obj_id,obj_size' "
          "with a header line). Trace files may also be given as positional "
          "arguments.");
ABSL_FLAG(std::vector<std::string>, policies,
          (std::vector<std::string>{"lru", "clock", "adaptive"}),
          "Comma-separated policies to compare: lru, clock, adaptive.");
ABSL_FLAG(std::vector<std::string>, cache_sizes,
          (std::vector<std::string>{"1%", "10%"}),
          "Comma-separated cache sizes: a share of the trace's working set "
          "(the sum of its unique objects' sizes), e.g. 10%, or bytes with an "
          "optional binary unit, e.g. 4096, 64MiB, 2GiB.");
ABSL_FLAG(bool, capacity_hint, true,
          "Tell each policy the cache size through SetCapacity, as "
          "tensorpagerd does; false makes policies infer it.");
ABSL_FLAG(std::string, format, "table",
          "Output format: 'table' (aligned columns) or 'csv'.");
ABSL_FLAG(std::string, generate, "",
          "Instead of replaying, write a synthetic trace to --out: zipf, "
          "scan_hot, loop, kv_conversation or reversing_loop.");
ABSL_FLAG(std::string, out, "", "Where --generate writes its CSV trace.");
ABSL_FLAG(uint64_t, requests, 200000, "Requests in a generated trace.");
ABSL_FLAG(uint64_t, objects, 10000,
          "Distinct objects of a generated zipf, loop or reversing_loop "
          "trace; hot-set size "
          "of scan_hot (ignored by kv_conversation).");
ABSL_FLAG(double, zipf_alpha, 0.9,
          "Skew of generated zipf and scan_hot popularity.");
ABSL_FLAG(bool, mixed_sizes, false,
          "Give generated zipf, scan_hot, loop and reversing_loop objects "
          "sizes from 4KiB to 4MiB instead of 1 byte (kv_conversation always "
          "has mixed sizes).");
ABSL_FLAG(double, noise, 0,
          "Share of a generated loop or reversing_loop trace's requests "
          "replaced by requests for uniformly chosen objects of the loop, in "
          "[0, 1].");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the generated trace.");

namespace tensorpager::policy::sim {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "tp-sim: %s\n", std::string(status.message()).c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int RunGenerate() {
  GeneratorOptions options;
  if (!ParseWorkload(absl::GetFlag(FLAGS_generate), &options.workload)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--generate=", absl::GetFlag(FLAGS_generate),
        " is not a workload; use zipf, scan_hot, loop, kv_conversation or "
        "reversing_loop")));
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--generate needs --out=FILE for the CSV trace"));
  }
  options.requests = absl::GetFlag(FLAGS_requests);
  options.objects = absl::GetFlag(FLAGS_objects);
  options.zipf_alpha = absl::GetFlag(FLAGS_zipf_alpha);
  options.mixed_sizes = absl::GetFlag(FLAGS_mixed_sizes);
  options.noise = absl::GetFlag(FLAGS_noise);
  options.seed = absl::GetFlag(FLAGS_seed);
  absl::StatusOr<Trace> trace = GenerateTrace(options);
  if (!trace.ok()) return Fail(trace.status());
  if (absl::Status s = WriteTraceCsv(*trace, out); !s.ok()) return Fail(s);
  const TraceSummary summary = Summarize(*trace);
  std::printf("wrote %s: %llu requests, %llu objects, working set %llu bytes\n",
              out.c_str(), static_cast<unsigned long long>(summary.requests),
              static_cast<unsigned long long>(summary.unique_objects),
              static_cast<unsigned long long>(summary.working_set_bytes));
  return 0;
}

std::string Basename(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

int RunReplay(std::vector<std::string> paths) {
  std::vector<Algorithm> algorithms;
  for (const std::string& name : absl::GetFlag(FLAGS_policies)) {
    Algorithm a;
    if (!ParseAlgorithm(name, &a)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--policies: '", name, "' is not lru, clock or adaptive")));
    }
    algorithms.push_back(a);
  }
  std::vector<CacheSize> sizes;
  for (const std::string& text : absl::GetFlag(FLAGS_cache_sizes)) {
    absl::StatusOr<CacheSize> size = ParseCacheSize(text);
    if (!size.ok()) return Fail(size.status());
    sizes.push_back(*size);
  }
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "table" && format != "csv") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--format=", format, " is not 'table' or 'csv'")));
  }
  if (algorithms.empty() || sizes.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--policies and --cache_sizes each need at least one value"));
  }
  const bool csv = format == "csv";
  SimOptions options;
  options.capacity_hint = absl::GetFlag(FLAGS_capacity_hint);

  if (csv) {
    std::printf(
        "trace,cache_size,capacity_bytes,policy,requests,miss_ratio,"
        "byte_miss_ratio,policy_calls,seconds\n");
  } else {
    std::printf("%-28s %-8s %14s %-9s %10s %10s %10s %12s\n", "trace", "size",
                "capacity", "policy", "miss", "byte_miss", "requests",
                "Mcalls/s");
  }
  for (const std::string& path : paths) {
    absl::StatusOr<Trace> trace = ReadTraceCsv(path);
    if (!trace.ok()) return Fail(trace.status());
    if (trace->zero_size_rows > 0) {
      std::fprintf(stderr,
                   "tp-sim: %s: %llu rows had obj_size 0; counted "
                   "as 1 byte\n",
                   path.c_str(),
                   static_cast<unsigned long long>(trace->zero_size_rows));
    }
    const TraceSummary summary = Summarize(*trace);
    const std::string name = Basename(path);
    for (const CacheSize& size : sizes) {
      const uint64_t capacity =
          ResolveCacheSize(size, summary.working_set_bytes);
      if (capacity == 0) {
        std::fprintf(
            stderr,
            "tp-sim: %s: %s of a %llu-byte working set is "
            "0 bytes; skipped\n",
            name.c_str(), size.text.c_str(),
            static_cast<unsigned long long>(summary.working_set_bytes));
        continue;
      }
      for (Algorithm a : algorithms) {
        const SimResult r = Simulate(*trace, a, capacity, options);
        const double mcalls =
            r.seconds > 0
                ? static_cast<double>(r.policy_calls) / r.seconds / 1e6
                : 0;
        if (csv) {
          std::printf(
              "%s,%s,%llu,%s,%llu,%.6f,%.6f,%llu,%.6f\n", name.c_str(),
              size.text.c_str(), static_cast<unsigned long long>(capacity),
              r.policy.c_str(), static_cast<unsigned long long>(r.requests),
              r.miss_ratio(), r.byte_miss_ratio(),
              static_cast<unsigned long long>(r.policy_calls), r.seconds);
        } else {
          std::printf("%-28s %-8s %14llu %-9s %10.4f %10.4f %10llu %12.1f\n",
                      name.c_str(), size.text.c_str(),
                      static_cast<unsigned long long>(capacity),
                      r.policy.c_str(), r.miss_ratio(), r.byte_miss_ratio(),
                      static_cast<unsigned long long>(r.requests), mcalls);
        }
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace tensorpager::policy::sim

int main(int argc, char** argv) {
  // --help lists the flags of this file (absl matches files named after
  // the binary by default, and this one is main.cc).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "storage/policy/sim/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "Replays cache traces through tensorpager's eviction policies.\n"
      "  tp-sim --trace=a.csv,b.csv [--policies=lru,clock,adaptive] "
      "[--cache_sizes=1%,10%,64MiB]\n"
      "  tp-sim --generate=zipf|scan_hot|loop|kv_conversation|reversing_loop "
      "--out=t.csv\n"
      "Prints miss ratio and byte miss ratio per trace, cache size and "
      "policy.");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (!absl::GetFlag(FLAGS_generate).empty()) {
    return tensorpager::policy::sim::RunGenerate();
  }
  std::vector<std::string> paths = absl::GetFlag(FLAGS_trace);
  for (size_t i = 1; i < positional.size(); ++i) paths.push_back(positional[i]);
  if (paths.empty()) {
    std::fprintf(stderr,
                 "tp-sim: no trace given; pass --trace=FILE.csv (see "
                 "--help)\n");
    return 2;
  }
  return tensorpager::policy::sim::RunReplay(std::move(paths));
}
