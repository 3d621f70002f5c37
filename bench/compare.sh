#!/usr/bin/env bash
# ringmq beside Apache RocketMQ and rocketmq-rust: the same suite against each broker in turn,
# several rounds, alternating, in one run; then one Markdown report.
#
#   bench/compare.sh [options]            run, then write OUT/report.md
#   bench/compare.sh --report OUT         rebuild OUT/report.md from OUT/steps.jsonl
#   bench/compare.sh --help
#
# Options:
#   --brokers LIST    comma list of ringmq,apache,rust (default: all three, in that order);
#                     NAME:tmpfs puts that broker's store on /dev/shm (memory) instead of disk
#   --flush LIST      comma list of async,sync (default: async,sync); each is a broker life
#   --rounds N        rounds; each round runs every broker and flush once (default 2)
#   --duration S      measured seconds per step (default 10)
#   --warmup S        warm-up seconds per step, not reported (default 3)
#   --e2e-rate N      messages/s of the e2e step, the same for every broker (default 5000)
#   --life-warmup S   unreported produce+consume load at the start of every life, so that a
#                     JIT-compiled broker is measured warm (default 10; 0 = none)
#   --out DIR         where everything goes (default bench-results/compare-<UTC time>)
#   --max-disk-percent N
#                     refuse to run (exit 3), or skip a broker life, while the filesystem of
#                     the store is N% used or more, as df counts it (default 85: the brokers'
#                     default forced-cleanup limit; at 90% they refuse sends, so the run would
#                     measure that instead of the brokers)
#
# One broker life = start on a fresh store, run the steps, read its peak RSS, stop. Steps:
#   produce   closed loop, 1 KiB, 2 producers x 128 in flight, one message per send
#   batch     the same, 2 x 32 in flight, 16 messages per send
#   e2e       open loop at --e2e-rate (coordinated-omission corrected), push consumer
#   longpoll  one message every 50 ms to a consumer whose pulls the broker holds (200 msgs)
#   consume   drain the produce step's topic with 2 push consumers (async lives only)
# Around every step: CPU = utime+stime (/proc/PID/stat) of the broker's processes (name server
# and broker: ringmq has one process, the peers two), and the number of messages from the
# broker's own counters (GET_BROKER_RUNTIME_INFO msgPutTotalTodayNow / msgGetTotalTodayNow,
# bench/peers/rtinfo.py), both read right before the bench starts and right after it exits, so
# both cover the same span, warm-up included. A broker that does not answer that request gets
# its messages from the bench's JSON scaled by (warmup+duration)/duration, marked "~".
# Peak RSS = VmHWM of the broker process (/proc/PID/status) at the end of the life; beside it
# RssAnon (heap and other private memory) at that moment: VmHWM also counts the pages of
# mapped store files, which the kernel may drop at any time.
#
# Peers: bench/peers/apache-rocketmq.sh (Maven Central) and bench/peers/rocketmq-rust.sh
# (crates.io) fetch or build into PEERS_CACHE (default ~/.cache/ringmq-peers) on first use;
# nothing is written into the repository. ringmq: target/release/{ringmq-server,ringmq-bench,
# ringmq} (cargo build --release -p ringmq-server -p ringmq-bench -p ringmq-tools).
# Needs bash, python3, jq; the Apache peer needs java 17 and mvn.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH=${BENCH:-$root/target/release/ringmq-bench}

usage() { sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//'; }
die() {
    echo "compare.sh: $*" >&2
    echo "try: bench/compare.sh --help" >&2
    exit 2
}
posint() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || die "$1 needs a positive integer, got '$2'"; }

