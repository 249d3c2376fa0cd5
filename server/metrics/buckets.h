// Histogram bucket bounds: validation and the usual generators.
#ifndef TENSORPAGER_SERVER_METRICS_BUCKETS_H_
#define TENSORPAGER_SERVER_METRICS_BUCKETS_H_

#include <vector>

#include "absl/status/statusor.h"

namespace tensorpager::metrics {

// The bounds a histogram family keeps: INVALID_ARGUMENT unless finite and
// strictly increasing. A trailing +Inf is accepted and dropped (the +Inf
// bucket is always there); an empty list leaves only that bucket.
absl::StatusOr<std::vector<double>> NormalizeBucketBounds(
    std::vector<double> bounds);

// start, start*factor, start*factor^2, ... (`count` bounds). Needs
// start > 0, factor > 1, count >= 1.
absl::StatusOr<std::vector<double>> ExponentialBuckets(double start,
                                                       double factor,
                                                       int count);

// start, start+width, ... (`count` bounds). Needs width > 0, count >= 1.
absl::StatusOr<std::vector<double>> LinearBuckets(double start, double width,
                                                  int count);

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_BUCKETS_H_
