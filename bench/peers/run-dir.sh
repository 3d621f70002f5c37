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