brokers=ringmq,apache,rust
flushes=async,sync
rounds=2
duration=10
warmup=3
rate=5000
life_warmup=10
max_disk=85
out=""
report_only=""
while [ $# -gt 0 ]; do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --report) report_only=${2:-}; [ -n "$report_only" ] || die "--report needs a directory"; shift 2 ;;
    --brokers) brokers=${2:-}; shift 2 ;;
    --flush) flushes=${2:-}; shift 2 ;;
    --rounds) posint "$1" "${2:-}"; rounds=$2; shift 2 ;;
    --duration) posint "$1" "${2:-}"; duration=$2; shift 2 ;;
    --warmup) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--warmup needs an integer"; warmup=$2; shift 2 ;;
    --e2e-rate) posint "$1" "${2:-}"; rate=$2; shift 2 ;;
    --life-warmup) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--life-warmup needs an integer"; life_warmup=$2; shift 2 ;;
    --out) out=${2:-}; [ -n "$out" ] || die "--out needs a directory"; shift 2 ;;
    --max-disk-percent)
        [[ ${2:-} =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 100 ] ||
            die "--max-disk-percent needs an integer from 1 to 100, got '${2:-}'"
        max_disk=$2
        shift 2
        ;;
    *) die "unknown argument: $1" ;;
    esac
done

if [ -n "$report_only" ]; then
    [ -f "$report_only/steps.jsonl" ] || die "no $report_only/steps.jsonl"
    python3 "$here/peers/report.py" "$report_only" >"$report_only/report.md"
    cat "$report_only/report.md"
    exit 0
fi

IFS=, read -ra broker_list <<<"$brokers"
IFS=, read -ra flush_list <<<"$flushes"
[ ${#broker_list[@]} -gt 0 ] || die "--brokers is empty"
for b in "${broker_list[@]}"; do
    case ${b%%:*} in ringmq | apache | rust) ;; *) die "unknown broker '$b' (ringmq, apache, rust)" ;; esac
    case $b in *:*) [ "${b#*:}" = tmpfs ] || die "unknown store '${b#*:}' in '$b' (only :tmpfs)" ;; esac
done
for f in "${flush_list[@]}"; do
    case $f in async | sync) ;; *) die "unknown flush '$f' (async, sync)" ;; esac
done
command -v jq >/dev/null || die "needs jq"
command -v python3 >/dev/null || die "needs python3"
[ -x "$BENCH" ] || die "no $BENCH (cargo build --release -p ringmq-server -p ringmq-bench -p ringmq-tools)"

out=${out:-bench-results/compare-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
steps_file=$out/steps.jsonl
tck=$(getconf CLK_TCK)

used_percent() { # path -> its filesystem's used %, as df counts it: used / (used + available)
    df -P "$1" | awk 'NR == 2 { t = $3 + $4; if (t == 0) print 0; else printf "%d\n", $3 * 100 / t }'
}
disk_too_full() { # path -> why, when its filesystem is past --max-disk-percent; else nothing
    local p
    p=$(used_percent "$1")
    if [ "$p" -ge "$max_disk" ]; then
        echo "the filesystem of $1 is $p% used, at or past --max-disk-percent $max_disk%: the brokers would delete segments (85%) or refuse sends (90%), and the run would measure that; free space, put --out on another filesystem, or raise --max-disk-percent"
    fi
}
# Before any download: a broker whose store is on disk puts it under $out.
for b in "${broker_list[@]}"; do
    [ "${b#*:}" = tmpfs ] && continue
    why=$(disk_too_full "$out")
    if [ -n "$why" ]; then
        echo "compare.sh: $why" >&2
        exit 3
    fi
    break
done

script_of() {
    case ${1%%:*} in
    ringmq) echo "$here/peers/ringmq.sh" ;;
    apache) echo "$here/peers/apache-rocketmq.sh" ;;
    rust) echo "$here/peers/rocketmq-rust.sh" ;;
    esac
}

# Fetch / build the peers up front, so no life waits on a download.
for b in "${broker_list[@]}"; do
    case ${b%%:*} in
    apache) "$(script_of apache)" fetch >&2 ;;
    rust) "$(script_of rust)" install >&2 ;;
    esac
