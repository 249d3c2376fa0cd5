#!/usr/bin/env bash
# Installs what is missing (Debian packages, as root), builds tensorpagerd
# and runs it with its embedded defaults; extra arguments go to tensorpagerd.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
# A build dir of its own: the test command's build/ keeps its tests.
build_dir=${TP_SERVER_BUILD_DIR:-build-server}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF \
  -DTP_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target tensorpagerd
exec "$build_dir/server/tensorpagerd" "$@"
