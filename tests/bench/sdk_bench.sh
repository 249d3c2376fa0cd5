#!/usr/bin/env bash
# The C++ SDK's data path against Redis, all figures from one run.
#
#   tests/bench/sdk_bench.sh [BUILD_DIR] [DATA_DIR]
#
# BUILD_DIR (default: ./build) holds tests/bench/tp-sdk-bench and
# server/tensorpagerd. DATA_DIR (default: BUILD_DIR/sdk-bench) holds
# tensorpagerd's data dir and must be on a real disk, not tmpfs.
# Env: SECONDS_PER_CASE (default 1.0), REDIS_SERVER (default
# /usr/bin/redis-server), FIO_SECONDS (default 2), BENCH_ARGS (more
# tp-sdk-bench flags, e.g. "--sections=beyond_ram --sizes=65536").
#
# Prints: SDK Write vs Redis SET and SDK Access vs Redis GET of 4 MiB and
# 64 KiB values at 1, 4 and 8 concurrent streams with the SDK/Redis ratio
# (goals: >= 1.0 at 4 MiB, >= 0.8 at 64 KiB); the SDK alone with a data set
# 4x the server's RAM budget (new keys, rewrites and reads of blocks on
# disk), each against fio on the same directory (goals: >= 0.8, >= 0.5,
# >= 0.8); and the cost of a local-cache hit.
set -euo pipefail

build_dir=${1:-build}
data_dir=${2:-${build_dir}/sdk-bench}
bench=${build_dir}/tests/bench/tp-sdk-bench
server=${build_dir}/server/tensorpagerd
redis=${REDIS_SERVER:-/usr/bin/redis-server}
read -r -a BENCH_ARGS <<<"${BENCH_ARGS:-}"

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
output=${run_dir}/bench.out
TP_BINARY_DIR=$(cd "${build_dir}" && pwd) "${bench}" \
  --data_dir="${run_dir}" \
  --redis_server="${redis}" \
  --seconds="${SECONDS_PER_CASE:-1.0}" \
  "${BENCH_ARGS[@]}" | tee "${output}" | grep -v '^beyond-ram '

# The beyond-RAM rows against fio on the same directory, same block size
# and concurrency (streams = fio jobs at depth 1, O_DIRECT, io_uring):
# new keys and rewrites against a sequential write (with its final fsync),
# reads against random reads.
if ! command -v fio >/dev/null || ! command -v jq >/dev/null; then
  echo "fio or jq missing (apt-get install fio jq): no disk reference for the beyond-RAM rows" >&2
  exit 0
fi
fio_gib() {  # OP BS JOBS -> GiB/s of fio alone on ${run_dir}
  local op=$1 bs=$2 jobs=$3 rw=write
  [[ ${op} == read ]] && rw=randread
  mkdir -p "${run_dir}/fio"
  fio --name=ref --directory="${run_dir}/fio" --rw="${rw}" --bs="${bs}" \
    --numjobs="${jobs}" --size=256M --runtime="${FIO_SECONDS:-2}" --time_based \
    --direct=1 --ioengine=io_uring --iodepth=1 --end_fsync=1 \
    --group_reporting --output-format=json 2>/dev/null |
    jq -r --arg op "${op}" \
      'if $op == "read" then .jobs[0].read.bw_bytes else .jobs[0].write.bw_bytes end / 1073741824'
  rm -rf "${run_dir}/fio"
}
echo
echo "Beyond RAM against fio on ${data_dir} (same block size, streams = fio jobs at depth 1)"
printf '%-10s %-8s %-8s %-10s %-10s %-6s %s\n' op bytes streams "SDK GiB/s" "fio GiB/s" ratio goal
while read -r _ op size streams sdk; do
  case ${op} in
    write_new) ref=$(fio_gib write "${size}" "${streams}"); goal=0.8 ;;
    rewrite) ref=$(fio_gib write "${size}" "${streams}"); goal=0.5 ;;
    read) ref=$(fio_gib read "${size}" "${streams}"); goal=0.8 ;;
    *) continue ;;
  esac
  awk -v op="${op}" -v size="${size}" -v s="${streams}" -v sdk="${sdk}" \
      -v ref="${ref}" -v goal="${goal}" 'BEGIN {
    ratio = ref > 0 ? sdk / ref : 0
    printf "%-10s %-8s %-8s %-10.3f %-10.3f %-6.2f %s\n", op, size, s, sdk, ref,
      ratio, (ratio >= goal ? "met" : "<" goal) }'
done < <(grep '^beyond-ram ' "${output}")
