#!/usr/bin/env bash
# HTTP load test of the real release server, per backend, against a bare
# axum baseline measured in the same run. Load: wrk, 64 connections (override
# with BENCH_CONNECTIONS), every request a distinct valid IMS event.
#
#   scripts/bench-http.sh [SECONDS]     # default 30; CI smoke: 2
#   BENCH_ROWS="memory redis" scripts/bench-http.sh 10   # only these rows
#                                       # (bare, memory, redb, redis, hot;
#                                       # redb-nofeed, redis-nofeed: the same
#                                       # with IMS_CHANGE_FEED=off, for the
#                                       # change log's cost as a same-run ratio)
#   BENCH_ROWS=work scripts/bench-http.sh 10   # calibration: the bare route
#                                       # busy for N µs per request, N in
#                                       # BENCH_WORK_US (default "2 4 6 8")
#   BENCH_ROWS="floors memory" scripts/bench-http.sh 10   # diagnosis: the
#                                       # receiver's stages alone
#                                       # (examples/floors.rs)
#   BENCH_ROWS=pairs BENCH_PAIRS=5 scripts/bench-http.sh 10   # the memory
#                                       # ratio as the median of N alternating
#                                       # bare/memory pairs, each against its
#                                       # own baseline: single runs on a
#                                       # shared VM spread by ±10 points
#   BENCH_ROWS=interleaved BENCH_ROUNDS=6 scripts/bench-http.sh 30   # the
#                                       # memory ratio with both servers up
#                                       # for the whole run and the load
#                                       # alternating between them in
#                                       # SECONDS/ROUNDS bursts: each server
#                                       # still gets SECONDS of load in one
#                                       # process (its store grows through
#                                       # all of it), but a drift of the
#                                       # machine's speed over minutes falls
#                                       # on both alike
#
# Prints a Markdown table: requests/s, p50, p99, ratio to the baseline, CPU
# time per request (the server's own, and the whole machine's — server,
# wrk, Redis and the kernel: the load generator shares the cores, so a
# slower server also makes every request cost wrk and the kernel more),
# RSS before/after, and for the hot-media row the compare-and-set retries
# and a loss check (events acknowledged with 200 vs raw events in the
# store).
# After the redb row, scripts/bench/fsync-probe.py measures the disk's own
# fdatasync tail (a group commit's worth of random pages), which bounds
# what redb's p99 can be on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-30}"
CONNS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"

if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk; }
fi
# Two builds: built beside the examples, the server would take the
# features of the dev-dependencies (tokio's test-util, whose paused-time
# clock check sits on every timer call), and not be the binary users run.
cargo build --release --quiet --bin ims-callback
cargo build --release --quiet --example bare --example floors
BIN=target/release/ims-callback
BARE=target/release/examples/bare
FLOORS=target/release/examples/floors
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time in clock ticks: one process (user + system), and the whole
# machine's busy time (every state but idle and iowait).
TICKS=$(getconf CLK_TCK)
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine_cpu() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
# One field of wrk's RESULT line (scripts/bench/report.lua): result_field LINE NAME.
result_field() { sed -E "s/.*[ ]$2=([0-9.]+).*/\1/" <<<"$1"; }
wait_port() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.025; done; echo "port $1 never opened" >&2; return 1; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" --daemonize no >/dev/null 2>&1 &
PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done

BASE_RPS=""
ROWS=" ${BENCH_ROWS:-bare memory redb redis hot} "
echo "wrk: ${THREADS} threads, ${CONNS} connections, ${SECONDS_PER_RUN} s per row; $(nproc) cores"
echo
if [[ $ROWS != " interleaved " ]]; then
  echo "| server | req/s | p50 ms | p99 ms | vs bare | server CPU µs/req | machine CPU µs/req | RSS idle → after | notes |"
  echo "|---|---|---|---|---|---|---|---|---|"
fi

# Starts a server (cmd..., env set by caller) on a free port, its output
# in $WORK/PORT.log; sets SERVER_PORT and SERVER_PID once the port accepts.
start_server() {
  SERVER_PORT=$(free_port)
  IMS_LISTEN="127.0.0.1:$SERVER_PORT" RUST_LOG="${RUST_LOG:-info}" "$@" >"$WORK/$SERVER_PORT.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  wait_port "$SERVER_PORT"
}

