#!/usr/bin/env bash
# Runs the conformance suite (tests/conformance) against Apache ZooKeeper 3.8
# through the remote client: first a standalone server, then a 3-server
# ensemble, where the failover test also runs. Every server is stopped on exit.
#
# To run the same suite against another server (e.g. `innkeeper serve`):
#   INNKEEPER_ZK=127.0.0.1:PORT cargo test --test conformance
set -euo pipefail
cd "$(dirname "$0")/.."
zk=.ci/zookeeper.sh
trap '"$zk" stop-all' EXIT
eval "$("$zk" env)"
export INNKEEPER_ZK_CTL="$PWD/$zk"

echo "--- conformance: standalone ZooKeeper at $INNKEEPER_ZK"
"$zk" standalone-start
INNKEEPER_ZK=$INNKEEPER_ZK cargo test --test conformance
"$zk" standalone-stop

echo "--- conformance: ZooKeeper ensemble at $INNKEEPER_ZK_ENSEMBLE (with failover)"
"$zk" ensemble-start
INNKEEPER_ZK=$INNKEEPER_ZK_ENSEMBLE cargo test --test conformance -- --skip failover::
# Alone and one at a time: these stop and pause servers, which would fail
# requests of unrelated checks that happen to be in flight on them.
INNKEEPER_ZK=$INNKEEPER_ZK_ENSEMBLE INNKEEPER_ZK_ENSEMBLE=$INNKEEPER_ZK_ENSEMBLE \
  cargo test --test conformance failover:: -- --nocapture --test-threads=1
