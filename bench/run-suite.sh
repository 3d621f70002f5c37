#!/usr/bin/env bash
# Runs the BENCHMARKS.md suite against one running broker and prints one Markdown table row.
#
#   bench/run-suite.sh NAMESRV_ADDR LABEL [OUT_DIR]
#
# NAMESRV_ADDR  name server of the broker under test (ringmq or any RocketMQ-compatible broker)
# LABEL         first column of the row, e.g. "ringmq async flush"
# OUT_DIR       where the --json reports go (default: ./bench-results/<LABEL with _ for spaces>)
#
# Steps (each with a warm-up that is not reported; topics are fresh per run):
#   1. produce, closed loop, 1 KiB, 2 producers x 128 in flight      -> peak msgs/s, send p99
#   2. produce, batches of 16, 2 producers x 32 in flight           -> batched msgs/s
#   3. e2e, open loop at half of step 1's rate                      -> e2e p50/p99 (CO-corrected)
#   4. longpoll, one message every 50 ms, 200 messages              -> wake p50/p99
# Needs jq. BENCH overrides the ringmq-bench binary (default: target/release/ringmq-bench).
set -euo pipefail

namesrv=${1:?usage: run-suite.sh NAMESRV_ADDR LABEL [OUT_DIR]}
label=${2:?usage: run-suite.sh NAMESRV_ADDR LABEL [OUT_DIR]}
out=${3:-bench-results/${label// /_}}
bench=${BENCH:-target/release/ringmq-bench}
run_id=$(date +%s)
mkdir -p "$out"

run() { # name, then ringmq-bench arguments
    local name=$1
    shift
    echo "+ $bench $* --namesrv $namesrv --json $out/$name.json" >&2
    "$bench" "$@" --namesrv "$namesrv" --json "$out/$name.json" >"$out/$name.txt" 2>"$out/$name.log"
}

run produce produce --topic "Suite${run_id}P" --size 1024 --producers 2 --inflight 128 \
    --warmup 3 --duration 10
run batch produce --topic "Suite${run_id}B" --size 1024 --producers 2 --inflight 32 --batch 16 \
    --warmup 3 --duration 10
peak=$(jq -r '.msgs_per_sec | floor' "$out/produce.json")
half=$((peak / 2))
run e2e e2e --topic "Suite${run_id}E" --size 1024 --producers 2 --inflight 128 --rate "$half" \
    --warmup 3 --duration 10
run longpoll longpoll --topic "Suite${run_id}L" --size 1024 --interval-ms 50 --messages 200

ms() { jq -r "$1 / 1000 * 100 | round / 100" "$2"; }
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$label" \
    "$(jq -r '.msgs_per_sec | round' "$out/produce.json")" \
    "$(ms .latency_us.p99 "$out/produce.json")" \
    "$(jq -r '.msgs_per_sec | round' "$out/batch.json")" \
    "$half" \
    "$(ms .e2e_latency_us.p50 "$out/e2e.json")" \
    "$(ms .e2e_latency_us.p99 "$out/e2e.json")" \
    "$(ms .e2e_latency_us.p50 "$out/longpoll.json")" \
    "$(ms .e2e_latency_us.p99 "$out/longpoll.json")" \
    "$(jq -s 'map(.errors) | add' "$out"/produce.json "$out"/batch.json "$out"/e2e.json "$out"/longpoll.json)"
