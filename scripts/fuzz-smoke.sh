#!/usr/bin/env bash
# CI smoke test of the fuzz targets (docs/fuzzing.md): builds them once, then
# runs each for a short while from the committed seeds (fuzz/seeds/<target>/).
# A crash, panic or failed assertion fails the script; the input is left in
# fuzz/artifacts/<target>/ and the command to reproduce it is printed.
#
# Needs the nightly toolchain (libFuzzer instrumentation). Without it this
# prints a notice and exits 0, so that stable-only machines are not blocked.
# Installs cargo-fuzz from crates.io when it is missing.
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 30, at most 30)
#   FUZZ_TARGETS      targets to run (default "parse callback merge")
#   FUZZ_TARGET_DIR   cargo target directory of the fuzz build
#                     (default fuzz/target)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ] || [ "$seconds" -gt 30 ]; then
  echo "FUZZ_SECONDS must be 1..30, got '$seconds'" >&2
  exit 2
fi
targets=${FUZZ_TARGETS:-parse callback merge}
target_dir=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "== fuzz smoke: SKIPPED — no nightly toolchain (cargo +nightly); fuzzing needs it." >&2
  echo "   Install it with: rustup toolchain install nightly --profile minimal" >&2
  exit 0
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The same flags for build and run, so that run does not rebuild: no
# sanitizer (the crate has no unsafe code; ASan would halve the speed) and
# debug assertions on (integer overflow is a finding).
flags=(--sanitizer none --debug-assertions --target-dir "$target_dir")

started=$SECONDS
echo "== fuzz build ($(cargo +nightly fuzz --version))"
cargo +nightly fuzz build "${flags[@]}"
echo "   built in $((SECONDS - started)) s"

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT

for target in $targets; do
  seeds=$PWD/fuzz/seeds/$target
  if [ ! -d "$seeds" ]; then
    echo "no seeds for fuzz target '$target' ($seeds)" >&2
    exit 2
  fi
  options=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1)
  case $target in
    parse | callback) options+=(-dict="$PWD/fuzz/ims.dict") ;;
    merge) options+=(-max_len=8192) ;;
  esac
  echo "== fuzz $target for $seconds s"
  mkdir -p "$corpus/$target"
  # New inputs go to the temporary corpus (first directory), never into
  # the committed seeds.
  log=$corpus/$target.log
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus/$target" "$seeds" \
    -- "${options[@]}" >"$log" 2>&1; then
    # The finding: the log from the panic (or libFuzzer's error) on.
    line=$(grep -n -m1 -e 'panicked at' -e 'ERROR: libFuzzer' "$log" | cut -d: -f1 || true)
    if [ -n "$line" ]; then sed -n "$line,\$p" "$log" | head -n 150 >&2 || true; else tail -n 150 "$log" >&2; fi
    echo "== fuzz $target FAILED; the input is in fuzz/artifacts/$target/ — reproduce with" >&2
    echo "   cargo +nightly fuzz run ${flags[*]} $target fuzz/artifacts/$target/<file>" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log" | sed 's/^/   /' || true
done
echo "== fuzz smoke passed in $((SECONDS - started)) s"
