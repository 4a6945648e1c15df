#!/usr/bin/env bash
# Start and stop Apache ZooKeeper 3.8 on loopback for innkeeper's conformance and failover tests.
#
# Usage: .ci/zookeeper.sh COMMAND [ARG]
#   standalone-start     one server on 127.0.0.1:$ZK_STANDALONE_PORT (default 21810); waits until ready
#   standalone-stop
#   ensemble-start       three servers on 127.0.0.1:21811..21813 (base $ZK_ENSEMBLE_PORT); waits for a quorum
#   ensemble-stop
#   server-stop N        stop server N (1..3) of the ensemble (SIGKILL, as a crash)
#   server-start N       start server N of the ensemble again; waits until it serves
#   server-pause N       freeze server N (SIGSTOP): it keeps its sockets open and answers nothing
#   server-resume N      let server N run again (SIGCONT); waits until it serves
#   ensemble-wait        waits until all three servers serve (leader or follower)
#   stop-all             stop everything this script started
#   env                  print the variables the tests read (INNKEEPER_ZK, INNKEEPER_ZK_ENSEMBLE, INNKEEPER_ZK_PIDS)
#
# State lives under $ZK_BASE (default /tmp/innkeeper-zk): one directory per server with zoo.cfg,
# data, log and pid file. Every wait is bounded by $ZK_WAIT_SECS (default 60).
# The JVM runs with extended types (TTL nodes) enabled, a 1 s container reaper, no fsync and a
# small heap; tickTime is 1000 ms, so sessions may ask for 2..20 s.
# $ZK_EXTRA_CONFIG (newline-separated zoo.cfg lines) is appended to every server's config, e.g.
# "admin.enableServer=true" and "admin.serverPort=PORT" for the AdminServer.
set -euo pipefail

ZK_BASE=${ZK_BASE:-/tmp/innkeeper-zk}
ZK_STANDALONE_PORT=${ZK_STANDALONE_PORT:-21810}
ZK_ENSEMBLE_PORT=${ZK_ENSEMBLE_PORT:-21811}
ZK_WAIT_SECS=${ZK_WAIT_SECS:-60}
ZK_JARS=${ZK_JARS:-/usr/share/java}

classpath() {
  local cp="$ZK_JARS/zookeeper.jar:$ZK_JARS/zookeeper-jute.jar:$ZK_JARS/slf4j-simple.jar"
  # The AdminServer (admin.enableServer=true) needs Jetty, the servlet API and Jackson.
  local jar
  for jar in servlet-api jetty9-server jetty9-servlet jetty9-http jetty9-io jetty9-util \
    jetty9-security jackson-databind jackson-core jackson-annotations; do
    [[ -f $ZK_JARS/$jar.jar ]] && cp="$cp:$ZK_JARS/$jar.jar"
  done
  echo "$cp"
}

# four_letter PORT WORD: the server's answer, or nothing.
four_letter() {
  local port=$1 word=$2
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf '%s' '$word' >&3 && cat <&3" 2>/dev/null || true
}

# write_config DIR PORT [SERVER_LINES...]
write_config() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir/data"
  {
    echo "tickTime=1000"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$dir/data"
    echo "clientPort=$port"
    echo "clientPortAddress=127.0.0.1"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=*"
    echo "maxClientCnxns=0"
    echo "forceSync=no"
    for line in "$@"; do echo "$line"; done
    if [[ -n ${ZK_EXTRA_CONFIG:-} ]]; then printf '%s\n' "$ZK_EXTRA_CONFIG"; fi
  } >"$dir/zoo.cfg"
}

start_server() {
  local dir=$1
  if [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    return 0
  fi
  nohup java -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dzookeeper.extendedTypesEnabled=true \
    -Dznode.container.checkIntervalMs=1000 \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$(classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

stop_server() {
  local dir=$1
  if [[ -f $dir/pid ]]; then
    local pid
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -s CONT "$pid" 2>/dev/null || true
      kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$dir/pid"
  fi
}

# wait_ready PORT: until `srvr` reports a Mode line (leader, follower or standalone).
wait_ready() {
  local port=$1 deadline=$((SECONDS + ZK_WAIT_SECS))
  while ((SECONDS < deadline)); do
    if four_letter "$port" srvr | grep -q '^Mode: \(standalone\|leader\|follower\)'; then
      return 0
    fi
    sleep 0.3
  done
  echo "zookeeper on 127.0.0.1:$port not ready after ${ZK_WAIT_SECS}s" >&2
  return 1
}

ensemble_ports() { echo "$ZK_ENSEMBLE_PORT" "$((ZK_ENSEMBLE_PORT + 1))" "$((ZK_ENSEMBLE_PORT + 2))"; }

ensemble_dir() { echo "$ZK_BASE/ensemble-$1"; }

ensemble_config() {
  local n=$1 ports
  read -r -a ports <<<"$(ensemble_ports)"
  local dir
  dir=$(ensemble_dir "$n")
  local lines=()
  for i in 1 2 3; do
    lines+=("server.$i=127.0.0.1:$((ZK_ENSEMBLE_PORT + 10 + i - 1)):$((ZK_ENSEMBLE_PORT + 20 + i - 1))")
  done
  write_config "$dir" "${ports[$((n - 1))]}" "${lines[@]}"
  echo "$n" >"$dir/data/myid"
}

cmd=${1:-}
case $cmd in
  standalone-start)
    dir=$ZK_BASE/standalone
    rm -rf "$dir/data"
    write_config "$dir" "$ZK_STANDALONE_PORT"
    start_server "$dir"
    wait_ready "$ZK_STANDALONE_PORT"
    ;;
  standalone-stop)
    stop_server "$ZK_BASE/standalone"
    ;;
  ensemble-start)
    for n in 1 2 3; do
      rm -rf "$(ensemble_dir "$n")/data"
      ensemble_config "$n"
      start_server "$(ensemble_dir "$n")"
    done
    for port in $(ensemble_ports); do wait_ready "$port"; done
    ;;
  ensemble-stop)
    for n in 1 2 3; do stop_server "$(ensemble_dir "$n")"; done
    ;;
  server-stop)
    stop_server "$(ensemble_dir "${2:?server number}")"
    ;;
  server-start)
    n=${2:?server number}
    start_server "$(ensemble_dir "$n")"
    read -r -a ports <<<"$(ensemble_ports)"
    wait_ready "${ports[$((n - 1))]}"
    ;;
  server-pause | server-resume)
    dir=$(ensemble_dir "${2:?server number}")
    signal=STOP
    [[ $cmd == server-resume ]] && signal=CONT
    kill -s "$signal" "$(cat "$dir/pid")"
    if [[ $cmd == server-resume ]]; then
      read -r -a ports <<<"$(ensemble_ports)"
      wait_ready "${ports[$(($2 - 1))]}"
    fi
    ;;
  ensemble-wait)
    for port in $(ensemble_ports); do wait_ready "$port"; done
    ;;
  stop-all)
    stop_server "$ZK_BASE/standalone"
    for n in 1 2 3; do stop_server "$(ensemble_dir "$n")"; done
    ;;
  env)
    read -r -a ports <<<"$(ensemble_ports)"
    echo "INNKEEPER_ZK=127.0.0.1:$ZK_STANDALONE_PORT"
    echo "INNKEEPER_ZK_ENSEMBLE=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
    echo "INNKEEPER_ZK_PIDS=$(ensemble_dir 1)/pid,$(ensemble_dir 2)/pid,$(ensemble_dir 3)/pid"
    ;;
  *)
    sed -n '2,23p' "$0" >&2
    exit 2
    ;;
esac
