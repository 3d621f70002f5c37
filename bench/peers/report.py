#!/usr/bin/env python3
"""Markdown report of one bench/compare.sh run: OUT/steps.jsonl (+ OUT/meta.txt) -> stdout.

    python3 bench/peers/report.py OUT

steps.jsonl holds one JSON object a line: {"kind": "step", ...} per bench step,
{"kind": "life", ...} per broker life (peak RSS), {"kind": "failed", ...} per broker that
did not start. Rows are broker lives in run order; the ratio table divides each peer's figure
by ringmq's of the same round and flush (the lives of one round ran minutes apart), then
averages over rounds.
"""
import json
import os
import sys

NAMES = {"ringmq": "ringmq", "apache": "Apache RocketMQ", "rust": "rocketmq-rust"}


def load(out):
    rows = []
    with open(os.path.join(out, "steps.jsonl")) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"steps.jsonl line {n}: {e}")
    return rows


def num(v, digits=0):
    if v is None:
        return "–"
    if digits == 0:
        return f"{round(v):,}"
    return f"{v:,.{digits}f}"


def ms(us):
    return "–" if us is None else f"{us / 1000:.2f}"


def cpu(step):
    if step is None or step.get("cpu_us_per_msg") is None:
        return "–"
    mark = "~" if step.get("count_source") == "bench" else ""
    return f"{mark}{step['cpu_us_per_msg']:.1f}"


def mib(kib):
    return "–" if not kib else f"{kib / 1024:,.0f}"


def lives(rows):
    """(round, broker, flush) -> {"steps": {name: row}, "life": row|None, "failed": row|None}"""
    out = {}
    order = []
    for r in rows:
        key = (r.get("round"), r.get("broker"), r.get("flush"))
        if key not in out:
            out[key] = {"steps": {}, "life": None, "failed": None}
            order.append(key)
        kind = r.get("kind")
        if kind == "step" and r.get("step") != "warm":  # the unreported life warm-up
            out[key]["steps"][r["step"]] = r
        elif kind == "life":
            out[key]["life"] = r
        elif kind == "failed":
            out[key]["failed"] = r
    return order, out


def label(key, life):
    rnd, broker, _ = key
    version = None
    if life["life"]:
        version = life["life"].get("version")
    elif life["steps"]:
        version = next(iter(life["steps"].values())).get("version")
    base, _, store = broker.partition(":")
    name = NAMES.get(base, base)
    if version and base != "ringmq":
        name += f" {version}"
    if store:
        name += f", store on {store}"
    return f"{name} (round {rnd})"


def display(broker):
    base, _, store = broker.partition(":")
    return NAMES.get(base, base) + (f" (store on {store})" if store else "")


def errors(life):
    errs = [s.get("errors") for s in life["steps"].values()]
    errs = [e for e in errs if e is not None]
    bad = [n for n, s in life["steps"].items() if s.get("exit") not in (0, None)]
    text = str(sum(errs)) if errs else "–"
    if bad:
        text += " (failed: " + ", ".join(bad) + ")"
    return text


