#!/usr/bin/env bash
# Security check: TLS and SASL DIGEST-MD5 with real ZooKeeper clients, run
# against Apache ZooKeeper 3.8 configured the same way as innkeeper serve,
# so the checks themselves are checked.
#
# Usage: .ci/security.sh [COMMAND]
#   (none) | all   certificates, both servers, every check below, then stop
#   certs DIR      only make the certificates and stores into DIR
#   zk-start DIR   start the secured ZooKeeper with the material in DIR (after certs)
#   zk-stop DIR
#
# Material (made here, nothing checked in): a CA, a server certificate for
# 127.0.0.1/localhost, a client certificate "CN=client1,OU=test,O=innkeeper"
# and one signed by another CA; PEM files for innkeeper and RemoteSession,
# PKCS#12 keystores and a JKS truststore made with keytool for Java.
# A JAAS file with a Server section (users bob and super) and a Client
# section (bob) serves both servers and the Java client.
#
# Checks, each against ZooKeeper and innkeeper:
#  1. the Java client (ClientCnxnSocketNetty, zookeeper.client.secure=true,
#     truststore) over TLS without and with a client certificate (x509 identity);
#  2. kazoo with use_ssl=True;
#  3. the Java client with the JAAS Client section (DIGEST-MD5) and kazoo with
#     sasl_options: whoAmI shows sasl:bob, a sasl:bob ACL is enforced against
#     an unauthenticated session; a wrong password is refused;
#  4. RemoteSession over TLS and SASL (cargo test --test security, pointed at the server);
#  5. innkeeper only: SIGHUP installs a new certificate, a broken file keeps the
#     last good one; its log holds no password.
#
# Ports: free ephemeral ones unless SEC_PORT_BASE is set (then BASE..BASE+3).
# Needs (installed by .ci/run): Java with keytool, openssl, the zookeeper apt
# package, python3 with kazoo and pure-sasl.
set -euo pipefail
cd "$(dirname "$0")/.."

# netty-all.jar is an empty aggregate in Debian: name the parts the Netty socket needs.
ZK_CP=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-simple.jar
for part in buffer codec common handler resolver transport transport-native-unix-common; do
    [ -f /usr/share/java/netty-$part.jar ] && ZK_CP=$ZK_CP:/usr/share/java/netty-$part.jar
done
STORE_PASS=innkeeper-test

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

make_certs() { # dir
    local dir=$1
    mkdir -p "$dir"
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=innkeeper test CA" \
            -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rogue CA" \
            -keyout rogue-ca.key -out rogue-ca.pem 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/O=innkeeper/OU=test/CN=client1" \
            -keyout client.key -out client.csr 2>/dev/null
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile client.ext -out client.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=intruder" -keyout rogue.key -out rogue.csr 2>/dev/null
        openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial -days 2 \
            -extfile client.ext -out rogue.pem 2>/dev/null
        # Java: PKCS#12 keystores, and a JKS truststore made with keytool.
        openssl pkcs12 -export -in server.pem -inkey server.key -name server \
            -passout "pass:$STORE_PASS" -out server.p12
        openssl pkcs12 -export -in client.pem -inkey client.key -name client \
            -passout "pass:$STORE_PASS" -out client.p12
        rm -f truststore.jks
        keytool -importcert -noprompt -alias ca -file ca.pem -keystore truststore.jks \
            -storetype JKS -storepass "$STORE_PASS" >/dev/null 2>&1
        cat >jaas.conf <<JAAS
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super-secret"
    user_bob="bob-secret";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="bob-secret";
};
JAAS
        cat >jaas-wrong.conf <<JAAS
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="not-bobs";
};
JAAS
    )
}

# zk_start DIR PLAIN_PORT TLS_PORT
zk_start() {
    local dir=$1 plain=$2 tls=$3
    mkdir -p "$dir/zk/data"
    cat >"$dir/zk/zoo.cfg" <<CFG
tickTime=1000
initLimit=10
syncLimit=5
dataDir=$dir/zk/data
clientPort=$plain
secureClientPort=$tls
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
forceSync=no
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=$dir/server.p12
ssl.keyStore.password=$STORE_PASS
ssl.trustStore.location=$dir/truststore.jks
ssl.trustStore.password=$STORE_PASS
ssl.clientAuth=want
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider
CFG
    nohup java -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Djava.security.auth.login.config="$dir/jaas.conf" \
        -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zk/zoo.cfg" \
        >"$dir/zk/server.log" 2>&1 </dev/null &
    echo $! >"$dir/zk/pid"
    for _ in $(seq 1 300); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$plain") 2>/dev/null; then
            sleep 0.5
            return 0
        fi
        sleep 0.1
    done
    echo "FAIL: ZooKeeper did not start" >&2
    cat "$dir/zk/server.log" >&2
    return 1
}

