#!/usr/bin/env bash
# Runs the SDK's GPU tests and tp-gpu-bench on a machine with a CUDA device.
#
#   tests/gpu/run.sh DIR
#
# DIR is either a build dir (tests/gpu/sdk_gpu_test, tests/gpu/tp-gpu-bench,
# server/tensorpagerd; the tests run through ctest -L gpu) or a bundle made
# by tests/gpu/bundle.sh (the binaries at the top, server/tensorpagerd and
# lib/ with the shared libraries the target machine lacks). The binaries
# find tensorpagerd through TP_BINARY_DIR, set here. A missing device is a
# failure here (TP_REQUIRE_GPU=1), not a skip. Takes about a minute.
set -euo pipefail

dir=$(cd "${1:?usage: run.sh BUILD_OR_BUNDLE_DIR}" && pwd)
die() { echo "run.sh: $*" >&2; exit 1; }

if [[ -x ${dir}/tests/gpu/tp-gpu-bench ]]; then
  layout=build
  bin_dir=${dir}/tests/gpu
elif [[ -x ${dir}/tp-gpu-bench ]]; then
  layout=bundle
  bin_dir=${dir}
  export LD_LIBRARY_PATH=${dir}/lib${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}
else
  die "${dir} holds neither tests/gpu/tp-gpu-bench (build dir) nor tp-gpu-bench (bundle)"
fi
[[ -x ${dir}/server/tensorpagerd ]] || die "${dir}/server/tensorpagerd not found"
export TP_BINARY_DIR=${dir}
export TP_REQUIRE_GPU=${TP_REQUIRE_GPU:-1}

echo "== $(date -u +%FT%TZ) ${layout} layout: ${dir}"
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader || true

status=0
echo "== GPU tests"
if [[ ${layout} == build ]]; then
  (cd "${dir}" && ctest -L gpu --output-on-failure --timeout 120) || status=1
else
  "${bin_dir}/sdk_gpu_test" --gtest_color=no || status=1
fi

echo "== tp-gpu-bench"
"${bin_dir}/tp-gpu-bench" || status=1
exit ${status}
