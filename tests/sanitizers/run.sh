#!/usr/bin/env bash
# Runs the integration tests against a sanitizer-built tensorpagerd (and
# tpctl): every attack and every normal path the tests drive then runs
# under ASan+UBSan (address) or TSan (thread).
#
#   tests/sanitizers/run.sh address [ctest args...]   # ASan + UBSan
#   tests/sanitizers/run.sh thread  [ctest args...]   # TSan
#
# The test binaries come from the normal build (TP_MAIN_BUILD, default
# build/, built by deploy/run-tests.sh); they start the instrumented server
# from build-<mode>/ through TP_BINARY_DIR. Any sanitizer report of the
# server, even one from a process a test killed or did not check, fails
# the run: reports go to files, which this script looks for at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?usage: tests/sanitizers/run.sh address|thread [ctest args...]}
shift
case "$mode" in
  address | thread) ;;
  *)
    echo "sanitizers: mode must be address or thread, not $mode" >&2
    exit 2
    ;;
esac
root=$PWD
main_build=${TP_MAIN_BUILD:-build}
san_build=${TP_SANITIZER_BUILD:-build-$mode}
if [[ ! -x "$main_build/tests/integration/end_to_end_test" ]]; then
  echo "sanitizers: build the test binaries first (deploy/run-tests.sh)" >&2
  exit 2
fi

cmake -S . -B "$san_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTP_SANITIZE="$mode" -DTP_BUILD_TESTS=OFF -DTP_BUILD_BENCHMARKS=OFF \
  -DTP_WITH_CUDA=OFF >/dev/null
cmake --build "$san_build" -j"$(nproc)" --target tensorpagerd tpctl

skip=()
if [[ "$mode" == thread ]]; then
  # TSan's shadow memory alone exceeds the memory cgroup that test puts
  # the server in.
  skip=(-E MemoryPressureTest)
fi

reports=$(mktemp -d /tmp/tp-sanitizer-XXXXXX)
trap 'rm -rf "$reports"' EXIT
export TP_BINARY_DIR="$root/$san_build"
if [[ "$mode" == address ]]; then
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
else
  export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=1:suppressions=$root/tests/sanitizers/tsan.supp"
fi

# The clients in other languages, the deploy files and the container are
# not server code paths of their own; the soak runs in the normal pass.
status=0
(cd "$main_build" && ctest --output-on-failure -j"$(nproc)" --timeout 900 \
  -L integration -LE 'clients|deploy|container|soak' "${skip[@]}" "$@") ||
  status=$?

found=0
for f in "$reports"/*; do
  [[ -e "$f" ]] || continue
  found=1
  echo "sanitizers: report $(basename "$f"):"
  cat "$f"
done
if [[ $found -ne 0 ]]; then
  echo "sanitizers: the $mode build of tensorpagerd reported errors (above)" >&2
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "sanitizers: integration tests failed against the $mode build" >&2
  exit "$status"
fi
echo "sanitizers: integration tests passed against the $mode build, no reports"
