#!/usr/bin/env bash
# The NVMe tier's I/O engines against fio, in one run on one directory.
#
#   tests/bench/io_bench.sh [BUILD_DIR] [DATA_DIR]
#
# BUILD_DIR (default: ./build) holds tests/bench/tp-io-bench. DATA_DIR
# (default: BUILD_DIR/io-bench) must be on the disk under test, not tmpfs.
# Env: SIZE_MB (file size, default 1024), QD (default 8), ROUNDS (default 2;
# each figure is the best round, so a noisy neighbour hurts both sides
# alike).
#
# For each block size (4 MiB, 64 KiB), fio (--ioengine=io_uring --direct=1)
# writes a fresh file sequentially and reads it back twice over: one job at
# --iodepth=QD, and QD jobs at depth 1 on their own slices. The engines move
# the same bytes: io_uring with one caller issuing QD-block requests that it
# splits into units (the same shape as fio at QD), then io_uring and the
# thread engine with QD callers each issuing one block at a time (the same
# shape as QD fio jobs; concurrent swaps look like this). Then the whole
# service path: tensorpagerd's BlockStore swapping bf16 blocks out and back
# in (SwapOut/SwapIn calls of 128 MiB of blocks, QD in flight, group
# commit with fdatasync + RocksDB sync, checksums), raw and with lz4 (its
# GiB/s count logical bytes). Each round ends with the latency of single
# 1 MiB reads at QD1 (a swap-in), fio against the engine. Prints the best
# of the rounds and engine/fio ratios.
set -euo pipefail

build_dir=${1:-build}
data_dir=${2:-${build_dir}/io-bench}
size_mb=${SIZE_MB:-1024}
qd=${QD:-8}
rounds=${ROUNDS:-2}
bench=${build_dir}/tests/bench/tp-io-bench

die() { echo "io_bench.sh: $*" >&2; exit 1; }
[[ -x ${bench} ]] || die "${bench} not found: build the tp-io-bench target (TP_BUILD_BENCHMARKS=ON)"
command -v fio >/dev/null || die "fio not found (apt-get install fio)"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
mkdir -p "${data_dir}"
fs_type=$(stat -f -c %T "${data_dir}")
case ${fs_type} in
  tmpfs|ramfs) die "${data_dir} is on ${fs_type}, not a disk: pass a DATA_DIR on the drive to measure" ;;
esac

results=$(mktemp)
latencies=$(mktemp)
fio_file=${data_dir}/fio-bench.dat
trap 'rm -f "${results}" "${latencies}" "${fio_file}" "${data_dir}/tp-io-bench.dat"' EXIT

# fio_run NAME RW BS [extra args...]: prints the JSON.
fio_run() {
  local name=$1 rw=$2 bs=$3
  shift 3
  fio --name="${name}" --filename="${fio_file}" --rw="${rw}" --bs="${bs}" \
    --size="${size_mb}M" --ioengine=io_uring --direct=1 --iodepth="${qd}" \
    --output-format=json "$@"
}

fio_bw() {  # stdin: fio JSON; $1: read|write -> GiB/s
  jq -r --arg op "$1" '.jobs[0][$op].bw_bytes / 1073741824'
}

# bench_rows LABEL ARGS...: runs tp-io-bench and records its two rows.
bench_rows() {
  local label=$1 bs=$2
  shift 2
  "${bench}" --dir="${data_dir}" --bs="${bs}" --qd="${qd}" \
    --size=$((size_mb << 20)) "$@" |
    awk -v label="${label}" -v bs="${bs}" '$1 == "RESULT" {
        for (i = 2; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
        print label "\t" bs "\t" f["op"] "\t" f["gib_per_s"] "\t" f["engine"] "\t" f["compression_ratio"] }' \
      >>"${results}"
}

# fio_rows BS: fio at QD, then QD jobs at depth 1 on their own slices (what
# QD concurrent callers can expect).
fio_rows() {
  local bs=$1 w r
  echo "  round ${round}, block ${bs}: fio" >&2
  rm -f "${fio_file}"
  w=$(fio_run w write "${bs}" --end_fsync=1 | fio_bw write)
  r=$(fio_run r read "${bs}" | fio_bw read)
  printf 'fio\t%s\twrite\t%s\tfio\n' "${bs}" "${w}" >>"${results}"
  printf 'fio\t%s\tread\t%s\tfio\n' "${bs}" "${r}" >>"${results}"
  rm -f "${fio_file}"
  local jobs=(--iodepth=1 --numjobs="${qd}" --size="$((size_mb / qd))M"
    --offset_increment="$((size_mb / qd))M" --group_reporting)
  w=$(fio_run w write "${bs}" "${jobs[@]}" --end_fsync=1 | fio_bw write)
  r=$(fio_run r read "${bs}" "${jobs[@]}" | fio_bw read)
  printf 'fio-jobs\t%s\twrite\t%s\tfio\n' "${bs}" "${w}" >>"${results}"
  printf 'fio-jobs\t%s\tread\t%s\tfio\n' "${bs}" "${r}" >>"${results}"
}

