#!/usr/bin/env bash
# Installs what is missing (Debian packages, as root), builds tensorpagerd
# and the Python package, and runs tensorpagerd with its embedded defaults; extra arguments go to tensorpagerd.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
# A build dir of its own: the test command's build/ keeps its tests.
build_dir=${TP_SERVER_BUILD_DIR:-build-server}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF \
  -DTP_BUILD_BENCHMARKS=OFF >/dev/null
# The server and the Python package (client_sdk/python) that talks to it.
cmake --build "$build_dir" -j"$(nproc)" --target tensorpagerd tensorpager_python
echo "run-server: Python clients: PYTHONPATH=$build_dir/client_sdk/python" \
  "/usr/bin/python3 -c 'import tensorpager' (or pip install" \
  "--no-build-isolation ./client_sdk/python)" >&2
exec "$build_dir/server/tensorpagerd" "$@"
