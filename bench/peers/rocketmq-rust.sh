#!/usr/bin/env bash
# rocketmq-rust 1.0.0 (crates.io rocketmq-namesrv, rocketmq-broker): install, start, stop.
#
#   bench/peers/rocketmq-rust.sh install
#   bench/peers/rocketmq-rust.sh start RUN_DIR [--flush async|sync] [--port P] [--namesrv-port P]
#   bench/peers/rocketmq-rust.sh stop RUN_DIR
#
# install  cargo install --locked --root $PEERS_CACHE/rust rocketmq-namesrv and rocketmq-broker
#          at $ROCKETMQ_RUST_VERSION (default 1.0.0), sharing one target directory so the
#          second reuses the first's dependencies. About 17 minutes cold on 2 cores. Binaries:
#          rocketmq-namesrv-rust, rocketmq-broker-rust. PEERS_CACHE defaults to
#          ${XDG_CACHE_HOME:-$HOME/.cache}/ringmq-peers; nothing goes into the repository.
# start    RUN_DIR/home, a fresh RUN_DIR/store (or $STORE_DIR), RUN_DIR/broker.toml; starts both, waits until
#          the broker has registered (its address in the name server's cluster info), writes
#          RUN_DIR/env (NAMESRV, BROKER, PIDS, BROKER_PID). Exit 1 with the logs' last lines
#          if it does not serve within $START_TIMEOUT seconds (default 60).
#          A failed attempt is retried (up to $START_ATTEMPTS, default 3; its logs stay in
#          RUN_DIR/logs.failed-N).
# stop     SIGTERM (SIGKILL after 20 s), deletes the store.
#
# What it needs (found here):
# - ROCKETMQ_HOME (peers.md: both need it; not tried without); RUN_DIR/home here.
# - ROCKETMQ_SECURITY_PROFILE=development-insecure-loopback (what peers.md names; without it
#   both start anyway and warn "security bootstrap is disabled because no security profile is
#   configured"). With it, every listener must be on loopback: the broker's defaults bind
#   0.0.0.0 and it then exits at once with only "ERROR core.service.failed: Service lifecycle
#   operation failed" on stderr. Hence [broker.brokerServerConfig] bindAddress and [store]
#   haListenAddress = "127.0.0.1" below, and the name server's --bindAddress 127.0.0.1.
# - Name server: --listenPort P --bindAddress 127.0.0.1 --rocketmqHome DIR --kvConfigPath FILE.
# - Broker: -c broker.toml -n NAMESRV. The TOML has [broker] (listenPort, brokerIp1 — spelled
#   so, camelCase of broker_ip1 —, autoCreateTopicEnable, storePathRootDir,
#   [broker.brokerIdentity]) and [store] (flushDiskType ASYNC_FLUSH|SYNC_FLUSH,
#   storePathRootDir, storePathCommitLog, haListenPort, commitLogMicroBatchMaxWaitMicros = 0:
#   with the shipped 50 µs batching wait on a 1 ms timer each isolated append waits ≈1 ms).
#   Unknown keys are rejected (deny_unknown_fields).
# - Disk: it measures use as 1 - available/total (fs2), so blocks reserved for root count as
#   used, and at its warning level (diskSpaceWarningLevelRatio, 90, clamped to at most 90)
#   the store is not writable and the broker does not start: it registers with the name
#   server, logs "Rolling back broker startup ... cause=core.service.failed" and exits with
#   the one-line error above; nothing names the disk. On the development VM (252 GiB, 160 GiB
#   reserved for root) that measure was 88-91% while df said 67-76%, and the same config
#   started on an empty tmpfs. compare.sh's NAME:tmpfs (STORE_DIR here) is the way round it.
#   diskMaxUsedSpaceRatio = 84 and diskSpaceCleanForciblyRatio = 88 keep its cleanup quiet
#   between 75% and 90% (it requires max-used < clean-forcibly < warning).
set -euo pipefail

PEERS_CACHE=${PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ringmq-peers}
VERSION=${ROCKETMQ_RUST_VERSION:-1.0.0}
START_TIMEOUT=${START_TIMEOUT:-60}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=run-dir.sh
. "$here/run-dir.sh"
CLI=${RINGMQ_CLI:-$here/../../target/release/ringmq}
bin=$PEERS_CACHE/rust/bin

