#!/usr/bin/env bash
# `innkeeper load` and `innkeeper dump` of the same tree against
# `innkeeper serve --in-memory` and Apache ZooKeeper 3.8 (.ci/zookeeper.sh,
# forceSync=no), one after the other in one run; prints one table with the
# ratio ZooKeeper / innkeeper (>1 = innkeeper faster). The client is the same
# binary both times, so the ratio is the servers' (and the wire's) difference.
#
#   benches/cli-dump-load.sh                 # 5,000 nodes of 100 bytes
#   NODES=20000 benches/cli-dump-load.sh
#
# Ports: $BENCH_PORT (default 21870) for innkeeper, $ZK_STANDALONE_PORT
# (default 21871) for ZooKeeper. Uses $INNKEEPER_BIN, else builds the
# release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-5000}
BENCH_PORT=${BENCH_PORT:-21870}
export ZK_STANDALONE_PORT=${ZK_STANDALONE_PORT:-21871}
export ZK_BASE=${ZK_BASE:-/tmp/innkeeper-zk-cli-bench}
bin=${INNKEEPER_BIN:-}
if [[ -z $bin ]]; then
  cargo build --release --bin innkeeper
  bin=${CARGO_TARGET_DIR:-target}/release/innkeeper
fi
work=$(mktemp -d /tmp/innkeeper-cli-bench.XXXXXX)
serve_pid=
cleanup() {
  .ci/zookeeper.sh standalone-stop
  [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A dump of NODES nodes: 100 children under each of NODES/100 parents.
python3 - "$NODES" "$work/tree.json" <<'PY'
import base64, json, sys
n, out = int(sys.argv[1]), sys.argv[2]
acl = [{"perms": "cdrwa", "scheme": "world", "id": "anyone"}]
stat = {k: 0 for k in ["czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                       "ephemeral_owner", "data_length", "num_children", "pzxid"]}
nodes = [{"path": "/bench", "data": "", "kind": "persistent", "acl": acl, "stat": stat}]
data = base64.b64encode(bytes(range(100))).decode()
for p in range(max(1, n // 100)):
    nodes.append({"path": f"/bench/p{p:04d}", "data": "", "kind": "persistent", "acl": acl, "stat": stat})
    for c in range(99):
        nodes.append({"path": f"/bench/p{p:04d}/c{c:02d}", "data": data, "kind": "persistent",
                      "acl": acl, "stat": stat})
json.dump({"format": "innkeeper-dump", "version": 1, "root": "/bench", "nodes": nodes}, open(out, "w"))
print(f"{len(nodes)} nodes", file=sys.stderr)
PY

ms() { echo $(( ($2 - $1) / 1000000 )); }
measure() { # measure SERVER -> "load_ms dump_ms"
  local server=$1 t0 t1 t2
  t0=$(date +%s%N)
  "$bin" --server "$server" load "$work/tree.json" 2>/dev/null
  t1=$(date +%s%N)
  "$bin" --server "$server" dump /bench -o "$work/out.json"
  t2=$(date +%s%N)
  echo "$(ms "$t0" "$t1") $(ms "$t1" "$t2")"
}

"$bin" serve --in-memory --port "$BENCH_PORT" --log-level warn 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$BENCH_PORT") 2>/dev/null && break
  sleep 0.1
done
read -r ik_load ik_dump < <(measure "127.0.0.1:$BENCH_PORT")
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=

.ci/zookeeper.sh standalone-start
read -r zk_load zk_dump < <(measure "127.0.0.1:$ZK_STANDALONE_PORT")

ratio() { python3 -c "print(f'{$2/$1:.1f}x' if $1 else '-')" ; }
echo
echo "| $NODES nodes of 100 bytes | innkeeper (ms) | ZooKeeper (ms) | ratio |"
echo "|---|---|---|---|"
echo "| load (create each node) | $ik_load | $zk_load | $(ratio "$ik_load" "$zk_load") |"
echo "| dump (a multiRead of children and data, and getACL, per node) | $ik_dump | $zk_dump | $(ratio "$ik_dump" "$zk_dump") |"
