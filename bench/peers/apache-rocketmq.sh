#!/usr/bin/env bash
# Apache RocketMQ 5.x (the Java broker) from Maven Central: fetch, start, stop.
#
#   bench/peers/apache-rocketmq.sh fetch
#   bench/peers/apache-rocketmq.sh start RUN_DIR [--flush async|sync] [--port P] [--namesrv-port P]
#   bench/peers/apache-rocketmq.sh stop RUN_DIR
#
# fetch  writes a small pom (rocketmq-namesrv + rocketmq-broker) under $PEERS_CACHE/apache and
#        runs `mvn dependency:copy-dependencies` into $PEERS_CACHE/apache/<version>/lib. It tries
#        the versions in $ROCKETMQ_VERSIONS (newest first) and keeps the first that resolves;
#        $PEERS_CACHE/apache/current names it (later fetches reuse it; ROCKETMQ_REFETCH=1
#        tries the list again). 5.5.1 did not resolve on 2026-12-07: Central had no
#        rocketmq-namesrv, -client, -srvutil, -filter, -auth 5.5.1 jars; 5.5.0 did. Nothing fetched goes into the repository:
#        PEERS_CACHE defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/ringmq-peers.
# start  makes RUN_DIR (home, conf, logs, a fresh store), writes namesrv.conf and broker.conf,
#        starts the name server and the broker in the background, waits until the broker has
#        registered with the name server (its cluster info lists the broker address), and
#        writes RUN_DIR/env (STORE_DIR overrides where the store goes): NAMESRV=host:port BROKER=host:port PIDS="namesrv-pid broker-pid"
#        BROKER_PID=pid. Exit status 1 (with the last lines of the logs) if it does not serve
#        within $START_TIMEOUT seconds (default 90).
# stop   stops both (SIGTERM, then SIGKILL after 20 s) and deletes the store; logs stay.
#
# What running it from bare jars needs (found on Java 17, 2 cores / 24 GiB):
# - A RocketMQ home: the name server refuses to start without ROCKETMQ_HOME or
#   -Drocketmq.home.dir ("Please set the ROCKETMQ_HOME variable in your environment to match
#   the location of the RocketMQ installation", exit status 254); the broker reads it too. Any
#   directory works; RUN_DIR/home is used. Both are given here (env and property).
# - Logging: 5.x logs through its shaded logback (rocketmq-logback-classic); with no config it
#   falls back to its built-in one, which writes under ${user.home}/logs/rocketmqlogs. Here
#   -Duser.home=RUN_DIR/home keeps those logs inside RUN_DIR (not in the real home).
# - Heap: the shipped runbroker.sh asks for -Xms8g -Xmx8g and 15g of direct memory, sized
#   for a dedicated host. Here: name server -Xms256m -Xmx256m, broker -Xms2g -Xmx2g
#   -XX:MaxDirectMemorySize=2g, G1. The store maps 1 GiB commit-log files outside the heap
#   (page cache), so RSS grows with the data written, not with -Xmx.
# - Java 17 module access: the store unmaps files through sun.nio.ch / java.nio internals,
#   so the broker gets --add-opens for java.base/java.nio, java.base/sun.nio.ch and
#   java.base/java.lang (not tried without them).
# - broker.conf: brokerIP1=127.0.0.1 (otherwise it advertises the first non-loopback
#   address), autoCreateTopicEnable=true, storePathRootDir/storePathCommitLog under the fresh
#   store, listenPort=P. The broker also binds P-2 (the "VIP" channel) and P+1 (HA), so P
#   must have those free; flushDiskType=ASYNC_FLUSH or SYNC_FLUSH.
# - The store refuses writes above diskMaxUsedSpaceRatio (75% by default) of its disk.
set -euo pipefail

PEERS_CACHE=${PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ringmq-peers}
ROCKETMQ_VERSIONS=${ROCKETMQ_VERSIONS:-"5.5.1 5.5.0 5.4.0 5.3.3"}
START_TIMEOUT=${START_TIMEOUT:-90}
JAVA=${JAVA:-java}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=run-dir.sh
. "$here/run-dir.sh"
CLI=${RINGMQ_CLI:-$here/../../target/release/ringmq}

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "apache-rocketmq.sh: $*" >&2
    exit 2
}

