#!/usr/bin/env bash
# Installs what is missing (Debian packages and the test peers, as root),
# builds everything and runs the whole test suite under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh --test
build_dir=${TP_BUILD_DIR:-build}
# Tests on, whatever an earlier configure of this dir said.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTP_BUILD_TESTS=ON ${TP_CMAKE_ARGS:-}
cmake --build "$build_dir" -j"$(nproc)"
# The container image test (debootstrap + podman build of docker/Dockerfile)
# takes tens of minutes; it runs when TP_CONTAINER_TEST=1.
exclude=()
if [[ "${TP_CONTAINER_TEST:-0}" != 1 ]]; then
  echo "run-tests: skipping the container image test (set TP_CONTAINER_TEST=1 to run it)"
  exclude=(-LE container)
fi
# A run that finds no tests is a failure, not a pass.
(cd "$build_dir" && ctest --output-on-failure --no-tests=error -j"$(nproc)" \
  --timeout 900 "${exclude[@]}" "$@")

# In CI (or with TP_SANITIZERS=1) the integration tests run once more
# against an ASan+UBSan build of tensorpagerd and tpctl.
if [[ "${CI:-}" == true || "${TP_SANITIZERS:-0}" == 1 ]]; then
  TP_MAIN_BUILD="$build_dir" tests/sanitizers/run.sh address
fi

# In CI (or with TP_FUZZ=1) every libFuzzer target (tests/fuzz/run.sh, a
# clang-15 build in build-fuzz) runs for TP_FUZZ_SECONDS (default 25) each.
if [[ "${CI:-}" == true || "${TP_FUZZ:-0}" == 1 ]]; then
  TP_FUZZ_SECONDS=${TP_FUZZ_SECONDS:-25} tests/fuzz/run.sh
fi