zk_stop() {
    local dir=$1
    if [ -f "$dir/zk/pid" ]; then
        kill "$(cat "$dir/zk/pid")" 2>/dev/null || true
        rm -f "$dir/zk/pid"
    fi
}

# ik_start DIR PLAIN_PORT TLS_PORT: innkeeper serve secured as zk_start secures ZooKeeper.
ik_start() {
    local dir=$1 plain=$2 tls=$3
    mkdir -p "$dir/ik"
    "${CARGO_TARGET_DIR:-target}/release/innkeeper" serve --in-memory --port "$plain" \
        --tick-ms 1000 --4lw '*' \
        --secure-port "$tls" --tls-cert "$dir/server.pem" --tls-key "$dir/server.key" \
        --tls-client-ca "$dir/ca.pem" --tls-client-auth want --jaas "$dir/jaas.conf" \
        >"$dir/ik/server.log" 2>&1 </dev/null &
    echo $! >"$dir/ik/pid"
    for _ in $(seq 1 300); do
        if grep -q "serving TLS" "$dir/ik/server.log" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "FAIL: innkeeper serve did not start" >&2
    cat "$dir/ik/server.log" >&2
    return 1
}

ik_stop() {
    local dir=$1
    if [ -f "$dir/ik/pid" ]; then
        kill "$(cat "$dir/ik/pid")" 2>/dev/null || true
        rm -f "$dir/ik/pid"
    fi
}

# client_checks DIR PLAIN_PORT TLS_PORT: the Java client and kazoo, one line per outcome.
client_checks() {
    local dir=$1 plain=$2 tls=$3
    local cp=$ZK_CP:$dir/java
    local quiet=-Dorg.slf4j.simpleLogger.defaultLogLevel=off
    local secure="-Dzookeeper.client.secure=true -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty"
    secure="$secure -Dzookeeper.ssl.trustStore.location=$dir/truststore.jks -Dzookeeper.ssl.trustStore.password=$STORE_PASS"
    local keystore="-Dzookeeper.ssl.keyStore.location=$dir/client.p12 -Dzookeeper.ssl.keyStore.password=$STORE_PASS"
    echo "# java tls, no client certificate"
    # shellcheck disable=SC2086
    java $quiet $secure -cp "$cp" SecureClient "127.0.0.1:$tls" tls 2>/dev/null || echo "exit $?"
    echo "# java tls, client certificate"
    # shellcheck disable=SC2086
    java $quiet $secure $keystore -cp "$cp" SecureClient "127.0.0.1:$tls" tls 2>/dev/null || echo "exit $?"
    echo "# java sasl (JAAS Client section)"
    java $quiet -Djava.security.auth.login.config="$dir/jaas.conf" -cp "$cp" \
        SecureClient "127.0.0.1:$plain" sasl 2>/dev/null || echo "exit $?"
    echo "# java sasl, wrong password"
    java $quiet -Djava.security.auth.login.config="$dir/jaas-wrong.conf" -cp "$cp" \
        SecureClient "127.0.0.1:$plain" sasl-wrong 2>/dev/null || echo "exit $?"
    for mode in tls tls-cert sasl sasl-wrong; do
        local port=$tls
        case $mode in sasl*) port=$plain ;; esac
        echo "# kazoo $mode"
        python3 tests/security/kazoo_secure.py "127.0.0.1:$port" "$mode" "$dir" 2>/dev/null || echo "exit $?"
    done
}

# tls_ok PORT CA: a TLS handshake with 127.0.0.1:PORT trusting CA succeeds.
tls_ok() {
    python3 - "$1" "$2" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
try:
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5),
                         server_hostname="127.0.0.1"):
        pass
except (ssl.SSLError, OSError):
    sys.exit(1)
PY
}

