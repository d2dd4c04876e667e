#!/usr/bin/env bash
# Forwarding throughput: fills a store with distinct changes (the release
# server under wrk for FILL_SECONDS, every request a new media), stops it,
# then times `ims-callback forward --drain` delivering the whole log to a
# local receiver that answers 200 to everything (examples/bare.rs; it
# counts nothing and checks no signature, so the figure is the forwarder's
# own cost: store reads, signing, one HTTP exchange per change, the
# delivery records).
#
#   scripts/bench-forward.sh [FILL_SECONDS]     # default 10
#   BENCH_STORES="redb redis" scripts/bench-forward.sh 10
#
# Prints per store: changes delivered, seconds, changes/s.
set -euo pipefail
cd "$(dirname "$0")/.."
FILL="${1:-10}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin ims-callback
cargo build --release --quiet --example bare
BIN=target/release/ims-callback
BARE=target/release/examples/bare
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.025; done; echo "port $1 never opened" >&2; return 1; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" --daemonize no >/dev/null 2>&1 &
PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done

RECV_PORT=$(free_port)
IMS_LISTEN="127.0.0.1:$RECV_PORT" "$BARE" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$RECV_PORT"

export IMS_FORWARD_URL="http://127.0.0.1:$RECV_PORT/hook"
export IMS_FORWARD_SECRET="whsec_c2VjcmV0LWtleS1vZi10aGUtZm9yd2FyZC1iZW5jaA=="
echo "| store | changes delivered | seconds | changes/s | summary |"
echo "|---|---|---|---|---|"
for store in ${BENCH_STORES:-redb redis}; do
  case $store in
    redb) spec="redb:$WORK/forward.redb" ;;
    redis) spec="redis://127.0.0.1:$REDIS_PORT/?prefix=fwd:" ;;
    *) echo "unknown store $store" >&2; exit 1 ;;
  esac
  port=$(free_port)
  # The server must not forward what it stores: the drain below does.
  env -u IMS_FORWARD_URL -u IMS_FORWARD_SECRET IMS_STORE="$spec" IMS_LISTEN="127.0.0.1:$port" \
    RUST_LOG=warn "$BIN" >"$WORK/serve-$store.log" 2>&1 &
  pid=$!; PIDS+=("$pid")
  wait_port "$port"
  wrk -t2 -c64 -d"${FILL}s" -s scripts/bench/callback.lua "http://127.0.0.1:$port/" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  start=$(date +%s.%N)
  summary=$(IMS_STORE="$spec" RUST_LOG=warn "$BIN" forward --drain)
  end=$(date +%s.%N)
  delivered=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["delivered"])' "$summary")
  python3 -c 'import sys; s = float(sys.argv[3]) - float(sys.argv[2]); d = int(sys.argv[4]); print(f"| {sys.argv[1]} | {d} | {s:.1f} | {d / s:,.0f} | `{sys.argv[5]}` |")' "$store" "$start" "$end" "$delivered" "$summary"
done
