#!/usr/bin/env bash
# Builds the Function Compute code package of ims-callback:
#   target/fc/code/bootstrap   the release binary, run by the custom runtime
#   target/fc/code.zip         the same, zipped with its executable bit
#
#   scripts/build-fc.sh [extra cargo args, e.g. --locked]
#
# The binary is linked against glibc 2.17 with cargo-zigbuild (zig as the C
# compiler and linker, for ring and redb), so it runs on every FC custom
# runtime: custom.debian10 has glibc 2.28, custom.debian11/12 newer ones.
# cargo-zigbuild and zig come from PyPI (`cargo-zigbuild`, `ziglang`); they
# are installed with pip when missing. The result is checked with
# scripts/check-glibc.sh against FC_MAX_GLIBC (default 2.28).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

target=x86_64-unknown-linux-gnu
glibc=2.17
max_glibc=${FC_MAX_GLIBC:-2.28}
out=$root/target/fc

say() { printf '== %s\n' "$*"; }
die() { printf 'build-fc: %s\n' "$*" >&2; exit 1; }

have_zig() {
  command -v zig >/dev/null 2>&1 || python3 -c 'import ziglang' >/dev/null 2>&1
}

# --- tools ---------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
if ! command -v cargo-zigbuild >/dev/null 2>&1 || ! have_zig; then
  command -v python3 >/dev/null || die "python3 is needed to install cargo-zigbuild and ziglang from PyPI"
  say "installing cargo-zigbuild and ziglang from PyPI"
  if ! python3 -m pip install --quiet cargo-zigbuild ziglang; then
    # An externally managed Python (PEP 668) refuses global installs: use a
    # virtual environment under target/ instead and put it first on PATH, so
    # that both cargo-zigbuild and the `python3 -m ziglang` it runs come from it.
    say "pip refused a global install; using a virtualenv in target/fc-tools"
    python3 -m venv "$root/target/fc-tools" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$root/target/fc-tools/bin/python3" -m pip install --quiet cargo-zigbuild ziglang
    export PATH="$root/target/fc-tools/bin:$PATH"
  fi
  hash -r
  command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild is not on PATH after pip install (pip's script directory may be missing from PATH)"
  have_zig || die "zig is not available after pip install ziglang"
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
  say "adding the $target target"
  rustup target add "$target"
fi

# --- build ---------------------------------------------------------------
say "cargo zigbuild --release --target $target.$glibc --bin ims-callback $*"
cargo zigbuild --release --target "$target.$glibc" --bin ims-callback "$@"

# cargo puts a glibc-suffixed target's output under the plain triple.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null ||
  echo "${CARGO_TARGET_DIR:-$root/target}")
bin=$target_dir/$target/release/ims-callback
[ -x "$bin" ] || die "expected binary not found: $bin"

# --- package -------------------------------------------------------------
rm -rf "$out/code" "$out/code.zip"
mkdir -p "$out/code"
cp "$bin" "$out/code/bootstrap"
chmod 0755 "$out/code/bootstrap"

say "checking glibc symbol versions (at most $max_glibc)"
glibc_report=$("$root/scripts/check-glibc.sh" "$out/code/bootstrap" "$max_glibc") || {
  die "target/fc/code/bootstrap needs a newer glibc than $max_glibc (FC custom.debian10); not packaged"
}
echo "$glibc_report"

if command -v python3 >/dev/null; then
  # zipfile's CLI drops Unix modes; write the entry by hand so that the
  # bootstrap stays executable (regular file, rwxr-xr-x, made on Unix), with a
  # fixed timestamp so that the same binary gives the same zip.
  python3 - "$out/code/bootstrap" "$out/code.zip" <<'PY'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
info.create_system = 3                   # Unix, so unzip honours the mode
info.external_attr = (0o100755 << 16)    # S_IFREG | 0755
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
with zipfile.ZipFile(dst) as z:
    mode = z.getinfo("bootstrap").external_attr >> 16
    assert mode & 0o111 == 0o111, oct(mode)
PY
elif command -v zip >/dev/null; then
  (cd "$out/code" && zip -q -X -9 "$out/code.zip" bootstrap)
else
  die "neither python3 nor zip is available to make code.zip"
fi

size=$(stat -c %s "$out/code/bootstrap")
zsize=$(stat -c %s "$out/code.zip")
max_needed=$(sed -n 's/^max GLIBC: \([^ ]*\).*/\1/p' <<<"$glibc_report")
say "done"
printf '  binary   target/fc/code/bootstrap  %s bytes (%s MiB)\n' "$size" "$(awk "BEGIN{printf \"%.1f\", $size/1048576}")"
printf '  package  target/fc/code.zip        %s bytes (%s MiB)\n' "$zsize" "$(awk "BEGIN{printf \"%.1f\", $zsize/1048576}")"
printf '  glibc    needs at most GLIBC_%s (limit %s)\n' "$max_needed" "$max_glibc"
