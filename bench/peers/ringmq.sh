#!/usr/bin/env bash
# ringmq for bench/compare.sh: the same start/stop interface as the peer scripts.
#
#   bench/peers/ringmq.sh start RUN_DIR [--flush async|sync]
#   bench/peers/ringmq.sh stop RUN_DIR
#
# start  runs target/release/ringmq-server (RINGMQ_SERVER overrides) with its embedded name
#        server on ports chosen by the OS, a fresh store in RUN_DIR/store (or $STORE_DIR), default shards;
#        waits for its "listening broker" line and writes RUN_DIR/env (NAMESRV, BROKER, PIDS,
#        BROKER_PID). Extra server flags: RINGMQ_SERVER_ARGS.
# stop   SIGTERM (SIGKILL after 20 s), deletes the store.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=run-dir.sh
. "$here/run-dir.sh"
SERVER=${RINGMQ_SERVER:-$here/../../target/release/ringmq-server}

cmd_start() {
    local run=${1:?start needs RUN_DIR}
    shift
    mkdir -p "$run"
    run=$(cd "$run" && pwd)
    local flush=async
    while [ $# -gt 0 ]; do
        case $1 in
        --flush) flush=${2:?}; shift 2 ;;
        *) echo "ringmq.sh: unknown start option: $1" >&2; exit 2 ;;
        esac
    done
    mkdir -p "$run/logs"
    local store=${STORE_DIR:-$run/store}
    rm -rf "$store"
    # shellcheck disable=SC2086
    nohup "$SERVER" --listen 127.0.0.1:0 --namesrv-listen 127.0.0.1:0 --store "$store" \
        --flush "$flush" ${RINGMQ_SERVER_ARGS:-} >"$run/logs/server.out" 2>"$run/logs/server.err" &
    local pid=$!
    for _ in $(seq 1 100); do
        grep -q '^listening broker' "$run/logs/server.out" 2>/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    local ns broker
    ns=$(awk '/^listening namesrv/{print $3; exit}' "$run/logs/server.out")
    broker=$(awk '/^listening broker/{print $3; exit}' "$run/logs/server.out")
    if [ -z "$ns" ] || [ -z "$broker" ]; then
        echo "ringmq did not come up:" >&2
        tail -n 20 "$run/logs/server.out" "$run/logs/server.err" >&2 || true
        kill -KILL $pid 2>/dev/null || true
        return 1
    fi
    cat >"$run/env" <<EOT
NAMESRV=$ns
BROKER=$broker
PIDS="$pid"
BROKER_PID=$pid
STORE=$store
VERSION=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
EOT
    echo "ringmq serving: namesrv $ns broker $broker (pid $pid)" >&2
}

cmd_stop() {
    stop_run "$@"
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
