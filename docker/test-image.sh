#!/usr/bin/env bash
# Proves docker/Dockerfile on a machine without an image registry: builds a
# Debian bookworm base with debootstrap (from the host's apt mirror), imports
# it into podman, builds the image with it, runs the container and checks it:
# health over gRPC (tpctl in the image and the HEALTHCHECK), a block written
# and read back, non-root user, read-only root filesystem, the 0.0.0.0
# defaults, no start on 0.0.0.0 without a tenants file, health (and no block
# RPC without a token) with docker/tenants mounted, /metrics, and a prompt
# clean exit on SIGTERM.
#
#   docker/test-image.sh            as root
# Environment:
#   TP_IMAGE_RUN_TESTS=1   also run the test suite inside the image build
#                          (default 0: build only, a few minutes)
#   TP_KEEP_IMAGES=1       keep the built image (the base image is always
#                          kept, as a cache)
# Exit codes: 0 passed, 1 failed, 77 skipped (podman cannot be installed or
# cannot run containers here; the reason is printed).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
base_image=localhost/tensorpager-bookworm-base:latest
image=localhost/tensorpagerd:test
container=tensorpager-image-test-$$
work=$(mktemp -d /tmp/tensorpager-image-test.XXXXXX)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*"; }

[[ $(id -u) -eq 0 ]] || skip "needs root (apt-get, debootstrap, podman)"

# runc, not crun (crun fails on hybrid cgroup v1 hosts); cgroupfs; events in
# a file (no systemd/journald needed).
podman_cmd=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file)
limits=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)

