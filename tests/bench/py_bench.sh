#!/usr/bin/env bash
# The tensorpager Python package against Redis, all figures from one run
# (tests/bench/py_bench.py says what it measures).
#
#   tests/bench/py_bench.sh [BUILD_DIR] [DATA_DIR] [--quick] [py_bench.py options]
#
# BUILD_DIR (default: ./build) holds server/tensorpagerd, the package
# (client_sdk/python, target tensorpager_python) and
# tests/bench/tp-batch-bench. DATA_DIR (default: BUILD_DIR/py-bench) holds
# tensorpagerd's data dir. Env: SECONDS_PER_CASE (default 1.0),
# REDIS_SERVER (default /usr/bin/redis-server).
set -euo pipefail

positional=()
options=()
for arg in "$@"; do
  case ${arg} in
    --*) options+=("${arg}") ;;
    *) positional+=("${arg}") ;;
  esac
done
build_dir=${positional[0]:-build}
data_dir=${positional[1]:-${build_dir}/py-bench}
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "py_bench.sh: $*" >&2; exit 1; }
[[ -x ${build_dir}/server/tensorpagerd ]] || die "${build_dir}/server/tensorpagerd not found: build the tensorpagerd target"
compgen -G "${build_dir}/client_sdk/python/tensorpager/_native*.so" > /dev/null ||
  die "the tensorpager package is not built: build the tensorpager_python target (needs python3-dev python3-pybind11)"
/usr/bin/python3 -c 'import numpy, redis' 2> /dev/null ||
  die "python3-numpy and python3-redis are needed (apt-get install python3-numpy python3-redis)"
mkdir -p "${data_dir}"

exec /usr/bin/python3 "${here}/py_bench.py" --build_dir="${build_dir}" \
  --data_dir="${data_dir}" --redis_server="${REDIS_SERVER:-/usr/bin/redis-server}" \
  --seconds="${SECONDS_PER_CASE:-1.0}" "${options[@]}"
