#!/usr/bin/env bash
# Checks that an ELF binary needs no newer glibc than MAX (default 2.28, the
# glibc of FC's custom.debian10 runtime).
#
#   scripts/check-glibc.sh BINARY [MAX]
#
# Prints the highest GLIBC_x.y symbol version the binary requires and exits
# 0 when it is <= MAX, 1 when it is newer, 2 on usage errors or when the
# binary cannot be read. A binary that needs no versioned glibc symbol at all
# (static, musl) passes.
set -euo pipefail

usage() { echo "usage: $0 BINARY [MAX_GLIBC_VERSION]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
bin=$1
max=${2:-2.28}
[[ $max =~ ^[0-9]+(\.[0-9]+)+$ ]] || { echo "check-glibc: bad version '$max'" >&2; exit 2; }
[ -f "$bin" ] || { echo "check-glibc: no such file: $bin" >&2; exit 2; }

# The version needs of the dynamic symbols, from whichever tool is present.
if command -v objdump >/dev/null; then
  dump=$(objdump -T "$bin" 2>/dev/null) || { echo "check-glibc: objdump cannot read $bin" >&2; exit 2; }
elif command -v readelf >/dev/null; then
  dump=$(readelf -W --version-info --dyn-syms "$bin" 2>/dev/null) || { echo "check-glibc: readelf cannot read $bin" >&2; exit 2; }
elif command -v nm >/dev/null; then
  dump=$(nm -D "$bin" 2>/dev/null) || { echo "check-glibc: nm cannot read $bin" >&2; exit 2; }
else
  echo "check-glibc: needs objdump, readelf or nm (binutils)" >&2
  exit 2
fi

needed=$(grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' <<<"$dump" | sed 's/^GLIBC_//' | sort -uV | tail -n1 || true)
if [ -z "$needed" ]; then
  echo "max GLIBC: none (no versioned glibc symbols) <= $max: ok"
  exit 0
fi

highest=$(printf '%s\n%s\n' "$needed" "$max" | sort -V | tail -n1)
if [ "$highest" = "$max" ] || [ "$needed" = "$max" ]; then
  echo "max GLIBC: $needed <= $max: ok"
  exit 0
fi
echo "max GLIBC: $needed > $max: $bin needs glibc $needed, newer than the $max allowed" >&2
echo "  (FC custom.debian10 has glibc 2.28; build with scripts/build-fc.sh, which targets glibc 2.17)" >&2
exit 1
