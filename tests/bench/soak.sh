#!/usr/bin/env bash
# The 10-minute soak (tests/bench/soak.cc): 64 clients with every kind of
# call, shared-memory attach/detach, bad inputs and server restarts against
# a real tensorpagerd (--ram_budget=256MiB), with throughput, p50/p99 per
# call and the server's RSS over time; exit status 0 only when nothing
# unexpected happened and RSS stayed flat after warm-up.
#
#   tests/bench/soak.sh [soak flags...]      e.g. --seconds=1800
#
# Builds soak and tensorpagerd in $TP_BUILD_DIR (default: build) first;
# the report goes to stdout, the RSS samples to ${TMPDIR:-/tmp}/soak-rss.csv.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir=${TP_BUILD_DIR:-build}
cmake -S . -B "$build_dir" >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target soak tensorpagerd >&2
export TP_BINARY_DIR="$PWD/$build_dir"
exec "$build_dir/tests/bench/soak" --seconds=600 \
  --rss_csv="${TMPDIR:-/tmp}/soak-rss.csv" "$@"