done

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "host: $(nproc) cpus, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "command: bench/compare.sh --brokers $brokers --flush $flushes --rounds $rounds --duration $duration --warmup $warmup --e2e-rate $rate --life-warmup $life_warmup"
} >"$out/meta.txt"

cpu_of() { # sum of utime+stime ticks of the given pids
    local t=0 p v
    for p in "$@"; do
        v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "$t"
}

counters() { # broker address -> {"put":N,"got":N} or null
    python3 "$here/peers/rtinfo.py" "$1" 2>/dev/null |
        jq -c '{put: (.msgPutTotalTodayNow|tonumber), got: (.msgGetTotalTodayNow|tonumber)}' 2>/dev/null ||
        echo null
}

life() { # round broker flush
    local round=$1 broker=$2 flush=$3
    local dir=$out/round$round/${broker/:/-}-$flush
    local script store_dir=""
    script=$(script_of "$broker")
    mkdir -p "$dir"
    [ "${broker#*:}" = tmpfs ] && store_dir=/dev/shm/ringmq-compare-$$-r$round-${broker%%:*}-$flush
    local full
    full=$(disk_too_full "$(dirname "${store_dir:-$dir/store}")")
    if [ -n "$full" ]; then
        echo "[$broker $flush round $round] skipped: $full" >&2
        jq -nc --argjson round "$round" --arg broker "$broker" --arg flush "$flush" --arg why "$full" \
            '{kind: "failed", round: $round, broker: $broker, flush: $flush, why: $why}' >>"$steps_file"
        return 0
    fi
    if ! STORE_DIR=$store_dir "$script" start "$dir" --flush "$flush" 2>"$dir/start.log"; then
        echo "[$broker $flush round $round] did not start: $(tail -n 3 "$dir/start.log" | tr '\n' ' ')" >&2
        jq -nc --argjson round "$round" --arg broker "$broker" --arg flush "$flush" \
            --arg why "$(tail -n 5 "$dir/start.log")" \
            '{kind: "failed", round: $round, broker: $broker, flush: $flush, why: $why}' >>"$steps_file"
        "$script" stop "$dir" || true
        return 0
    fi
    local NAMESRV BROKER PIDS BROKER_PID VERSION
    # shellcheck disable=SC1091
    . "$dir/env"
    echo "[$broker $flush round $round] namesrv $NAMESRV broker $BROKER pids $PIDS" >&2
    sleep 1
    local tag
    tag=$(date +%s)r${round}
    step() { # name messages-kind(put|got) then bench args
        local name=$1 kind=$2
        shift 2
        local c0 c1 i0 i1 t0 t1 la rc=0
        la=$(cut -d' ' -f1 /proc/loadavg)
        c0=$(cpu_of $PIDS)
        i0=$(counters "$BROKER")
        t0=$(date +%s.%N)
        timeout $((warmup + duration + 120)) "$BENCH" "$@" --namesrv "$NAMESRV" --json "$dir/$name.json" \
            >"$dir/$name.txt" 2>"$dir/$name.log" || rc=$?
        t1=$(date +%s.%N)
        c1=$(cpu_of $PIDS)
        i1=$(counters "$BROKER")
        [ -s "$dir/$name.json" ] || echo null >"$dir/$name.json"
        jq -c -n --slurpfile r "$dir/$name.json" --argjson i0 "$i0" --argjson i1 "$i1" \
            --argjson c0 "$c0" --argjson c1 "$c1" --argjson tck "$tck" --argjson rc "$rc" \
            --argjson round "$round" --arg broker "$broker" --arg flush "$flush" --arg step "$name" \
            --arg kind "$kind" --arg la "$la" --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" \
            --argjson warmup "$warmup" --argjson duration "$duration" --arg version "$VERSION" '
            ($r[0]) as $r |
            (($c1 - $c0) / $tck) as $cpu_s |
            (if $i0 != null and $i1 != null then ($i1[$kind] - $i0[$kind]) else null end) as $counted |
            (if $counted != null and $counted > 0 then {n: $counted, src: "broker"}
             elif $r != null and $r.messages > 0 then
                {n: ($r.messages * (if $step == "longpoll" or $step == "consume" then 1
                     else ($warmup + $duration) / $duration end)), src: "bench"}
             else {n: null, src: null} end) as $m |
            {kind: "step", round: $round, broker: $broker, version: $version, flush: $flush,
             step: $step, exit: $rc, loadavg1: ($la|tonumber), wall_s: $wall,
             msgs_per_sec: $r.msgs_per_sec, messages: $r.messages, errors: $r.errors,
             send_p50_us: $r.latency_us.p50, send_p99_us: $r.latency_us.p99,
             e2e_p50_us: $r.e2e_latency_us.p50, e2e_p99_us: $r.e2e_latency_us.p99,
             broker_cpu_s: $cpu_s, counted_msgs: $m.n, count_source: $m.src,
             cpu_us_per_msg: (if $m.n != null and $m.n > 0 then $cpu_s * 1e6 / $m.n else null end)}' \
            >>"$steps_file"
        echo "  $(tail -n 1 "$steps_file" | jq -r '"\(.step): \(.msgs_per_sec // "-" | tostring) msgs/s, cpu \(.cpu_us_per_msg // "-" | tostring) us/msg (\(.count_source)), errors \(.errors // "-" | tostring), exit \(.exit)"')" >&2
    }
    if [ "$life_warmup" -gt 0 ]; then # not reported (report.py skips step "warm")
        step warm put e2e --topic "CmpW$tag" --size 1024 --producers 2 --inflight 128 \
            --rate "$rate" --warmup 0 --duration "$life_warmup"
    fi
    local base=(--size 1024 --warmup "$warmup" --duration "$duration")
    step produce put produce --topic "CmpP$tag" "${base[@]}" --producers 2 --inflight 128
    step batch put produce --topic "CmpB$tag" "${base[@]}" --producers 2 --inflight 32 --batch 16
    step e2e put e2e --topic "CmpE$tag" "${base[@]}" --producers 2 --inflight 128 --rate "$rate"
    step longpoll put longpoll --topic "CmpL$tag" --size 1024 --interval-ms 50 --messages 200
    if [ "$flush" = async ]; then
        step consume got consume --topic "CmpP$tag" --group "CmpDrain$tag" --consumers 2 --duration "$duration"
    fi
    local hwm=() p
    for p in $PIDS; do
        hwm+=("$(awk '/^VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)")
    done
    local st=/proc/$BROKER_PID/status bhwm anon file
    bhwm=$(awk '/^VmHWM/{print $2}' "$st" 2>/dev/null || echo 0)
    anon=$(awk '/^RssAnon/{print $2}' "$st" 2>/dev/null || echo 0)
    file=$(awk '/^RssFile/{print $2}' "$st" 2>/dev/null || echo 0)
    jq -nc --argjson round "$round" --arg broker "$broker" --arg flush "$flush" --arg version "$VERSION" \
        --argjson bhwm "${bhwm:-0}" --argjson anon "${anon:-0}" --argjson file "${file:-0}" --arg all "${hwm[*]}" \
        '{kind: "life", round: $round, broker: $broker, version: $version, flush: $flush,
          broker_vmhwm_kib: $bhwm, broker_rss_anon_kib: $anon, broker_rss_file_kib: $file,
          all_vmhwm_kib: ($all | split(" ") | map(tonumber))}' >>"$steps_file"
    "$script" stop "$dir" 2>>"$dir/start.log" || true
}

echo "compare: out $out" >&2
for round in $(seq 1 "$rounds"); do
    for flush in "${flush_list[@]}"; do
        for broker in "${broker_list[@]}"; do
            life "$round" "$broker" "$flush"
        done
    done
done
python3 "$here/peers/report.py" "$out" >"$out/report.md"
cat "$out/report.md"
