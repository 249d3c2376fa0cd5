#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries the given
# binaries load, one per line: the runtime image installs exactly these
# (apt adds their own dependencies). Fails when a library belongs to no
# package, so a hand-built library cannot slip through unnoticed.
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: $0 BINARY..." >&2; exit 2; }
for binary in "$@"; do
  [[ -x $binary ]] || { echo "runtime-packages: $binary is not an executable" >&2; exit 2; }
done

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

packages=()
missing=0
while read -r lib; do
  if pkg=$(owner "$lib"); then
    packages+=("$pkg")
  else
    echo "runtime-packages: no Debian package holds $lib" >&2
    missing=1
  fi
done < <(ldd "$@" | awk '/=> \// { print $3 }' | sort -u)
[[ $missing -eq 0 ]] || exit 1
printf '%s\n' "${packages[@]}" | sort -u
