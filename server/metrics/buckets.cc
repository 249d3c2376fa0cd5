#include "server/metrics/buckets.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace tensorpager::metrics {
namespace {

// Generated lists stay small enough to scrape; a histogram child costs
// 8 bytes per bucket and a text line per bucket per scrape.
constexpr int kMaxGeneratedBuckets = 256;

// Generated bounds that overflow would otherwise reach Normalize as a
// trailing +Inf and vanish silently.
absl::StatusOr<std::vector<double>> NormalizeGenerated(
    std::vector<double> bounds) {
  if (!std::isfinite(bounds.back())) {
    return absl::InvalidArgumentError(
        "generated bucket bounds overflow the range of double; use fewer "
        "buckets or a smaller start");
  }
  return NormalizeBucketBounds(std::move(bounds));
}

absl::Status CheckCount(int count) {
  if (count < 1 || count > kMaxGeneratedBuckets) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bucket count ", count, " is outside [1, ", kMaxGeneratedBuckets, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<double>> NormalizeBucketBounds(
    std::vector<double> bounds) {
  if (!bounds.empty() &&
      bounds.back() == std::numeric_limits<double>::infinity()) {
    bounds.pop_back();
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("bucket bound #", i, " is not finite (", bounds[i],
                       "); only a last +Inf is allowed"));
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("bucket bounds must increase strictly; #", i - 1, " is ",
                       bounds[i - 1], " and #", i, " is ", bounds[i]));
    }
  }
  return bounds;
}

absl::StatusOr<std::vector<double>> ExponentialBuckets(double start,
                                                       double factor,
                                                       int count) {
  if (absl::Status s = CheckCount(count); !s.ok()) return s;
  if (!(start > 0) || !std::isfinite(start)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exponential buckets need a finite start > 0, got ", start));
  }
  if (!(factor > 1) || !std::isfinite(factor)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exponential buckets need a finite factor > 1, got ", factor));
  }
  std::vector<double> bounds;
  bounds.reserve(count);
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return NormalizeGenerated(std::move(bounds));
}

absl::StatusOr<std::vector<double>> LinearBuckets(double start, double width,
                                                  int count) {
  if (absl::Status s = CheckCount(count); !s.ok()) return s;
  if (!std::isfinite(start)) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear buckets need a finite start, got ", start));
  }
  if (!(width > 0) || !std::isfinite(width)) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear buckets need a finite width > 0, got ", width));
  }
  std::vector<double> bounds;
  bounds.reserve(count);
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  // A width far below start's precision would repeat bounds; Normalize
  // reports that instead of building a histogram with empty buckets.
  return NormalizeGenerated(std::move(bounds));
}

}  // namespace tensorpager::metrics
