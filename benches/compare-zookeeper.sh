#!/usr/bin/env bash
# The same client load against `innkeeper serve` and Apache ZooKeeper 3.8,
# started side by side in one run; prints one table with a ratio per row.
#
#   benches/compare-zookeeper.sh            # full run, about two minutes
#   QUICK=1 benches/compare-zookeeper.sh    # smaller series
#   REPEAT=3 benches/compare-zookeeper.sh   # median of 3 rounds (noisy machines)
#
# Load: examples/zkbench.rs (a raw-wire client on innkeeper::proto), run
# against one server at a time so they do not share the CPU while measured.
# Ratio column: how many times better innkeeper is (>1 = innkeeper better),
# i.e. zk/ik for times and ik/zk for rates and sizes are zk/ik too.
#
# Fairness notes: innkeeper runs in memory (no durable store on this branch
# yet); ZooKeeper runs with zookeeper.forceSync=no (it still writes its
# transaction log, without fsync). Needs the apt package `zookeeper` and Java.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/innkeeper-bench.XXXXXX)
ZK_CP=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-nop.jar
FILL=${FILL:-100000}
ARGS=()
if [ "${QUICK:-0}" = 1 ]; then ARGS=(--ops 500 --pipelined 5000 --seconds 1); FILL=20000; fi

cleanup() {
    for pidfile in "$WORK"/*.pid; do
        [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ns() { date +%s%N; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

cargo build --release --bin innkeeper --example zkbench
BENCH=$TARGET/release/examples/zkbench
IK_PORT=$(free_port)
ZK_PORT=$(free_port)

# --- start both, timing spawn → first session ------------------------------------
t0=$(now_ns)
"$TARGET/release/innkeeper" serve --port "$IK_PORT" --in-memory --max-client-connections 0 \
    2>"$WORK/ik.log" &
echo $! >"$WORK/ik.pid"
"$BENCH" --addr "127.0.0.1:$IK_PORT" --ready-since-ns "$t0" >"$WORK/ik.txt"

mkdir -p "$WORK/zk-data"
cat >"$WORK/zoo.cfg" <<EOF
tickTime=2000
dataDir=$WORK/zk-data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
EOF
t0=$(now_ns)
java -Dzookeeper.forceSync=no -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain \
    "$WORK/zoo.cfg" >"$WORK/zk.log" 2>&1 &
echo $! >"$WORK/zk.pid"
"$BENCH" --addr "127.0.0.1:$ZK_PORT" --ready-since-ns "$t0" >"$WORK/zk.txt"

IK_PID=$(cat "$WORK/ik.pid")
ZK_PID=$(cat "$WORK/zk.pid")
printf 'rss_idle_kib\t%s\n' "$(rss_kib "$IK_PID")" >>"$WORK/ik.txt"
printf 'rss_idle_kib\t%s\n' "$(rss_kib "$ZK_PID")" >>"$WORK/zk.txt"

# --- the load, one server at a time, alternating; medians of REPEAT rounds ------
for round in $(seq 1 "${REPEAT:-1}"); do
    echo "round $round: the load against innkeeper, then ZooKeeper..." >&2
    "$BENCH" --addr "127.0.0.1:$IK_PORT" "${ARGS[@]}" >>"$WORK/ik.txt"
    "$BENCH" --addr "127.0.0.1:$ZK_PORT" "${ARGS[@]}" >>"$WORK/zk.txt"
done

echo "filling $FILL nodes of 100 bytes in each..." >&2
"$BENCH" --addr "127.0.0.1:$IK_PORT" --fill "$FILL" >/dev/null
"$BENCH" --addr "127.0.0.1:$ZK_PORT" --fill "$FILL" >/dev/null
printf 'rss_with_nodes_kib\t%s\n' "$(rss_kib "$IK_PID")" >>"$WORK/ik.txt"
printf 'rss_with_nodes_kib\t%s\n' "$(rss_kib "$ZK_PID")" >>"$WORK/zk.txt"

# --- the table -------------------------------------------------------------------
python3 - "$WORK/ik.txt" "$WORK/zk.txt" "$FILL" <<'EOF'
import sys
def load(path):
    samples = {}
    for line in open(path):
        k, v = line.split("\t")
        samples.setdefault(k, []).append(float(v))
    # The median of the rounds (REPEAT) for each metric.
    return {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
ik, zk, fill = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
print("%-34s %14s %14s %9s" % ("metric (%s nodes for rss_with_nodes)" % fill, "innkeeper", "zookeeper", "ratio"))
print("-" * 74)
for key in ik:
    a, b = ik[key], zk.get(key)
    if b is None:
        continue
    higher_better = key.endswith("_per_s")
    ratio = (a / b if higher_better else b / a) if a and b else float("nan")
    print("%-34s %14.1f %14.1f %8.2fx" % (key, a, b, ratio))
print()
print("ratio > 1: innkeeper is better by that factor (lower time/memory, higher rate).")
EOF
