#!/usr/bin/env bash
# ctest entry of the Node.js client test. Installs @grpc/grpc-js and
# @grpc/proto-loader from package-lock.json (npm ci) into the build tree,
# then runs client_test.js with node's test runner. Exit 77 (skipped) when
# node/npm are missing or the packages cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${TP_BINARY_DIR:?TP_BINARY_DIR must name the build directory}"
work="$TP_BINARY_DIR/tests/node"

skip() { echo "SKIP: $*"; exit 77; }
command -v node >/dev/null || skip "node is not installed (Debian: nodejs)"
command -v npm >/dev/null || skip "npm is not installed (Debian: npm)"

# Reinstall when the lock file changed since the last install.
mkdir -p "$work"
if [[ ! -d "$work/node_modules" ]] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  if ! (cd "$work" && npm ci --no-audit --no-fund --loglevel=error); then
    rm -rf "$work/node_modules"
    skip "npm ci could not install @grpc/grpc-js and @grpc/proto-loader (no npm registry?)"
  fi
fi
export NODE_PATH="$work/node_modules"
exec node --test "$here/client_test.js"
