#!/usr/bin/env bash
# The C++ SDK's data path against Redis, all figures from one run.
#
#   tests/bench/sdk_bench.sh [BUILD_DIR] [DATA_DIR]
#
# BUILD_DIR (default: ./build) holds tests/bench/tp-sdk-bench and
# server/tensorpagerd. DATA_DIR (default: BUILD_DIR/sdk-bench) holds
# tensorpagerd's data dir and must be on a real disk, not tmpfs.
# Env: SECONDS_PER_CASE (default 1.0), REDIS_SERVER (default
# /usr/bin/redis-server).
#
# Prints: SDK Write vs Redis SET and SDK Access vs Redis GET of 4 MiB and
# 64 KiB values at 1, 4 and 8 concurrent streams with the SDK/Redis ratio
# (goals: >= 1.0 at 4 MiB, >= 0.8 at 64 KiB); the SDK alone with a data set
# 4x the server's RAM budget; and the cost of a local-cache hit.
set -euo pipefail

build_dir=${1:-build}
data_dir=${2:-${build_dir}/sdk-bench}
bench=${build_dir}/tests/bench/tp-sdk-bench
server=${build_dir}/server/tensorpagerd
redis=${REDIS_SERVER:-/usr/bin/redis-server}

die() { echo "sdk_bench.sh: $*" >&2; exit 1; }
[[ -x ${bench} ]] || die "${bench} not found: build the tp-sdk-bench target (TP_BUILD_BENCHMARKS=ON)"
[[ -x ${server} ]] || die "${server} not found: build the tensorpagerd target"
[[ -x ${redis} ]] || die "${redis} not found (apt-get install redis-server)"
mkdir -p "${data_dir}"
fs_type=$(stat -f -c %T "${data_dir}")
case ${fs_type} in
  tmpfs|ramfs) die "${data_dir} is on ${fs_type}, not a disk: pass a DATA_DIR on the drive to measure" ;;
esac
run_dir=$(mktemp -d "${data_dir}/sdk-bench.XXXXXX")
trap 'rm -rf "${run_dir}"' EXIT

echo "sdk_bench: $(nproc) CPUs, data dir ${data_dir} (${fs_type}, $(df -P "${data_dir}" | awk 'NR == 2 { print $1 }')), $(${redis} --version | awk '{ print $1, $2, $3 }')" >&2
TP_BINARY_DIR=$(cd "${build_dir}" && pwd) "${bench}" \
  --data_dir="${run_dir}" \
  --redis_server="${redis}" \
  --seconds="${SECONDS_PER_CASE:-1.0}"
