#!/usr/bin/env bash
# Installs what is missing (Debian packages, as root), builds tensorpagerd
# and runs it with its embedded defaults; extra arguments go to tensorpagerd.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target tensorpagerd
exec build/server/tensorpagerd "$@"
