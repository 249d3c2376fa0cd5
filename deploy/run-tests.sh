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
ctest --output-on-failure -j"$(nproc)" --timeout 900 "$@"
