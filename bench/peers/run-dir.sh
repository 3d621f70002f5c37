# Sourced by the broker scripts of bench/peers: what they share about a RUN_DIR.

# stop_run RUN_DIR: SIGTERM to the processes RUN_DIR/env lists, SIGKILL after 20 s, then the
# store goes.
stop_run() {
    local run=${1:?stop needs RUN_DIR}
    [ -f "$run/env" ] || return 0
    local PIDS="" STORE=""
    # shellcheck disable=SC1091
    . "$run/env"
    local p
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 40); do
        local alive=0
        for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.5
    done
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "${STORE:-$run/store}"
}

# wait_until_serving LABEL RUN_DIR NAMESRV_PORT BROKER_PORT PID...: waits (START_TIMEOUT
# seconds) until the name server on 127.0.0.1:NAMESRV_PORT lists the broker on BROKER_PORT
# (through $CLI), while every PID lives. On failure prints the logs' last lines, stops the
# run and returns 1.
wait_until_serving() {
    local label=$1 run=$2 nsport=$3 port=$4
    shift 4
    local t=0 pid alive
    while [ "$t" -lt $((START_TIMEOUT * 2)) ]; do
        alive=1
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null || alive=0; done
        [ $alive = 1 ] || break
        if "$CLI" cluster list --namesrv "127.0.0.1:$nsport" 2>/dev/null | grep -q "127.0.0.1:$port"; then
            echo "$label serving: namesrv 127.0.0.1:$nsport broker 127.0.0.1:$port (pids $*)" >&2
            return 0
        fi
        sleep 0.5
        t=$((t + 1))
    done
    echo "$label did not come up; last log lines:" >&2
    tail -n 20 "$run/logs/namesrv.out" "$run/logs/broker.out" >&2 || true
    stop_run "$run"
    return 1
}
