#!/usr/bin/env bash
# The same client load against `innkeeper serve` and Apache ZooKeeper 3.8,
# started side by side in one run; prints two tables with a ratio per row:
#
#   1. durable vs durable (what users run): innkeeper's default durable mode
#      (fdatasync before a write is acknowledged) against ZooKeeper's default
#      (forceSync=yes: the transaction log is fsynced before the ack);
#   2. no fsync: innkeeper --in-memory against ZooKeeper forceSync=no.
#
#   benches/compare-zookeeper.sh                  # both tables, a few minutes
#   QUICK=1 benches/compare-zookeeper.sh          # smaller series
#   REPEAT=3 benches/compare-zookeeper.sh         # median of 3 rounds (noisy machines)
#   TABLES=durable benches/compare-zookeeper.sh   # only the first table
#   PORT_BASE=22100 benches/compare-zookeeper.sh  # fixed ports (base .. base+3)
#
# Load: examples/zkbench.rs (a raw-wire client on innkeeper::proto), run
# against one server at a time so they do not share the CPU while measured.
# Pipelined ("async") runs keep 1000 requests outstanding on one session.
# Ratio column: how many times better innkeeper is (>1 = innkeeper better):
# zk/ik for times and sizes, ik/zk for rates. Needs the apt package
# `zookeeper` and Java.
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
NEXT_PORT=${PORT_BASE:-0}

# run_pair NAME "INNKEEPER FLAGS" "ZOOKEEPER JVM FLAGS": both servers fresh,
# the load against each in turn; results in $WORK/NAME-{ik,zk}.txt.
run_pair() {
    local name=$1 ik_flags=$2 zk_flags=$3
    local ik_port zk_port ik_pid zk_pid t0
    if [ "$NEXT_PORT" = 0 ]; then
        ik_port=$(free_port)
        zk_port=$(free_port)
    else
        ik_port=$NEXT_PORT
        zk_port=$((NEXT_PORT + 1))
        NEXT_PORT=$((NEXT_PORT + 2))
    fi
    local ik=$WORK/$name-ik.txt zk=$WORK/$name-zk.txt
    mkdir -p "$WORK/$name-ik-data" "$WORK/$name-zk-data"

    t0=$(now_ns)
    # shellcheck disable=SC2086
    "$TARGET/release/innkeeper" serve --port "$ik_port" --max-client-connections 0 \
        --data-dir "$WORK/$name-ik-data" $ik_flags 2>"$WORK/$name-ik.log" &
    ik_pid=$!
    echo "$ik_pid" >"$WORK/$name-ik.pid"
    "$BENCH" --addr "127.0.0.1:$ik_port" --ready-since-ns "$t0" >"$ik"

    {
        echo "tickTime=2000"
        echo "dataDir=$WORK/$name-zk-data"
        echo "clientPort=$zk_port"
        echo "clientPortAddress=127.0.0.1"
        echo "admin.enableServer=false"
        echo "maxClientCnxns=0"
    } >"$WORK/$name-zoo.cfg"
    t0=$(now_ns)
    # shellcheck disable=SC2086
    java $zk_flags -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain \
        "$WORK/$name-zoo.cfg" >"$WORK/$name-zk.log" 2>&1 &
    zk_pid=$!
    echo "$zk_pid" >"$WORK/$name-zk.pid"
    "$BENCH" --addr "127.0.0.1:$zk_port" --ready-since-ns "$t0" >"$zk"

    printf 'rss_idle_kib\t%s\n' "$(rss_kib "$ik_pid")" >>"$ik"
    printf 'rss_idle_kib\t%s\n' "$(rss_kib "$zk_pid")" >>"$zk"
    for round in $(seq 1 "${REPEAT:-1}"); do
        echo "$name round $round: the load against innkeeper, then ZooKeeper..." >&2
        "$BENCH" --addr "127.0.0.1:$ik_port" "${ARGS[@]}" >>"$ik"
        "$BENCH" --addr "127.0.0.1:$zk_port" "${ARGS[@]}" >>"$zk"
    done
    echo "$name: filling $FILL nodes of 100 bytes in each..." >&2
    "$BENCH" --addr "127.0.0.1:$ik_port" --fill "$FILL" >/dev/null
    "$BENCH" --addr "127.0.0.1:$zk_port" --fill "$FILL" >/dev/null
    printf 'rss_with_nodes_kib\t%s\n' "$(rss_kib "$ik_pid")" >>"$ik"
    printf 'rss_with_nodes_kib\t%s\n' "$(rss_kib "$zk_pid")" >>"$zk"
    kill "$ik_pid" "$zk_pid" 2>/dev/null || true
    wait "$ik_pid" "$zk_pid" 2>/dev/null || true
    rm -f "$WORK/$name-ik.pid" "$WORK/$name-zk.pid"
}

TABLES=${TABLES:-durable,memory}
if [[ $TABLES == *durable* ]]; then
    run_pair durable "" ""
fi
if [[ $TABLES == *memory* ]]; then
    run_pair memory "--in-memory" "-Dzookeeper.forceSync=no"
fi

# --- the tables --------------------------------------------------------------------
for name in durable memory; do
    [ -e "$WORK/$name-ik.txt" ] || continue
    case $name in
        durable) title="durable vs durable: innkeeper serve (default: fdatasync per batch) vs ZooKeeper default (forceSync=yes)" ;;
        memory) title="no fsync: innkeeper serve --in-memory vs ZooKeeper forceSync=no" ;;
    esac
    echo
    echo "## $title"
    echo
    python3 - "$WORK/$name-ik.txt" "$WORK/$name-zk.txt" "$FILL" <<'PY'
import sys
def load(path):
    samples = {}
    for line in open(path):
        k, v = line.split("\t")
        samples.setdefault(k, []).append(float(v))
    # The median of the rounds (REPEAT) for each metric.
    return {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
ik, zk, fill = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
print("| metric (%s nodes for rss_with_nodes) | innkeeper | ZooKeeper | ratio |" % fill)
print("|---|---:|---:|---:|")
for key in ik:
    a, b = ik[key], zk.get(key)
    if b is None:
        continue
    higher_better = key.endswith("_per_s")
    ratio = (a / b if higher_better else b / a) if a and b else float("nan")
    print("| %s | %.1f | %.1f | %.2f× |" % (key, a, b, ratio))
PY
done
echo
echo "ratio > 1: innkeeper is better by that factor (lower time/memory, higher rate)."
