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
# For each block size (4 MiB, 64 KiB): fio (--ioengine=io_uring --direct=1
# --iodepth=QD) writes a fresh file sequentially and reads it back; the
# engines do the same with QD caller threads each issuing one block per
# request, and io_uring once more with one caller issuing QD-block requests
# that it splits into units. Then the latency of single 1 MiB reads (QD1,
# like a swap-in) against fio's. Prints a table with engine/fio ratios.
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
mkdir -p "${data_dir}"
fs_type=$(stat -f -c %T "${data_dir}")
case ${fs_type} in
  tmpfs|ramfs) die "${data_dir} is on ${fs_type}, not a disk: pass a DATA_DIR on the drive to measure" ;;
esac

results=$(mktemp)
fio_file=${data_dir}/fio-bench.dat
trap 'rm -f "${results}" "${fio_file}" "${data_dir}/tp-io-bench.dat"' EXIT

# fio_run NAME RW BS [extra args...]: prints the JSON.
fio_run() {
  local name=$1 rw=$2 bs=$3
  shift 3
  fio --name="${name}" --filename="${fio_file}" --rw="${rw}" --bs="${bs}" \
    --size="${size_mb}M" --ioengine=io_uring --direct=1 --iodepth="${qd}" \
    --output-format=json "$@"
}

fio_bw() {  # stdin: fio JSON; $1: read|write -> GiB/s
  /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0][sys.argv[1]]; print(j["bw_bytes"]/2**30)' "$1"
}

# bench_rows LABEL ARGS...: runs tp-io-bench and records its two rows.
bench_rows() {
  local label=$1 bs=$2
  shift 2
  "${bench}" --dir="${data_dir}" --bs="${bs}" --qd="${qd}" \
    --size=$((size_mb << 20)) "$@" |
    awk -v label="${label}" -v bs="${bs}" '$1 == "RESULT" {
        for (i = 2; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
        print label "\t" bs "\t" f["op"] "\t" f["gib_per_s"] "\t" f["engine"] }' \
      >>"${results}"
}

echo "io_bench: ${size_mb} MiB per pass, QD ${qd}, ${rounds} rounds, ${data_dir} (${fs_type}, $(df -P "${data_dir}" | awk 'NR == 2 { print $1 }'))" >&2
for round in $(seq "${rounds}"); do
  for bs in 4194304 65536; do
    echo "  round ${round}, block ${bs}: fio" >&2
    rm -f "${fio_file}"
    w=$(fio_run w write "${bs}" --end_fsync=1 | fio_bw write)
    r=$(fio_run r read "${bs}" | fio_bw read)
    printf 'fio\t%s\twrite\t%s\tfio\n' "${bs}" "${w}" >>"${results}"
    printf 'fio\t%s\tread\t%s\tfio\n' "${bs}" "${r}" >>"${results}"
    rm -f "${fio_file}"
    echo "  round ${round}, block ${bs}: engines" >&2
    bench_rows io_uring "${bs}" --engine=io_uring
    bench_rows threads "${bs}" --engine=threads
    bench_rows io_uring-split "${bs}" --engine=io_uring --callers=1 \
      --request=$((bs * qd))
  done
done

echo "  latency: 1 MiB reads at QD1" >&2
fio_run w write 4M --end_fsync=1 >/dev/null
lat=$(fio_run lat randread 1M --iodepth=1 --runtime=3 --time_based \
  --lat_percentiles=1 |
  /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin)["jobs"][0]["read"]["lat_ns"]["percentile"]; print(p["50.000000"]/1e3, p["99.000000"]/1e3)')
rm -f "${fio_file}"
"${bench}" --dir="${data_dir}" --engine=io_uring --bs=4194304 --qd="${qd}" \
  --size=$((size_mb << 20)) >/dev/null
engine_lat=$("${bench}" --dir="${data_dir}" --engine=io_uring --latency --count=500 |
  awk '$1 == "RESULT" { for (i = 2; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] } print f["p50_us"], f["p99_us"] }')

/usr/bin/python3 - "${results}" "${lat}" "${engine_lat}" "${qd}" <<'PY'
import collections, sys

best = collections.defaultdict(float)
names = {}
for line in open(sys.argv[1]):
    label, bs, op, gibps, name = line.rstrip("\n").split("\t")
    key = (label, int(bs), op)
    best[key] = max(best[key], float(gibps))
    names[label] = name
qd = sys.argv[4]
rows = []
for bs in (4194304, 65536):
    for op in ("write", "read"):
        ref = best[("fio", bs, op)]
        for label, how in (("io_uring", f"{qd} callers"),
                           ("threads", f"{qd} callers"),
                           ("io_uring-split", f"1 caller, {qd}-unit requests")):
            got = best[(label, bs, op)]
            rows.append((f"{bs // 1024} KiB", op, f"{ref:.2f}",
                         f"{names.get(label, label)} ({how})", f"{got:.2f}",
                         f"{got / ref:.2f}" if ref else "-"))
head = ("block", "dir", "fio GiB/s", "engine", "engine GiB/s", "ratio")
widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
fmt = "  ".join("{:<%d}" % w for w in widths)
print(fmt.format(*head))
for r in rows:
    print(fmt.format(*r))
fio_p50, fio_p99 = map(float, sys.argv[2].split())
eng_p50, eng_p99 = map(float, sys.argv[3].split())
print()
print("1 MiB read latency (QD1)   p50 us   p99 us")
print(f"fio io_uring direct        {fio_p50:7.0f}  {fio_p99:7.0f}")
print(f"engine io_uring            {eng_p50:7.0f}  {eng_p99:7.0f}"
      f"   (p50 ratio {eng_p50 / fio_p50:.2f})")
PY
