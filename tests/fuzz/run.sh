#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzzer.cc) with clang-15 in a
# build dir of their own and runs each for a bounded time over a copy of
# its seed corpus (tests/fuzz/corpus/<target>/); fails on any crash, leak,
# timeout or out-of-memory. New inputs go to a scratch dir, never into the
# repository; a crashing input is kept there and its path printed.
#
#   tests/fuzz/run.sh                 every target, TP_FUZZ_SECONDS each
#   tests/fuzz/run.sh config service  only these
#   TP_FUZZ_SECONDS=0 tests/fuzz/run.sh   replay the corpora only
#
# Environment: TP_FUZZ_SECONDS (default 25), TP_FUZZ_BUILD_DIR (default
# build-fuzz), TP_FUZZ_WORK_DIR (corpora, logs and crashing inputs; default
# a fresh temp dir, removed when every target passed), TP_FUZZ_TMPDIR (where
# the fuzzers open their stores; default a fresh dir in /dev/shm).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${TP_FUZZ_SECONDS:-25}
build_dir=${TP_FUZZ_BUILD_DIR:-build-fuzz}
all_targets=(http_request config ring_slot block_record service tenant_table compact_name)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [[ ! -f tests/fuzz/${t}_fuzzer.cc || ! -d tests/fuzz/corpus/$t ]]; then
    echo "fuzz: no target '$t' (have: ${all_targets[*]})" >&2
    exit 2
  fi
done

# Build and runtime packages, then the fuzzing toolchain, as
# deploy/install-deps.sh does for the rest.
deploy/install-deps.sh
fuzz_pkgs=(clang-15 libfuzzer-15-dev)
missing=()
for p in "${fuzz_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "fuzz: missing Debian packages: ${missing[*]}; run as root to install" >&2
    exit 1
  fi
  echo "fuzz: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

start=$SECONDS
CC=clang-15 CXX=clang++-15 cmake -S . -B "$build_dir" -DTP_FUZZ=ON \
  -DTP_BUILD_TESTS=OFF -DTP_BUILD_BENCHMARKS=OFF -DTP_WITH_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target fuzzers
echo "fuzz: built in $((SECONDS - start)) s"

work=${TP_FUZZ_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tp-fuzz-run.XXXXXX")}
mkdir -p "$work"
# The stores the fuzzers open (tests/fuzz/fuzz_util.h): on tmpfs when there
# is one, so syncs cost nothing; removed however the run ends.
if [[ -z ${TP_FUZZ_TMPDIR:-} ]]; then
  scratch_base=$work
  [[ -d /dev/shm && -w /dev/shm ]] && scratch_base=/dev/shm
  TP_FUZZ_TMPDIR=$(mktemp -d "$scratch_base/tp-fuzz-scratch.XXXXXX")
  export TP_FUZZ_TMPDIR
  trap 'rm -rf "$TP_FUZZ_TMPDIR"' EXIT
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Stack traces with file:line: clang-15's runtime looks for llvm-symbolizer
# beside itself only (in package llvm-15); any version will do.
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} ]]; then
  for s in /usr/lib/llvm-15/bin/llvm-symbolizer llvm-symbolizer-15 \
           llvm-symbolizer; do
    if s=$(command -v "$s"); then
      export ASAN_SYMBOLIZER_PATH=$s
      break
    fi
  done
fi

# Per target: the largest input worth trying.
max_len() {
  case $1 in
    ring_slot) echo 1024 ;;
    service) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

failed=()
for t in "${targets[@]}"; do
  bin=$build_dir/tests/fuzz/${t}_fuzzer
  seeds=tests/fuzz/corpus/$t
  if [[ ! -x $bin ]]; then
    echo "fuzz: $bin was not built" >&2
    exit 2
  fi
  corpus=$work/corpus/$t
  artifacts=$work/artifacts/$t/
  mkdir -p "$corpus" "$artifacts"
  cp -r "$seeds"/. "$corpus"/
  flags=(-artifact_prefix="$artifacts" -max_len="$(max_len "$t")"
         -timeout=30 -rss_limit_mb=2048 -print_final_stats=1)
  case $t in
    # Background threads (gRPC, RocksDB) free memory after an input
    # returns, so per-input leak checks cost much and prove little; the
    # leak check at exit still runs.
    block_record | service) flags+=(-detect_leaks=0) ;;
  esac
  [[ -f tests/fuzz/$t.dict ]] && flags+=(-dict="tests/fuzz/$t.dict")
  if [[ $seconds -gt 0 ]]; then
    flags+=(-max_total_time="$seconds")
    echo "fuzz: $t for ${seconds} s"
  else
    flags+=(-runs=0)  # each corpus input once
    echo "fuzz: $t: replaying the corpus"
  fi
  log=$work/$t.log
  t0=$SECONDS
  if "$bin" "${flags[@]}" "$corpus" >"$log" 2>&1; then
    echo "fuzz: $t passed in $((SECONDS - t0)) s:" \
      "$(grep -h -E '^Done ' "$log" | tail -1)," \
      "peak RSS $(grep -h -o -E 'peak_rss_mb: *[0-9]+' "$log" | tail -1 \
        | grep -o -E '[0-9]+$') MB"
  else
    rc=$?
    echo "fuzz: $t FAILED (exit $rc); from $log:" >&2
    # From the first report on (the lines before are progress).
    first=$(grep -n -m1 -E \
      '==[0-9]+==ERROR|ERROR: libFuzzer|runtime error:|Assertion .* failed|fuzz invariant failed' \
      "$log" | cut -d: -f1)
    sed -n "${first:-1},\$p" "$log" | grep -v -E '^(#[0-9]+|	NEW_FUNC)' \
      | head -80 >&2
    for f in "$artifacts"*; do
      [[ -f $f ]] || continue
      echo "fuzz: reproducer $f (replay: $bin $f):" >&2
      od -A d -t x1z "$f" | head -20 >&2
    done
    failed+=("$t")
  fi
done

echo "fuzz: total $((SECONDS - start)) s"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs and logs in $work)" >&2
  exit 1
fi
[[ -z ${TP_FUZZ_WORK_DIR:-} ]] && rm -rf "$work"
exit 0
