#!/usr/bin/env bash
# Where the server's CPU goes under load: `perf record` (with DWARF call
# graphs) on a symbolised release build, memory store, while wrk drives
# scripts/bench/callback.lua at 64 connections; then a flat report.
#
#   scripts/profile-http.sh [SECONDS]   # default 10; profile target/perf.data
#   perf report -i target/perf.data --children --sort sym   # to explore
#
# Needs perf (apt-get install linux-perf) and wrk. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 2; }
export CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
TARGET=${CARGO_TARGET_DIR:-target/profiling}
CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin ims-callback
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
IMS_LISTEN="127.0.0.1:$PORT" IMS_STORE="${IMS_STORE:-memory}" RUST_LOG="${RUST_LOG:-info}" \
  "$TARGET/release/ims-callback" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.025; done
wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" --timeout 5s -s scripts/bench/callback.lua "http://127.0.0.1:$PORT/" | grep RESULT &
WRK=$!
sleep 1
perf record -F 2999 -g --call-graph dwarf,16384 -p "$PID" -o target/perf.data -- sleep $((SECONDS_PER_RUN - 2)) >/dev/null 2>&1
wait $WRK
perf report -i target/perf.data --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -5
perf report -i target/perf.data --no-children --sort sym --stdio -g none 2>/dev/null | grep '%' | head -40
