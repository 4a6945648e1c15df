#!/usr/bin/env bash
# Latency of innkeeper's remote client beside the Java client (3.8.0) on the
# same ops against the same standalone ZooKeeper, as a ratio (rust / java;
# below 1 means the Rust client is faster). ITERATIONS per op, default 2000.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
zk=.ci/zookeeper.sh
trap '"$zk" stop-all' EXIT
"$zk" standalone-start
eval "$("$zk" env)"
classes=$(mktemp -d)
jars=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar
javac -d "$classes" -cp "$jars" .ci/latency/RemoteLatency.java
java -cp "$classes:$jars:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar" \
  RemoteLatency "$INNKEEPER_ZK" "$n" | tee "$classes/java.txt"
INNKEEPER_ZK=$INNKEEPER_ZK cargo bench -q --bench remote_latency -- "$n" | tee "$classes/rust.txt"
echo "ratio rust/java of mean (p50):"
join <(awk '/^java/ {print $2, $4, $7}' "$classes/java.txt" | sort) \
     <(awk '/^rust/ {print $2, $4, $7}' "$classes/rust.txt" | sort) |
  awk '{printf "  %-13s %.2f (%.2f)\n", $1, $4 / $2, $5 / $3}'
rm -rf "$classes"