def table(order, data, flush):
    keys = [k for k in order if k[2] == flush and not data[k]["failed"]]
    if not keys:
        return []
    has_consume = any("consume" in data[k]["steps"] for k in keys)
    head = [
        "broker",
        "produce msgs/s",
        "send p99 ms",
        "CPU µs/msg",
        "batched msgs/s (16/send)",
        "CPU µs/msg",
        "e2e msgs/s",
        "e2e p50 ms",
        "e2e p99 ms",
        "CPU µs/msg",
        "wake p50 ms",
        "wake p99 ms",
    ]
    if has_consume:
        head += ["consume msgs/s", "CPU µs/msg"]
    head += ["peak RSS MiB", "RSS anon MiB", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in keys:
        d = data[k]
        s = d["steps"]
        p, b, e, lp, c = (s.get(n) for n in ("produce", "batch", "e2e", "longpoll", "consume"))
        g = lambda st, f: None if st is None else st.get(f)  # noqa: E731
        cells = [
            label(k, d),
            num(g(p, "msgs_per_sec")),
            ms(g(p, "send_p99_us")),
            cpu(p),
            num(g(b, "msgs_per_sec")),
            cpu(b),
            num(g(e, "msgs_per_sec")),
            ms(g(e, "e2e_p50_us")),
            ms(g(e, "e2e_p99_us")),
            cpu(e),
            ms(g(lp, "e2e_p50_us")),
            ms(g(lp, "e2e_p99_us")),
        ]
        if has_consume:
            cells += [num(g(c, "msgs_per_sec")), cpu(c)]
        life = d["life"] or {}
        cells += [mib(life.get("broker_vmhwm_kib")), mib(life.get("broker_rss_anon_kib")), errors(d)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


RATIOS = [
    ("produce msgs/s", "produce", "msgs_per_sec"),
    ("produce CPU/msg", "produce", "cpu_us_per_msg"),
    ("batched msgs/s", "batch", "msgs_per_sec"),
    ("batched CPU/msg", "batch", "cpu_us_per_msg"),
    ("e2e p99", "e2e", "e2e_p99_us"),
    ("e2e CPU/msg", "e2e", "cpu_us_per_msg"),
    ("wake p50", "longpoll", "e2e_p50_us"),
    ("consume msgs/s", "consume", "msgs_per_sec"),
    ("consume CPU/msg", "consume", "cpu_us_per_msg"),
]


def ratio_table(order, data, flush):
    peers = []
    for k in order:
        if k[1].partition(":")[0] != "ringmq" and k[1] not in peers and k[2] == flush:
            peers.append(k[1])
    rows = []
    for peer in peers:
        # the ringmq life with the same store kind if there is one, else ringmq on disk
        store = peer.partition(":")[2]
        ref = "ringmq:" + store if store else "ringmq"
        if not any(k[1] == ref for k in order):
            ref = "ringmq"
        cells = [display(peer) + ("" if ref == "ringmq" else f" ÷ {display(ref)}")]
        for _, step, field in RATIOS:
            rs = []
            for k in order:
                if k[1] != peer or k[2] != flush:
                    continue
                base = data.get((k[0], ref, flush))
                if not base:
                    continue
                a = data[k]["steps"].get(step, {}).get(field)
                z = base["steps"].get(step, {}).get(field)
                if a and z:
                    rs.append(a / z)
            cells.append("–" if not rs else f"{sum(rs) / len(rs):.2f}×")
        if any(c != "–" for c in cells[1:]):
            rows.append(cells)
    if not rows:
        return []
    head = ["peer ÷ ringmq (same round)"] + [r[0] for r in RATIOS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    rows = load(out)
    order, data = lives(rows)
    print("# ringmq beside its peers (bench/compare.sh)\n")
    meta = os.path.join(out, "meta.txt")
    if os.path.exists(meta):
        with open(meta) as f:
            for line in f:
                print(f"- {line.strip()}")
        print()
    for flush in ("async", "sync"):
        t = table(order, data, flush)
        if t:
            print(f"## {flush} flush\n")
            print("\n".join(t))
            print()
            r = ratio_table(order, data, flush)
            if r:
                print("\n".join(r))
                print()
    failed = [data[k]["failed"] for k in order if data[k]["failed"]]
    if failed:
        print("## Did not run\n")
        for f in failed:
            why = " ".join(f.get("why", "").split())
            print(f"- {display(f['broker'])}, {f['flush']} flush, round {f['round']}: {why}")
        print()
    print(
        "CPU µs/msg: utime+stime of the broker's processes over the step (warm-up included) "
        "÷ messages the broker counted over the same span; ~ = counted from the bench's report "
        "instead. Peak RSS: VmHWM of the broker process at the end of its life (it counts pages of "
        "mapped store files too); RSS anon: its RssAnon at that moment (heap, private memory)."
    )


if __name__ == "__main__":
    main()