run_row() { # name script cmd... (env set by caller)
  local name=$1 script=$2; shift 2
  start_server "$@"
  local port=$SERVER_PORT pid=$SERVER_PID
  local idle; idle=$(rss_kb "$pid")
  local proc_before machine_before; proc_before=$(proc_cpu "$pid"); machine_before=$(machine_cpu)
  local out; out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_RUN}s" --timeout 5s -s "$script" "http://127.0.0.1:$port/" | grep '^RESULT')
  local proc_after machine_after; proc_after=$(proc_cpu "$pid"); machine_after=$(machine_cpu)
  local after; after=$(rss_kb "$pid")
  local rps p50 p99 requests errors
  rps=$(result_field "$out" rps); p50=$(result_field "$out" p50_ms); p99=$(result_field "$out" p99_ms)
  requests=$(result_field "$out" requests); errors=$(result_field "$out" errors)
  [ -z "$BASE_RPS" ] && BASE_RPS=$rps
  local ratio; ratio=$(python3 -c "print(f'{$rps/$BASE_RPS*100:.0f} %')")
  LAST_RATIO=$(python3 -c "print($rps/$BASE_RPS*100)")
  # CPU time per request answered: the server's own (user + system), and
  # the whole machine's (server, wrk, Redis and the kernel's loopback work).
  local server_us machine_us
  server_us=$(python3 -c "print(f'{($proc_after - $proc_before) / $TICKS / max($requests, 1) * 1e6:.1f}')")
  machine_us=$(python3 -c "print(f'{($machine_after - $machine_before) / $TICKS / max($requests, 1) * 1e6:.1f}')")
  local notes="$requests requests, $errors errors"
  if [ -n "${HOT_PREFIX:-}" ]; then
    local retries stored
    retries=$(curl -s "http://127.0.0.1:$port/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("cas_retries"))')
    stored=$(redis-cli -p "$REDIS_PORT" --scan --pattern "${HOT_PREFIX}*:d:event/*" | wc -l)
    notes="$notes, $retries CAS retries, $((requests - errors)) acknowledged / $stored stored"
  fi
  echo "| $name | $rps | $p50 | $p99 | $ratio | $server_us | $machine_us | $((idle / 1024)) → $((after / 1024)) MiB | $notes |"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

if [[ $ROWS == " interleaved " ]]; then
  ROUNDS="${BENCH_ROUNDS:-6}"
  SEG=$(( SECONDS_PER_RUN / ROUNDS )); (( SEG < 1 )) && SEG=1
  declare -A PORT PID IDLE ERRS CPU MCPU RPS BURSTS P50 P99
  NAMES=("bare axum" "ims-callback, memory")
  for name in "${NAMES[@]}"; do
    if [[ $name == bare* ]]; then cmd=("$BARE"); else cmd=(env IMS_STORE=memory "$BIN"); fi
    start_server "${cmd[@]}"
    PID[$name]=$SERVER_PID; PORT[$name]=$SERVER_PORT
    IDLE[$name]=$(rss_kb "$SERVER_PID"); ERRS[$name]=0; CPU[$name]=0; MCPU[$name]=0
  done
  burst() { # name round
    local name=$1 pid=${PID[$1]} before mbefore out
    before=$(proc_cpu "$pid"); mbefore=$(machine_cpu)
    # A tag per round keeps every burst's media new to the store.
    out=$(BENCH_SEGMENT=$(printf %02d "$2") wrk -t"$THREADS" -c"$CONNS" -d"${SEG}s" --timeout 5s \
      -s scripts/bench/callback.lua "http://127.0.0.1:${PORT[$name]}/" | grep '^RESULT')
    CPU[$name]=$(( CPU[$name] + $(proc_cpu "$pid") - before )); MCPU[$name]=$(( MCPU[$name] + $(machine_cpu) - mbefore ))
    ERRS[$name]=$(( ERRS[$name] + $(result_field "$out" errors) ))
    RPS[$name]+="$(result_field "$out" rps) "
    BURSTS[$name]+="$(result_field "$out" requests) "
    P50[$name]+="$(result_field "$out" p50_ms) "
    P99[$name]+="$(result_field "$out" p99_ms) "
  }
  for r in $(seq 1 "$ROUNDS"); do
    # Alternate which server goes first, so neither always follows the other.
    if (( r % 2 )); then burst "${NAMES[0]}" "$r"; burst "${NAMES[1]}" "$r"
    else burst "${NAMES[1]}" "$r"; burst "${NAMES[0]}" "$r"; fi
  done
  echo "interleaved: $ROUNDS rounds of one ${SEG} s burst per server, both servers up throughout"
  echo
  # req/s over the bursts' own durations (each burst's requests / its rate):
  # wrk runs a little longer than asked.
  rate() { python3 -c 'import sys; r, q = (list(map(int, a.split())) for a in sys.argv[1:3]); print(sum(q) / sum(n / x for n, x in zip(q, r)))' "${RPS[$1]}" "${BURSTS[$1]}"; }
  BASE_RATE=$(rate "${NAMES[0]}")
  echo "| server | req/s | p50 ms (median of bursts) | p99 ms (worst burst) | vs bare | server CPU µs/req | machine CPU µs/req | RSS idle → after | notes |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for name in "${NAMES[@]}"; do
    python3 - "$name" "${BURSTS[$name]}" "${ERRS[$name]}" "${CPU[$name]}" "${MCPU[$name]}" "$TICKS" \
      "$(rate "$name")" "$BASE_RATE" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" \
      "$(( IDLE[$name] / 1024 ))" "$(( $(rss_kb "${PID[$name]}") / 1024 ))" <<'PY'
import statistics, sys
name, reqs, errs, cpu, mcpu, ticks, rate, base = sys.argv[1:9]
rps, p50, p99 = (sys.argv[i].split() for i in (9, 10, 11))
idle, after = sys.argv[12:14]
reqs, ticks, rate = sum(map(int, reqs.split())), int(ticks), float(rate)
print(f"| {name} | {rate:.0f} | {statistics.median(map(float, p50)):.2f} | {max(map(float, p99)):.2f} "
      f"| {rate / float(base) * 100:.0f} % | {int(cpu) / ticks / max(reqs, 1) * 1e6:.1f} "
      f"| {int(mcpu) / ticks / max(reqs, 1) * 1e6:.1f} | {idle} → {after} MiB "
      f"| {reqs} requests, {errs} errors; bursts {', '.join(rps)} req/s |")
PY
  done
  echo
  python3 - "${RPS[${NAMES[0]}]}" "${RPS[${NAMES[1]}]}" "$BASE_RATE" "$(rate "${NAMES[1]}")" <<'PY'
import sys
bare, mem = ([int(x) for x in a.split()] for a in sys.argv[1:3])
rounds = sorted(m / b * 100 for b, m in zip(bare, mem))
print(f"memory / bare, interleaved: {float(sys.argv[4]) / float(sys.argv[3]) * 100:.0f} % of the requests/s "
      f"(per round {rounds[0]:.0f}–{rounds[-1]:.0f} %)")
PY
  exit 0
fi
if [[ $ROWS == " pairs " ]]; then
  RATIOS=()
  for i in $(seq 1 "${BENCH_PAIRS:-5}"); do
    BASE_RPS=""
    run_row "pair $i: bare axum" scripts/bench/callback.lua "$BARE"
    IMS_STORE=memory run_row "pair $i: ims-callback, memory" scripts/bench/callback.lua "$BIN"
    RATIOS+=("$LAST_RATIO")
  done
  echo
  python3 -c "import statistics,sys; r=sorted(map(float,sys.argv[1:])); print(f'memory / bare over {len(r)} pairs: median {statistics.median(r):.0f} %, range {r[0]:.0f}–{r[-1]:.0f} %')" "${RATIOS[@]}"
  exit 0
fi
# The baseline always runs: the ratios need it.
run_row "bare axum (baseline)" scripts/bench/callback.lua "$BARE"
if [[ $ROWS == *" floors "* ]]; then
  FLOOR=body run_row "floor: body read only" scripts/bench/callback.lua "$FLOORS"
  FLOOR=core run_row "floor: + parse, fingerprint, validate, derive" scripts/bench/callback.lua "$FLOORS"
  FLOOR=pipeline run_row "floor: + whole pipeline, store keeps nothing" scripts/bench/callback.lua "$FLOORS"
  FLOOR=memory run_row "floor: + whole pipeline, memory store" scripts/bench/callback.lua "$FLOORS"
fi
[[ $ROWS == *" memory "* ]] && IMS_STORE=memory run_row "ims-callback, memory" scripts/bench/callback.lua "$BIN"
if [[ $ROWS == *" redb "* ]]; then
  IMS_STORE="redb:$WORK/bench.redb" run_row "ims-callback, redb (durable commits)" scripts/bench/callback.lua "$BIN"
  # The disk's own fsync tail bounds the redb row's p99: show it beside it.
  REDB_DISK=$(python3 scripts/bench/fsync-probe.py "$WORK" "$(( SECONDS_PER_RUN < 10 ? SECONDS_PER_RUN : 10 ))")
fi
[[ $ROWS == *" redis "* ]] && IMS_STORE="redis://127.0.0.1:$REDIS_PORT/?prefix=bench:" run_row "ims-callback, Redis, distinct media" scripts/bench/callback.lua "$BIN"
[[ $ROWS == *" redb-nofeed "* ]] && IMS_CHANGE_FEED=off IMS_STORE="redb:$WORK/bench-nofeed.redb" run_row "ims-callback, redb, change feed off" scripts/bench/callback.lua "$BIN"
[[ $ROWS == *" redis-nofeed "* ]] && IMS_CHANGE_FEED=off IMS_STORE="redis://127.0.0.1:$REDIS_PORT/?prefix=nofeed:" run_row "ims-callback, Redis, change feed off" scripts/bench/callback.lua "$BIN"
if [[ $ROWS == *" work "* ]]; then
  for us in ${BENCH_WORK_US:-2 4 6 8}; do
    BARE_WORK_US=$us run_row "bare axum + $us µs of work per request" scripts/bench/callback.lua "$BARE"
  done
fi
[[ $ROWS == *" hot "* ]] && HOT_PREFIX="hot" IMS_STORE="redis://127.0.0.1:$REDIS_PORT/?prefix=hot:" run_row "ims-callback, Redis, one hot media" scripts/bench/hot.lua "$BIN"
[ -n "${REDB_DISK:-}" ] && { echo; echo "$REDB_DISK"; }
true