# sighup_check DIR TLS_PORT: a certificate from another CA replaces the
# server's; after SIGHUP new connections get it, and a broken key file
# leaves the last good one in force.
sighup_check() {
    local dir=$1 port=$2
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=next CA" \
            -keyout next-ca.key -out next-ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout next.key -out next.csr 2>/dev/null
        openssl x509 -req -in next.csr -CA next-ca.pem -CAkey next-ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out next.pem 2>/dev/null
    )
    tls_ok "$port" "$dir/ca.pem" || { echo "FAIL: TLS before the reload" >&2; return 1; }
    cp "$dir/next.pem" "$dir/server.pem"
    cp "$dir/next.key" "$dir/server.key"
    kill -HUP "$(cat "$dir/ik/pid")"
    for _ in $(seq 1 50); do grep -q "re-read" "$dir/ik/server.log" && break; sleep 0.1; done
    if tls_ok "$port" "$dir/ca.pem" || ! tls_ok "$port" "$dir/next-ca.pem"; then
        echo "FAIL: SIGHUP did not install the new certificate" >&2
        return 1
    fi
    echo "not a key" >"$dir/server.key"
    kill -HUP "$(cat "$dir/ik/pid")"
    for _ in $(seq 1 50); do grep -q "not re-read" "$dir/ik/server.log" && break; sleep 0.1; done
    if ! tls_ok "$port" "$dir/next-ca.pem"; then
        echo "FAIL: a broken key file replaced the working certificate" >&2
        return 1
    fi
    echo "SIGHUP: new certificate in force; a broken file kept the last good one"
}

run_all() {
    local work
    work=$(mktemp -d /tmp/innkeeper-security.XXXXXX)
    # shellcheck disable=SC2064
    trap "zk_stop '$work'; ik_stop '$work'; [ \"\${KEEP:-0}\" = 1 ] || rm -rf '$work'" EXIT
    local base=${SEC_PORT_BASE:-}
    local zk_plain zk_tls ik_plain ik_tls
    if [ -n "$base" ]; then
        zk_plain=$base zk_tls=$((base + 1)) ik_plain=$((base + 2)) ik_tls=$((base + 3))
    else
        zk_plain=$(free_port) zk_tls=$(free_port) ik_plain=$(free_port) ik_tls=$(free_port)
    fi
    make_certs "$work"
    mkdir -p "$work/java"
    javac -d "$work/java" -cp "$ZK_CP" tests/security/SecureClient.java
    cargo build --release --bin innkeeper
    zk_start "$work" "$zk_plain" "$zk_tls"
    ik_start "$work" "$ik_plain" "$ik_tls"
    local failures=0
    client_checks "$work" "$zk_plain" "$zk_tls" >"$work/zk.out"
    client_checks "$work" "$ik_plain" "$ik_tls" >"$work/ik.out"
    echo "--- ZooKeeper 3.8"
    cat "$work/zk.out"
    if ! diff -u "$work/zk.out" "$work/ik.out"; then
        echo "FAIL: innkeeper serve answers the secured clients differently from ZooKeeper" >&2
        failures=$((failures + 1))
    fi
    for line in "identities []" "identities [x509:CN=client1,OU=test,O=innkeeper]" \
        "identities [sasl:bob]" "anonymous NoAuth" "state AuthFailed" "x509 owner reads over tls" \
        "refused"; do
        if ! grep -qF "$line" "$work/zk.out"; then
            echo "FAIL: missing from both transcripts' reference: $line" >&2
            failures=$((failures + 1))
        fi
    done
    for name in zk ik; do
        local plain=$zk_plain tls=$zk_tls
        [ $name = ik ] && plain=$ik_plain tls=$ik_tls
        echo "--- RemoteSession against $name"
        if ! INNKEEPER_SECURE_PLAIN="127.0.0.1:$plain" INNKEEPER_SECURE_TLS="127.0.0.1:$tls" \
            INNKEEPER_SECURE_CERTS="$work" cargo test -q --test security -- --skip abuse; then
            failures=$((failures + 1))
        fi
    done
    echo "--- SIGHUP re-reads innkeeper's certificate"
    if ! sighup_check "$work" "$ik_tls"; then
        failures=$((failures + 1))
    fi
    if grep -qE "bob-secret|super-secret|not-bobs" "$work/ik/server.log"; then
        echo "FAIL: innkeeper's log holds a password" >&2
        failures=$((failures + 1))
    fi
    if [ "$failures" -ne 0 ]; then
        echo "security: $failures failure(s)" >&2
        return 1
    fi
    echo "security: all checks passed against ZooKeeper 3.8 and innkeeper serve"
}

cmd=${1:-all}
case $cmd in
    certs) make_certs "${2:?dir}" ;;
    zk-start) zk_start "${2:?dir}" "${3:?plain port}" "${4:?tls port}" ;;
    zk-stop) zk_stop "${2:?dir}" ;;
    all) run_all ;;
    *) sed -n '2,30p' "$0" >&2; exit 2 ;;
esac
