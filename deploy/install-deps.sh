#!/usr/bin/env bash
# Installs the Debian 12 packages tensorpager builds, runs and tests with.
# Idempotent: does nothing when everything is already present.
#   deploy/install-deps.sh          build + runtime packages
#   deploy/install-deps.sh --test   also the peers the tests and benchmarks use
#   deploy/install-deps.sh --container   only podman, runc and debootstrap
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev liburing-dev libxxhash-dev liblz4-dev libzstd-dev
  libblosc-dev libyaml-cpp-dev libssl-dev libgtest-dev libgmock-dev
  python3-dev python3-pybind11
)
test_pkgs=(
  fio redis-server prometheus python3-grpcio python3-protobuf yamllint
  util-linux procps jq openssl
  python3-numpy python3-torch python3-pytest python3-redis
)

# Only the container test (docker/test-image.sh) uses these; it installs
# them itself, so the normal test run does not wait for them.
container_pkgs=(podman runc debootstrap)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${test_pkgs[@]}"); fi
if [[ "${1:-}" == "--container" ]]; then want=("${container_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root (or with sudo) to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
