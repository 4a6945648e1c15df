#!/usr/bin/env bash
# Runs the command-line tests (tests/cli) against Apache ZooKeeper 3.8 as
# well as `innkeeper serve`: a standalone ZooKeeper with its AdminServer on
# loopback is started fresh; first `/commands/mntr` of innkeeper and of
# ZooKeeper are compared after the same workload (alone, so no other test's
# nodes or connections are counted), then the whole CLI suite runs with
# INNKEEPER_ZK set. The server is stopped on exit.
#
# Ports: $ZK_STANDALONE_PORT (default 21850) for clients and the next one
# for the AdminServer; state under $ZK_BASE (default /tmp/innkeeper-zk-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
export ZK_BASE=${ZK_BASE:-/tmp/innkeeper-zk-cli}
export ZK_STANDALONE_PORT=${ZK_STANDALONE_PORT:-21850}
admin_port=$((ZK_STANDALONE_PORT + 1))
export ZK_EXTRA_CONFIG="admin.enableServer=true
admin.serverPort=$admin_port
admin.serverAddress=127.0.0.1"
zk=.ci/zookeeper.sh
trap '"$zk" standalone-stop' EXIT
"$zk" standalone-start
export INNKEEPER_ZK=127.0.0.1:$ZK_STANDALONE_PORT

echo "--- cli: mntr of innkeeper serve vs ZooKeeper's AdminServer at 127.0.0.1:$admin_port"
INNKEEPER_ZK_ADMIN=127.0.0.1:$admin_port \
  cargo test --test cli admin::mntr_matches -- --exact admin::mntr_matches_zookeepers_admin_server_for_the_same_workload
echo "--- cli: the command line against innkeeper serve and ZooKeeper at $INNKEEPER_ZK"
cargo test --test cli
