#!/usr/bin/env bash
# Packs what tests/gpu/run.sh needs into a directory that runs on a machine
# without this one's libraries (gRPC, RocksDB, Debian's Abseil...):
#
#   tests/gpu/bundle.sh BUILD_DIR OUTDIR
#   (copy OUTDIR over) OUTDIR/run.sh OUTDIR
#
# Uses the collect-libs tool named by $COLLECT_LIBS (the device machine's
# tooling provides one; nothing in this repository) to copy tensorpagerd, the GPU test binary and tp-gpu-bench with their shared
# libraries (not libc or the GPU driver) into OUTDIR and OUTDIR/lib, without
# debug info (STRIP=0 keeps it).
set -euo pipefail

build_dir=$(cd "${1:?usage: bundle.sh BUILD_DIR OUTDIR}" && pwd)
out=${2:?usage: bundle.sh BUILD_DIR OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
collect=${COLLECT_LIBS:?set COLLECT_LIBS to the collect-libs.sh that gathers binaries and their libraries}

bins=("${build_dir}/server/tensorpagerd" "${build_dir}/tests/gpu/sdk_gpu_test"
      "${build_dir}/tests/gpu/tp-gpu-bench")
for b in "${bins[@]}"; do
  [[ -x ${b} ]] || { echo "bundle.sh: ${b} not built (cmake --build ${build_dir} --target tensorpagerd sdk_gpu_test tp-gpu-bench)" >&2; exit 1; }
done
[[ -x ${collect} ]] || { echo "bundle.sh: ${collect} not found" >&2; exit 1; }

rm -rf "${out}"
mkdir -p "${out}/server"
"${collect}" "${out}" "${bins[@]}"
mv "${out}/tensorpagerd" "${out}/server/tensorpagerd"
# Debug info is most of the size; the device machine takes at most 64 MiB.
if [[ ${STRIP:-1} == 1 ]]; then
  strip --strip-debug "${out}/sdk_gpu_test" "${out}/tp-gpu-bench" \
    "${out}/server/tensorpagerd" "${out}"/lib/*
fi
cp "${here}/run.sh" "${out}/run.sh"
chmod +x "${out}/run.sh"
echo "bundle.sh: ${out} ready; on the GPU machine: ${out}/run.sh ${out}"