cleanup() {
  "${podman_cmd[@]}" rm -f -t 0 "$container" >/dev/null 2>&1 || true
  # The build stages stay as podman's layer cache for the next run.
  if [[ "${TP_KEEP_IMAGES:-0}" != 1 ]]; then
    "${podman_cmd[@]}" rmi -f "$image" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

install_tools() {
  command -v podman >/dev/null && command -v runc >/dev/null &&
    command -v debootstrap >/dev/null && return 0
  log "installing podman, runc and debootstrap"
  if ! "$repo/deploy/install-deps.sh" --container >"$work/apt.log" 2>&1; then
    tail -5 "$work/apt.log"
    skip "cannot install podman, runc and debootstrap with apt-get"
  fi
}

# The mirror the host's apt uses for bookworm (deb822 or one-line format).
host_mirror() {
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [[ -z "$m" ]]; then
    m=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

make_base() {
  if "${podman_cmd[@]}" image exists "$base_image"; then
    log "base image $base_image already present"
    return 0
  fi
  local rootfs="$work/rootfs" mirror
  mirror=$(host_mirror)
  log "debootstrap bookworm from $mirror"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
         >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log"
    skip "debootstrap could not build a bookworm root from $mirror"
  fi
  # Like debian:bookworm-slim: no package lists or caches in the layer.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . |
    "${podman_cmd[@]}" import - "$base_image" >"$work/import.log" 2>&1 ||
    { tail -5 "$work/import.log"; fail "podman import of the base failed"; }
  rm -rf "$rootfs"
}

# Tracked and untracked-but-not-ignored files only: no build trees.
make_context() {
  local ctx="$work/context"
  mkdir -p "$ctx"
  if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -co --exclude-standard -z |
       xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' |
       tar -c -T - -f -) | tar -C "$ctx" -x
  else
    tar -C "$repo" -c --exclude='./build*' --exclude='*/node_modules' . |
      tar -C "$ctx" -x
  fi
  echo "$ctx"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

in_container() { "${podman_cmd[@]}" exec "$container" "$@"; }

main() {
  [[ -z "${TP_IN_IMAGE_BUILD:-}" ]] || skip "inside an image build: containers cannot nest"
  install_tools
  "${podman_cmd[@]}" info >"$work/podman-info.log" 2>&1 ||
    { tail -5 "$work/podman-info.log"; skip "podman cannot run here"; }
  # A container that runs at all, or there is nothing to test.
  make_base
  if ! "${podman_cmd[@]}" run --rm --network=host "${limits[@]}" "$base_image" \
         true >"$work/smoke.log" 2>&1; then
    tail -5 "$work/smoke.log"
    skip "podman cannot start containers here"
  fi

  local ctx started
  ctx=$(make_context)
  log "building docker/Dockerfile (RUN_TESTS=${TP_IMAGE_RUN_TESTS:-0})"
  started=$SECONDS
  "${podman_cmd[@]}" build --format docker --network=host "${limits[@]}" \
    --build-arg DEBIAN_IMAGE="$base_image" \
    --build-arg RUN_TESTS="${TP_IMAGE_RUN_TESTS:-0}" \
    -f "$ctx/docker/Dockerfile" -t "$image" "$ctx" >"$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; fail "image build failed"; }
  log "image built in $((SECONDS - started)) s: $("${podman_cmd[@]}" image inspect --format '{{.Size}}' "$image") bytes"

  # The image's own defaults: all interfaces, the data volume.
  local printed
  printed=$("${podman_cmd[@]}" run --rm --network=host "${limits[@]}" \
    --health-interval=disable "$image" --print_config)
  grep -q '^grpc_address: 0.0.0.0:50051  # environment: TENSORPAGER_GRPC_ADDRESS' <<<"$printed" ||
    fail "the image does not listen on 0.0.0.0:50051 by default:\n$printed"
  grep -q '^data_dir: /var/lib/tensorpager' <<<"$printed" ||
    fail "the image's data dir is not /var/lib/tensorpager"
  grep -q '^tenants_file: /etc/tensorpager/tenants.yaml' <<<"$printed" ||
    fail "the image does not read /etc/tensorpager/tenants.yaml by default"
  # Secure by default: on 0.0.0.0 with no tenants file mounted it refuses to
  # start, and says why.
  local refused
  mkdir -p "$work/refused" "$work/auth-data"
  chown 10001:10001 "$work/refused" "$work/auth-data"
  if refused=$("${podman_cmd[@]}" run --rm --network=host "${limits[@]}" \
       --health-interval=disable -e TENSORPAGER_GRPC_ADDRESS=0.0.0.0:0 \
       -e TENSORPAGER_METRICS_ADDRESS=127.0.0.1:0 -v "$work/refused:/var/lib/tensorpager" \
       "$image" 2>&1); then
    fail "the image started without a tenants file"
  fi
  grep -q 'cannot read the tenants file /etc/tensorpager/tenants.yaml' <<<"$refused" ||
    fail "no tenants file: not the expected message:\n$(tail -3 <<<"$refused")"
  # With docker/tenants mounted (compose.yaml's tenants file) it serves
  # 0.0.0.0; health needs no token, block RPCs do.
  local auth=tensorpager-image-auth-$$ auth_port
  auth_port=$(free_port)
  "${podman_cmd[@]}" run -d --rm --name "$auth" --network=host "${limits[@]}" \
    --read-only --tmpfs /tmp -v "$work/auth-data:/var/lib/tensorpager" \
    -v "$repo/docker/tenants:/etc/tensorpager:ro" --health-interval=disable \
    -e TENSORPAGER_GRPC_ADDRESS="0.0.0.0:$auth_port" \
    -e TENSORPAGER_METRICS_ADDRESS=127.0.0.1:0 \
    -e TENSORPAGER_TARGET="127.0.0.1:$auth_port" -e TENSORPAGER_RAM_BUDGET=64MiB \
    "$image" >/dev/null
  local auth_ok=0
  for _ in $(seq 1 100); do
    if "${podman_cmd[@]}" exec "$auth" tpctl --timeout 2s health >/dev/null 2>&1; then auth_ok=1; break; fi
    sleep 0.3
  done
  if [[ $auth_ok != 1 ]]; then
    "${podman_cmd[@]}" logs "$auth" 2>&1 | tail -20
    "${podman_cmd[@]}" rm -f -t 0 "$auth" >/dev/null 2>&1 || true
    fail "with docker/tenants mounted: never healthy"
  fi
  if "${podman_cmd[@]}" exec "$auth" tpctl status >/dev/null 2>&1; then
    "${podman_cmd[@]}" rm -f -t 0 "$auth" >/dev/null 2>&1 || true
    fail "with a tenants file, tpctl status without a token succeeded"
  fi
  "${podman_cmd[@]}" rm -f -t 0 "$auth" >/dev/null 2>&1 || true
  log "no tenants file: refused; with one: healthy, and calls without a token refused"

  # Host networking shares the host's ports: free ones, not 50051/9464.
  local grpc_port metrics_port data="$work/data"
  grpc_port=$(free_port)
  metrics_port=$(free_port)
  mkdir -p "$data" && chown 10001:10001 "$data"
  # Loopback only, where no authentication is needed: no tenants file, so
  # tpctl in the image calls without a token.
  log "running the container (gRPC 127.0.0.1:$grpc_port, metrics $metrics_port)"
  "${podman_cmd[@]}" run -d --name "$container" --network=host "${limits[@]}" \
    --read-only --tmpfs /tmp -v "$data:/var/lib/tensorpager" \
    --health-interval=disable \
    -e TENSORPAGER_TENANTS_FILE= \
    -e TENSORPAGER_GRPC_ADDRESS="127.0.0.1:$grpc_port" \
    -e TENSORPAGER_METRICS_ADDRESS="127.0.0.1:$metrics_port" \
    -e TENSORPAGER_TARGET="127.0.0.1:$grpc_port" \
    -e TENSORPAGER_RAM_BUDGET=64MiB \
    "$image" >/dev/null

  local healthy=0
  for _ in $(seq 1 100); do
    if in_container tpctl --timeout 2s health >/dev/null 2>&1; then healthy=1; break; fi
    [[ $("${podman_cmd[@]}" inspect -f '{{.State.Running}}' "$container") == true ]] ||
      { "${podman_cmd[@]}" logs "$container" | tail -20; fail "the container exited"; }
    sleep 0.3
  done
  [[ $healthy == 1 ]] || { "${podman_cmd[@]}" logs "$container" | tail -20; fail "never healthy"; }
  log "healthy: $(in_container tpctl health)"
  # The image's HEALTHCHECK, run by hand (its timer would need systemd).
  "${podman_cmd[@]}" healthcheck run "$container" || fail "the image's HEALTHCHECK fails"
  # From the host, over the host's loopback, when tpctl is built here.
  local host_tpctl="${TP_BINARY_DIR:-$repo/build}/client_sdk/tpctl/tpctl"
  if [[ -x "$host_tpctl" ]]; then
    [[ $("$host_tpctl" --target "127.0.0.1:$grpc_port" health) == SERVING ]] ||
      fail "health over gRPC from the host is not SERVING"
  fi

  [[ $(in_container id -u) == 10001 ]] || fail "the server does not run as uid 10001"
  in_container sh -c 'touch /usr/local/bin/x' 2>/dev/null &&
    fail "the root filesystem is writable"

  head -c 3000000 /dev/urandom >"$work/block"
  "${podman_cmd[@]}" cp "$work/block" "$container:/tmp/block"
  in_container tpctl put image-test /tmp/block --region_type kv_cache
  in_container tpctl swap-out image-test
  in_container tpctl get image-test /tmp/back
  in_container cmp /tmp/block /tmp/back || fail "block read back differs"
  in_container tpctl status | head -3
  log "io engine: $(in_container tpctl status --json | grep '"io_engine"')"
  /usr/bin/python3 - "$metrics_port" <<'PY' || fail "no /metrics from the container"
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
assert "tensorpager_swap_out_bytes_total" in body, body[:500]
PY

  # PID 1 takes SIGTERM and exits 0 well before the grace period.
  started=$SECONDS
  "${podman_cmd[@]}" stop -t 30 "$container" >/dev/null
  local code
  code=$("${podman_cmd[@]}" inspect -f '{{.State.ExitCode}}' "$container")
  [[ $code == 0 ]] || { "${podman_cmd[@]}" logs "$container" | tail -20; fail "exit code $code after SIGTERM"; }
  (( SECONDS - started < 20 )) || fail "took $((SECONDS - started)) s to stop on SIGTERM"
  log "stopped cleanly on SIGTERM in $((SECONDS - started)) s"
  [[ -n $(ls "$data") ]] || fail "nothing was written to the data volume"
  echo "PASS: docker/Dockerfile builds, runs and serves"
}

main "$@"
