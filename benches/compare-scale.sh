#!/usr/bin/env bash
# Scale, side by side in one run: `innkeeper serve` and Apache ZooKeeper 3.8,
# both durable (innkeeper's default durable mode: fdatasync before a write is
# acknowledged; ZooKeeper's default forceSync=yes), each loaded with NODES
# nodes of 16 B at /pop/b<i/1000>/n<i%1000> by one client keeping 100
# requests outstanding, then stopped (SIGTERM) and started again.
#
#   benches/compare-scale.sh                    # NODES=1000000
#   NODES=100000 benches/compare-scale.sh       # a quick run
#   PORT_BASE=23010 benches/compare-scale.sh    # fixed ports (base, base+1)
#   ZK_HEAP=1g benches/compare-scale.sh         # ZooKeeper's -Xmx (default 1g)
#   ONLY=ik benches/compare-scale.sh            # one server only (ik or zk), no ratios
#   TIMELINE=1 KEEP=1 benches/compare-scale.sh  # per-second writes and worst latency on
#                                               # stderr; keep the work dir (server logs)
#
# One server at a time, so they never share the CPU while measured. Rows:
#   load rate               NODES / the time of the whole load (bucket
#                           creates included in the time, not in the count)
#   worst / p99 write       one create's time from send to reply while loading
#   RSS after loading       the server's VmRSS 2 s after the load
#   disk after loading      the data directory's size 2 s after the load
#   restart → first getData from spawning the server process to the first
#                           successful getData of the last node created (for
#                           ZooKeeper this includes the JVM's start)
#   RSS after restart       VmRSS right after that getData
# Ratio column: how many times better innkeeper is (>1 = innkeeper better):
# zk/ik for times and sizes, ik/zk for rates. Load: examples/zkbench.rs
# (a raw-wire client on innkeeper::proto). Needs the apt package
# `zookeeper` and Java.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/innkeeper-scale.XXXXXX)
ZK_CP=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-nop.jar
NODES=${NODES:-1000000}
WINDOW=${WINDOW:-100}
ZK_HEAP=${ZK_HEAP:-1g}
LAST=$((NODES - 1))
LAST_PATH="/pop/b$((LAST / 1000))/n$((LAST % 1000))"

cleanup() {
    for pidfile in "$WORK"/*.pid; do
        [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ns() { date +%s%N; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
dir_kib() { du -sk "$1" | cut -f1; }

cargo build --release --bin innkeeper --example zkbench
BENCH=$TARGET/release/examples/zkbench
if [ -n "${PORT_BASE:-}" ]; then
    IK_PORT=$PORT_BASE
    ZK_PORT=$((PORT_BASE + 1))
else
    IK_PORT=$(free_port)
    ZK_PORT=$(free_port)
fi

start_ik() {
    "$TARGET/release/innkeeper" serve --port "$IK_PORT" --max-client-connections 0 \
        --data-dir "$WORK/ik-data" 2>>"$WORK/ik.log" &
    echo $! >"$WORK/ik.pid"
}

start_zk() {
    # shellcheck disable=SC2086
    java "-Xmx$ZK_HEAP" -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain \
        "$WORK/zoo.cfg" >>"$WORK/zk.log" 2>&1 &
    echo $! >"$WORK/zk.pid"
}

# stop NAME: SIGTERM and wait (at most 5 minutes) for the process to exit.
stop() {
    local pid
    pid=$(cat "$WORK/$1.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 3000); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
    rm -f "$WORK/$1.pid"
}

# measure NAME PORT: fresh data dir, load, settle, stop, restart, first get.
measure() {
    local name=$1 port=$2 out=$WORK/$1.txt t0 pid
    mkdir -p "$WORK/$name-data"
    t0=$(now_ns)
    "start_$name"
    "$BENCH" --addr "127.0.0.1:$port" --ready-since-ns "$t0" >/dev/null
    echo "$name: loading $NODES nodes, $WINDOW outstanding..." >&2
    "$BENCH" --addr "127.0.0.1:$port" --populate "$NODES" --window "$WINDOW" \
        ${TIMELINE:+--timeline} >"$out"
    sleep 2
    pid=$(cat "$WORK/$name.pid")
    printf 'rss_after_load_mib\t%s\n' "$(($(rss_kib "$pid") / 1024))" >>"$out"
    printf 'disk_after_load_mib\t%s\n' "$(($(dir_kib "$WORK/$name-data") / 1024))" >>"$out"
    echo "$name: stopping and starting again..." >&2
    stop "$name"
    t0=$(now_ns)
    "start_$name"
    "$BENCH" --addr "127.0.0.1:$port" --first-get "$LAST_PATH" --ready-since-ns "$t0" >>"$out"
    pid=$(cat "$WORK/$name.pid")
    printf 'rss_after_restart_mib\t%s\n' "$(($(rss_kib "$pid") / 1024))" >>"$out"
    stop "$name"
}

{
    echo "tickTime=2000"
    echo "dataDir=$WORK/zk-data"
    echo "clientPort=$ZK_PORT"
    echo "clientPortAddress=127.0.0.1"
    echo "admin.enableServer=false"
    echo "maxClientCnxns=0"
} >"$WORK/zoo.cfg"

if [ -n "${ONLY:-}" ]; then
    measure "$ONLY" "$( [ "$ONLY" = ik ] && echo "$IK_PORT" || echo "$ZK_PORT")"
    cat "$WORK/$ONLY.txt"
    exit 0
fi
measure ik "$IK_PORT"
measure zk "$ZK_PORT"

echo
echo "## $NODES nodes of 16 B, $WINDOW outstanding, both durable: innkeeper serve vs ZooKeeper $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo 3.8) (-Xmx$ZK_HEAP)"
echo
python3 - "$WORK/ik.txt" "$WORK/zk.txt" <<'PY'
import sys
def load(path):
    return {k: float(v) for k, v in (line.rstrip("\n").split("\t") for line in open(path))}
ik, zk = load(sys.argv[1]), load(sys.argv[2])
rows = [
    ("load rate (nodes/s)", "load_nodes_per_s", True),
    ("worst write while loading (ms)", "load_worst_write_ms", False),
    ("p99 write while loading (ms)", "load_p99_write_ms", False),
    ("RSS after loading (MiB)", "rss_after_load_mib", False),
    ("disk after loading (MiB)", "disk_after_load_mib", False),
    ("restart → first getData (ms; ZooKeeper: JVM start included)", "restart_to_first_get_ms", False),
    ("RSS after restart (MiB)", "rss_after_restart_mib", False),
]
print("| figure | innkeeper | ZooKeeper | ratio |")
print("|---|---:|---:|---:|")
for title, key, higher_better in rows:
    a, b = ik.get(key), zk.get(key)
    if a is None or b is None:
        continue
    ratio = (a / b if higher_better else b / a) if a and b else float("nan")
    print("| %s | %.1f | %.1f | %.2f× |" % (title, a, b, ratio))
PY
echo
echo "ratio > 1: innkeeper is better by that factor (lower time/memory, higher rate)."