engine_rows() {
  local bs=$1
  echo "  round ${round}, block ${bs}: engines" >&2
  bench_rows io_uring-split "${bs}" --engine=io_uring --callers=1 \
    --request=$((bs * qd))
  bench_rows io_uring "${bs}" --engine=io_uring
  bench_rows threads "${bs}" --engine=threads
  bench_rows store "${bs}" --store --codec=none
  bench_rows store-lz4 "${bs}" --store --codec=lz4
  bench_rows store-aes "${bs}" --store --codec=none --encrypt
}

echo "io_bench: ${size_mb} MiB per pass, QD ${qd}, ${rounds} rounds, ${data_dir} (${fs_type}, $(df -P "${data_dir}" | awk 'NR == 2 { print $1 }'))" >&2
for round in $(seq "${rounds}"); do
  for bs in 4194304 65536; do
    # Alternate who goes first: the disk (or the host behind a virtual
    # one) may still be flushing the previous writer's data.
    if ((round % 2)); then
      fio_rows "${bs}"
      engine_rows "${bs}"
    else
      engine_rows "${bs}"
      fio_rows "${bs}"
    fi
  done
  # Both files are written now; reads at QD1 like a swap-in, interleaved
  # with the throughput runs so both sides see the same disk.
  echo "  round ${round}: 1 MiB read latency" >&2
  fio_run lat randread 1M --iodepth=1 --runtime=2 --time_based \
    --lat_percentiles=1 |
    jq -r '.jobs[0].read.lat_ns.percentile | "fio-lat\t\(.["50.000000"] / 1000)\t\(.["99.000000"] / 1000)"' \
      >>"${latencies}"
  "${bench}" --dir="${data_dir}" --engine=io_uring --latency --count=300 |
    awk '$1 == "RESULT" {
        for (i = 2; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
        print "engine-lat\t" f["p50_us"] "\t" f["p99_us"] }' >>"${latencies}"
done

awk -F'\t' -v qd="${qd}" '
  FILENAME == ARGV[1] {
    key = $1 SUBSEP $2 SUBSEP $3
    if ($4 > best[key]) best[key] = $4
    name[$1] = $5
    if ($6 != "") ratio_of[$1 SUBSEP $2] = $6
    next
  }
  {  # latencies: best p50 and p99 over the rounds
    if (!($1 in p50) || $2 < p50[$1]) p50[$1] = $2
    if (!($1 in p99) || $3 < p99[$1]) p99[$1] = $3
  }
  END {
    split("io_uring-split io_uring threads store store-lz4 store-aes", labels, " ")
    how["io_uring-split"] = "1 caller, " qd "-unit requests"
    how["io_uring"] = qd " callers"; how["threads"] = qd " callers"
    how["store"] = qd " at once"; how["store-lz4"] = qd " at once"
    how["store-aes"] = qd " at once, AES-256-GCM"
    fmt = "%-8s  %-5s  %-44s  %6s  %10s  %5s  %13s  %5s\n"
    printf fmt, "block", "dir", "engine", "GiB/s", "fio QD" qd, "ratio",
      "fio " qd "x QD1", "ratio"
    split("4194304 65536", sizes, " ")
    split("write read", ops, " ")
    for (s = 1; s <= 2; ++s) for (o = 1; o <= 2; ++o) {
      ref = best["fio" SUBSEP sizes[s] SUBSEP ops[o]]
      jobs = best["fio-jobs" SUBSEP sizes[s] SUBSEP ops[o]]
      for (l = 1; l <= 6; ++l) {
        got = best[labels[l] SUBSEP sizes[s] SUBSEP ops[o]]
        printf fmt, sizes[s] / 1024 " KiB", ops[o],
          name[labels[l]] " (" how[labels[l]] ")", sprintf("%.2f", got),
          sprintf("%.2f", ref), (ref > 0 ? sprintf("%.2f", got / ref) : "-"),
          sprintf("%.2f", jobs), (jobs > 0 ? sprintf("%.2f", got / jobs) : "-")
      }
    }
    printf "\nAES-256-GCM store / raw store:"
    for (s = 1; s <= 2; ++s) for (o = 1; o <= 2; ++o) {
      raw = best["store" SUBSEP sizes[s] SUBSEP ops[o]]
      aes = best["store-aes" SUBSEP sizes[s] SUBSEP ops[o]]
      printf " %s %s %s", sizes[s] / 1024 " KiB", ops[o],
        (raw > 0 ? sprintf("%.2f", aes / raw) : "-")
    }
    printf "\n"
    printf "\nlz4 compression ratio of the bf16 blocks: %s (4 MiB), %s (64 KiB)\n",
      ratio_of["store-lz4" SUBSEP 4194304], ratio_of["store-lz4" SUBSEP 65536]
    printf "\n1 MiB read latency, QD1 (us)  p50    p99\n"
    printf "fio io_uring direct          %5.0f  %5.0f\n", p50["fio-lat"], p99["fio-lat"]
    printf "engine io_uring              %5.0f  %5.0f  (p50 ratio %.2f)\n",
      p50["engine-lat"], p99["engine-lat"], p50["engine-lat"] / p50["fio-lat"]
  }' "${results}" "${latencies}"
