//! `bench/compare.sh` without brokers: its argument handling, and its report builder turning
//! canned step records into the Markdown tables. No downloads, no JVM, no broker; needs bash
//! and python3.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compare.sh")
}

fn compare(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        // never the real binary: argument errors must come before any use of it
        .env("BENCH", "/nonexistent/ringmq-bench")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_describes_the_options() {
    let out = compare(&["--help"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    for opt in [
        "--brokers",
        "--flush",
        "--rounds",
        "--duration",
        "--e2e-rate",
        "--max-disk-percent",
        "--report",
    ] {
        assert!(help.contains(opt), "{opt} missing from --help:\n{help}");
    }
}

#[test]
fn bad_arguments_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["--rounds", "two"], "positive integer"),
        (&["--rounds", "0"], "positive integer"),
        (&["--duration"], "positive integer"),
        (&["--brokers", "ringmq,kafka"], "unknown broker 'kafka'"),
        (&["--flush", "lazy"], "unknown flush 'lazy'"),
        (&["--brokers", "rust:disk"], "unknown store 'disk'"),
        (&["--frobnicate"], "unknown argument: --frobnicate"),
        (
            &["--max-disk-percent", "0"],
            "integer from 1 to 100, got '0'",
        ),
        (
            &["--max-disk-percent", "101"],
            "integer from 1 to 100, got '101'",
        ),
        (
            &["--report", "/nonexistent/dir"],
            "no /nonexistent/dir/steps.jsonl",
        ),
    ];
    for (args, want) in cases {
        let out = compare(args);
        assert_eq!(out.status.code(), Some(2), "{args:?} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: expected '{want}' in:\n{err}");
    }
}

#[test]
fn a_store_filesystem_past_the_disk_limit_stops_the_run_before_any_broker_starts() {
    // The output directory is on the disk holding the build, surely more than 1% used.
    let out_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = Command::new("bash")
        .arg(script())
        .args(["--brokers", "ringmq", "--max-disk-percent", "1", "--out"])
        .arg(out_dir.path().join("run"))
        // An executable that is never run: the check comes before any broker or bench.
        .env("BENCH", std::env::current_exe().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("% used, at or past --max-disk-percent 1%") && err.contains("refuse sends"),
        "{err}"
    );
    assert!(
        !out_dir.path().join("run/round1").exists(),
        "a broker life was started"
    );
}

/// One step record as compare.sh writes it.
fn step(round: u32, broker: &str, flush: &str, name: &str, rate: f64, cpu_us: f64) -> String {
    let e2e = matches!(name, "e2e" | "longpoll" | "consume");
    let send = name != "consume";
    let source = if broker == "rust" { "bench" } else { "broker" };
    serde_json::json!({
        "kind": "step", "round": round, "broker": broker, "version": "9.9.9", "flush": flush,
        "step": name, "exit": 0, "loadavg1": 1.5, "wall_s": 13.2,
        "msgs_per_sec": rate, "messages": (rate * 10.0) as u64, "errors": 0,
        "send_p50_us": if send { Some(900) } else { None },
        "send_p99_us": if send { Some(12_340) } else { None },
        "e2e_p50_us": if e2e { Some(1_500) } else { None },
        "e2e_p99_us": if e2e { Some(8_250) } else { None },
        "broker_cpu_s": 1.0, "counted_msgs": rate * 13.0, "count_source": source,
        "cpu_us_per_msg": cpu_us,
    })
    .to_string()
}

#[test]
fn report_builds_the_tables_from_step_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for round in [1, 2] {
        for (broker, rate, cpu) in [("ringmq", 50_000.0, 10.0), ("apache", 25_000.0, 30.0)] {
            // "warm" (the life warm-up) is not reported: its errors must not count
            let mut warm: serde_json::Value =
                serde_json::from_str(&step(round, broker, "async", "warm", 1.0, 1.0)).unwrap();
            warm["errors"] = 99.into();
            lines.push(warm.to_string());
            for name in ["produce", "batch", "e2e", "longpoll", "consume"] {
                lines.push(step(round, broker, "async", name, rate, cpu));
            }
            lines.push(
                serde_json::json!({"kind": "life", "round": round, "broker": broker,
                    "version": "9.9.9", "flush": "async", "broker_vmhwm_kib": 204_800,
                    "broker_rss_anon_kib": 51_200, "all_vmhwm_kib": [204_800]})
                .to_string(),
            );
        }
    }
    lines.push(step(1, "rust", "async", "produce", 10_000.0, 20.0));
    lines.push(
        serde_json::json!({"kind": "failed", "round": 2, "broker": "rust", "flush": "async",
            "why": "rocketmq-rust did not come up:\nbind: address in use"})
        .to_string(),
    );
    std::fs::write(dir.path().join("steps.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("meta.txt"), "commit: abc1234\n").unwrap();

    let out = compare(&["--report", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert_eq!(report, text(&out.stdout));

    assert!(report.contains("- commit: abc1234"), "{report}");
    assert!(report.contains("## async flush"), "{report}");
    assert!(
        !report.contains("## sync flush"),
        "no sync lives, no sync table:\n{report}"
    );
    // a full row: msgs/s, send p99 ms, CPU, batched, CPU, e2e msgs/s, p50, p99, CPU,
    // wake p50, p99, consume msgs/s, CPU, peak RSS MiB, RSS anon MiB, errors
    let row =
        "| ringmq (round 1) | 50,000 | 12.34 | 10.0 | 50,000 | 10.0 | 50,000 | 1.50 | 8.25 | \
               10.0 | 1.50 | 8.25 | 50,000 | 10.0 | 200 | 50 | 0 |";
    assert!(report.contains(row), "missing\n{row}\nin\n{report}");
    assert!(
        report.contains("| Apache RocketMQ 9.9.9 (round 2) | 25,000 |"),
        "{report}"
    );
    // counted from the bench's report: marked ~; steps it did not run: –
    assert!(
        report.contains("| rocketmq-rust 9.9.9 (round 1) | 10,000 | 12.34 | ~20.0 | – |"),
        "{report}"
    );
    // peer ÷ ringmq of the same round, averaged
    assert!(
        report.contains("| Apache RocketMQ | 0.50× | 3.00× |"),
        "{report}"
    );
    assert!(
        report.contains("| rocketmq-rust | 0.20× | 2.00× |"),
        "{report}"
    );
    assert!(report.contains("## Did not run"), "{report}");
    assert!(
        report.contains("rocketmq-rust, async flush, round 2: rocketmq-rust did not come up: bind: address in use"),
        "{report}"
    );
}