fetch_version() { # version -> 0 if resolved
    local v=$1 dir=$PEERS_CACHE/apache/$1
    [ -f "$dir/ok" ] && return 0
    mkdir -p "$dir"
    cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ringmq.peers</groupId>
  <artifactId>apache-rocketmq-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>rocketmq-namesrv</artifactId><version>$v</version></dependency>
    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>rocketmq-broker</artifactId><version>$v</version></dependency>
  </dependencies>
</project>
EOF
    echo "+ mvn -q -f $dir/pom.xml dependency:copy-dependencies (rocketmq $v)" >&2
    if mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$dir/lib" >"$dir/mvn.log" 2>&1; then
        touch "$dir/ok"
        return 0
    fi
    echo "rocketmq $v did not resolve (see $dir/mvn.log):" >&2
    grep -m3 ERROR "$dir/mvn.log" >&2 || true
    return 1
}

cmd_fetch() {
    local v
    if [ -f "$PEERS_CACHE/apache/current" ] && [ -z "${ROCKETMQ_REFETCH:-}" ]; then
        v=$(cat "$PEERS_CACHE/apache/current")
        echo "apache rocketmq $v: $PEERS_CACHE/apache/$v/lib (ROCKETMQ_REFETCH=1 tries newer again)"
        return 0
    fi
    for v in $ROCKETMQ_VERSIONS; do
        if fetch_version "$v"; then
            echo "$v" >"$PEERS_CACHE/apache/current"
            echo "apache rocketmq $v: $PEERS_CACHE/apache/$v/lib ($(ls "$PEERS_CACHE/apache/$v/lib" | wc -l) jars)"
            return 0
        fi
    done
    echo "no version of $ROCKETMQ_VERSIONS resolved" >&2
    return 1
}

free_port() { # a port P with P-2, P, P+1 free (the broker binds all three)
    python3 - <<'EOF'
import socket, random
for _ in range(200):
    p = random.randrange(20000, 40000)
    ok = True
    for q in (p - 2, p, p + 1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        break
EOF
}

cmd_start() {
    local run=${1:?start needs RUN_DIR}
    shift
    mkdir -p "$run"
    run=$(cd "$run" && pwd)
    local flush=async port="" nsport=""
    while [ $# -gt 0 ]; do
        case $1 in
        --flush) flush=${2:?}; shift 2 ;;
        --port) port=${2:?}; shift 2 ;;
        --namesrv-port) nsport=${2:?}; shift 2 ;;
        *) die "unknown start option: $1" ;;
        esac
    done
    case $flush in async) ftype=ASYNC_FLUSH ;; sync) ftype=SYNC_FLUSH ;; *) die "--flush async|sync" ;; esac
    [ -f "$PEERS_CACHE/apache/current" ] || cmd_fetch >&2
    local v lib
    v=$(cat "$PEERS_CACHE/apache/current")
    lib=$PEERS_CACHE/apache/$v/lib
    port=${port:-$(free_port)}
    nsport=${nsport:-$(free_port)}
    mkdir -p "$run/home/conf" "$run/logs"
    local store=${STORE_DIR:-$run/store}
    rm -rf "$store"
    mkdir -p "$store/commitlog"
    cat >"$run/namesrv.conf" <<EOF
listenPort=$nsport
EOF
    cat >"$run/broker.conf" <<EOF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=$ftype
brokerIP1=127.0.0.1
listenPort=$port
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
storePathRootDir=$store
storePathCommitLog=$store/commitlog
deleteWhen=04
fileReservedTime=48
EOF
    local home=$run/home
    local common=(-server -XX:+UseG1GC -XX:G1HeapRegionSize=16m -Djava.net.preferIPv4Stack=true
        -Duser.home="$home" -Drocketmq.home.dir="$home" -cp "$lib/*")
    local opens=(--add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED
        --add-opens java.base/java.lang=ALL-UNNAMED)
    ROCKETMQ_HOME=$home nohup "$JAVA" -Xms256m -Xmx256m "${common[@]}" \
        org.apache.rocketmq.namesrv.NamesrvStartup -c "$run/namesrv.conf" \
        >"$run/logs/namesrv.out" 2>&1 &
    local nspid=$!
    ROCKETMQ_HOME=$home nohup "$JAVA" -Xms2g -Xmx2g -XX:MaxDirectMemorySize=2g "${opens[@]}" "${common[@]}" \
        org.apache.rocketmq.broker.BrokerStartup -c "$run/broker.conf" -n "127.0.0.1:$nsport" \
        >"$run/logs/broker.out" 2>&1 &
    local bpid=$!
    cat >"$run/env" <<EOF
NAMESRV=127.0.0.1:$nsport
BROKER=127.0.0.1:$port
PIDS="$nspid $bpid"
BROKER_PID=$bpid
VERSION=$v
STORE=$store
EOF
    wait_until_serving "apache rocketmq $v" "$run" "$nsport" "$port" "$nspid" "$bpid"
}

cmd_stop() {
    stop_run "$@"
}

case ${1:-} in
fetch) shift; cmd_fetch "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
