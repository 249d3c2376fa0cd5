#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries the given
# binaries load, one per line: the runtime image installs exactly these
# (apt adds their own dependencies). Fails when a library belongs to no
# package, so a hand-built library cannot slip through unnoticed.
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: $0 BINARY..." >&2; exit 2; }

owner() {  # the package holding file $1 (usrmerge: try both spellings)
  local f=$1 real
  real=$(readlink -f "$f")
  for candidate in "$f" "$real" "${f#/usr}" "/usr${f#/usr}" "${real#/usr}" "/usr${real#/usr}"; do
    if out=$(dpkg-query -S "$candidate" 2>/dev/null); then
      echo "${out%%:*}"
      return 0
    fi
  done
  return 1
}

libs=$(ldd "$@" | awk '/=> \// { print $3 }' | sort -u)
status=0
for lib in $libs; do
  if ! owner "$lib"; then
    echo "runtime-packages: no Debian package holds $lib" >&2
    status=1
  fi
done | sort -u
exit "${PIPESTATUS[0]:-$status}"