die() {
    echo "rocketmq-rust.sh: $*" >&2
    exit 2
}

cmd_install() {
    if [ -x "$bin/rocketmq-namesrv-rust" ] && [ -x "$bin/rocketmq-broker-rust" ]; then
        echo "rocketmq-rust: $bin" >&2
        return 0
    fi
    mkdir -p "$PEERS_CACHE/rust"
    local c
    for c in rocketmq-namesrv rocketmq-broker; do
        echo "+ cargo install --locked --root $PEERS_CACHE/rust $c --version $VERSION" >&2
        CARGO_TARGET_DIR=$PEERS_CACHE/rust/target \
            cargo install --locked --root "$PEERS_CACHE/rust" "$c" --version "$VERSION" >&2
    done
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

start_once() {
    local run=${1:?start needs RUN_DIR}
    shift
    mkdir -p "$run"
    run=$(cd "$run" && pwd)
    local flush=async port="" nsport="" ftype
    while [ $# -gt 0 ]; do
        case $1 in
        --flush) flush=${2:?}; shift 2 ;;
        --port) port=${2:?}; shift 2 ;;
        --namesrv-port) nsport=${2:?}; shift 2 ;;
        *) die "unknown start option: $1" ;;
        esac
    done
    case $flush in async) ftype=ASYNC_FLUSH ;; sync) ftype=SYNC_FLUSH ;; *) die "--flush async|sync" ;; esac
    [ -x "$bin/rocketmq-broker-rust" ] || die "not installed: run $0 install"
    port=${port:-$(free_port)}
    nsport=${nsport:-$(free_port)}
    local home=$run/home store=${STORE_DIR:-$run/store}
    mkdir -p "$home/conf" "$run/logs"
    rm -rf "$store"
    mkdir -p "$store/commitlog"
    cat >"$run/broker.toml" <<EOF
[broker]
brokerIp1 = "127.0.0.1"
listenPort = $port
autoCreateTopicEnable = true
storePathRootDir = "$store"

[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[broker.brokerIdentity]
brokerName = "broker-a"
brokerClusterName = "DefaultCluster"
brokerId = 0

[store]
flushDiskType = "$ftype"
storePathRootDir = "$store"
storePathCommitLog = "$store/commitlog"
haListenPort = $((port + 1))
haListenAddress = "127.0.0.1"
commitLogMicroBatchMaxWaitMicros = 0
diskMaxUsedSpaceRatio = 84
diskSpaceCleanForciblyRatio = 88
EOF
    export ROCKETMQ_HOME=$home ROCKETMQ_SECURITY_PROFILE=development-insecure-loopback
    cd "$run" # it writes some files relative to the working directory
    HOME=$home nohup "$bin/rocketmq-namesrv-rust" --listenPort "$nsport" --bindAddress 127.0.0.1 \
        --rocketmqHome "$home" --kvConfigPath "$home/kvConfig.json" >"$run/logs/namesrv.out" 2>&1 &
    local rnspid=$!
    sleep 0.5
    HOME=$home nohup "$bin/rocketmq-broker-rust" -c "$run/broker.toml" -n "127.0.0.1:$nsport" \
        >"$run/logs/broker.out" 2>&1 &
    local rbpid=$!
    cat >"$run/env" <<EOF
NAMESRV=127.0.0.1:$nsport
BROKER=127.0.0.1:$port
PIDS="$rnspid $rbpid"
BROKER_PID=$rbpid
VERSION=$VERSION
STORE=$store
EOF
    wait_until_serving "rocketmq-rust $VERSION" "$run" "$nsport" "$port" "$rnspid" "$rbpid"
}

cmd_start() { # up to $START_ATTEMPTS (default 3) tries, fresh ports and store each time
    local i
    for i in $(seq 1 "${START_ATTEMPTS:-3}"); do
        if start_once "$@"; then
            return 0
        fi
        echo "rocketmq-rust: start attempt $i failed" >&2
        [ -d "${1:-}/logs" ] && mv "$1/logs" "$1/logs.failed-$i"
    done
    return 1
}

cmd_stop() {
    stop_run "$@"
}

case ${1:-} in
install) shift; cmd_install "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
-h | --help | help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
*) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
