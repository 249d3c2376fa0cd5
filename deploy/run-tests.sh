#!/usr/bin/env bash
# Installs what is missing (Debian packages and the test peers, as root),
# builds everything and runs the whole test suite under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh --test
build_dir=${TP_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${TP_CMAKE_ARGS:-}
cmake --build "$build_dir" -j"$(nproc)"
cd "$build_dir"
# The container image test (debootstrap + podman build of docker/Dockerfile)
# takes tens of minutes; it runs when TP_CONTAINER_TEST=1.
exclude=()
if [[ "${TP_CONTAINER_TEST:-0}" != 1 ]]; then
  echo "run-tests: skipping the container image test (set TP_CONTAINER_TEST=1 to run it)"
  exclude=(-LE container)
fi
ctest --output-on-failure -j"$(nproc)" --timeout 900 "${exclude[@]}" "$@"
