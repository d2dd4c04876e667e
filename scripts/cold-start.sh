#!/usr/bin/env bash
# Cold start of the release binary: exec → port accepting, and exec → first
# callback answered (200), median and p90 over N starts (default 20), for
# the bare axum baseline, redb and Redis. Usage: scripts/cold-start.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-20}"

# Two builds: built beside the examples, the server would take the
# features of the dev-dependencies (tokio's test-util, whose paused-time
# clock check sits on every timer call), and not be the binary users run.
cargo build --release --quiet --bin ims-callback
cargo build --release --quiet --example bare
BIN=target/release/ims-callback
BARE=target/release/examples/bare
WORK=$(mktemp -d)
REDIS_PID=""
cleanup() {
  # Wait for Redis to exit: it may still be writing into $WORK.
  [ -n "$REDIS_PID" ] && { kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; } || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" --daemonize no >/dev/null 2>&1 &
REDIS_PID=$!
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done

python3 - "$RUNS" "$BIN" "$BARE" "$WORK" "$REDIS_PORT" <<'PY'
import os, socket, statistics, subprocess, sys, time

runs, binary, bare, work, redis_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
body = open("events/FileUploadComplete.json", "rb").read()

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(cmd, env, callback):
    port = free_port()
    env = dict(os.environ, IMS_LISTEN=f"127.0.0.1:{port}", RUST_LOG="warn", **env)
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{cmd} exited with {proc.returncode}")
            time.sleep(0.00005)
    t_accept = time.perf_counter_ns() - t0
    t_first = None
    if callback:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        reply = conn.recv(65536)
        t_first = time.perf_counter_ns() - t0
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    conn.close()
    proc.terminate(); proc.wait()
    return t_accept / 1e6, (t_first / 1e6 if t_first else None)

def row(name, cmd, env, callback=True):
    accept, first = [], []
    for i in range(runs):
        e = {k: v.replace("{i}", str(i)) for k, v in env.items()}
        a, f = start(cmd, e, callback)
        accept.append(a)
        if f is not None: first.append(f)
    def fmt(xs):
        if not xs: return "—", "—"
        xs = sorted(xs); return f"{statistics.median(xs):.2f}", f"{xs[int(len(xs) * 0.9) - 1]:.2f}"
    a50, a90 = fmt(accept); f50, f90 = fmt(first)
    print(f"| {name} | {a50} | {a90} | {f50} | {f90} |")

print(f"runs per row: {runs}")
print("| server | exec→accepting median ms | p90 ms | exec→first 200 median ms | p90 ms |")
print("|---|---|---|---|---|")
row("bare axum (baseline)", [bare], {}, callback=False)
row("ims-callback, memory", [binary], {"IMS_STORE": "memory"})
row("ims-callback, redb (new file each start)", [binary], {"IMS_STORE": f"redb:{work}/s{{i}}.redb"})
row("ims-callback, redb (existing file)", [binary], {"IMS_STORE": f"redb:{work}/shared.redb"})
row("ims-callback, Redis", [binary], {"IMS_STORE": f"redis://127.0.0.1:{redis_port}/?prefix=cold{{i}}:"})
PY
