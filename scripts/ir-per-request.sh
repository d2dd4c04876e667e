#!/usr/bin/env bash
# Instructions per request of the real server (memory store), counted by
# valgrind's callgrind: deterministic, so it shows the effect of a change
# that wall-clock load tests on a shared 2-core machine blur. Runs the
# server twice (1,000 and 3,000 requests on one keep-alive connection) and
# divides the difference, so start-up and shutdown cancel out.
#
#   scripts/ir-per-request.sh            # builds a symbolised release binary
#   RUST_LOG=warn scripts/ir-per-request.sh   # without the per-event log line
#   KEEP=1 ...                           # keep target/callgrind.out for
#                                        # callgrind_annotate --inclusive=yes
# Needs valgrind (apt-get install valgrind). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
export CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
TARGET=${CARGO_TARGET_DIR:-target/profiling}
CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin ims-callback
BIN=$TARGET/release/ims-callback
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

run() { # requests -> total instructions
  IMS_LISTEN="127.0.0.1:$PORT" IMS_STORE=memory RUST_LOG="${RUST_LOG:-info}" \
    valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  python3 scripts/bench/client.py "$PORT" "$1" "r$1"
  kill -INT "$pid"; wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$OUT"
}
A=$(run 1000)
B=$(run 3000)
echo "instructions per request: $(( (B - A) / 2000 ))"
[ -n "${KEEP:-}" ] && cp "$OUT" target/callgrind.out && echo "profile: target/callgrind.out"
true
