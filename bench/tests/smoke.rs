//! Short `ringmq-bench` runs against a real `ringmq-server` (port 0, temporary store): the
//! `--json` report of each mode is parsed and checked against the schema of issue 6, and the
//! figures against what the run must have done. A smoke test, not a benchmark: runs last a
//! second or two and no figure is compared with a threshold of speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::Broker;

fn bench(broker: Option<&Broker>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringmq-bench"));
    cmd.args(args);
    if let Some(b) = broker {
        cmd.args(["--namesrv", &b.namesrv_addr]);
    }
    cmd.output().unwrap()
}

/// Runs a mode with `--json` and returns the parsed report, checking its schema.
fn report(broker: &Broker, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let mut all = args.to_vec();
    all.extend(["--json", path.to_str().unwrap()]);
    let out = bench(Some(broker), &all);
    assert!(
        out.status.success(),
        "ringmq-bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("msgs/s"), "no final table: {stdout}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let keys = [
        "mode",
        "messages",
        "errors",
        "seconds",
        "msgs_per_sec",
        "mb_per_sec",
        "latency_us",
        "e2e_latency_us",
        "broker_cpu_us_per_msg",
        "bench_cpu_us_per_msg",
    ];
    let obj = json.as_object().unwrap();
    assert_eq!(obj.len(), keys.len(), "unexpected keys in {json}");
    for key in keys {
        assert!(obj.contains_key(key), "{key} missing from {json}");
    }
    json
}

/// Checks a percentile object: every field present and non-decreasing up to max.
fn assert_percentiles(p: &Value) {
    let names = ["p50", "p90", "p99", "p999", "p9999", "max"];
    let values: Vec<u64> = names
        .iter()
        .map(|n| {
            p[n].as_u64()
                .unwrap_or_else(|| panic!("{n} missing in {p}"))
        })
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "percentiles decrease: {p}"
    );
    assert!(values[0] > 0, "{p}");
}

#[test]
fn help_of_every_mode_exits_zero() {
    for mode in [
        None,
        Some("produce"),
        Some("consume"),
        Some("e2e"),
        Some("longpoll"),
    ] {
        let mut args: Vec<&str> = mode.into_iter().collect();
        args.push("--help");
        let out = bench(None, &args);
        assert!(out.status.success(), "{args:?}: {}", out.status);
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: ringmq-bench"));
    }
}

#[test]
fn produce_reports_send_latency_and_the_messages_asked_for() {
    let broker = Broker::start();
    let json = report(
        &broker,
        &[
            "produce",
            "--topic",
            "Smoke",
            "--messages",
            "2000",
            "--inflight",
            "16",
        ],
    );
    assert_eq!(json["mode"], "produce");
    assert_eq!(json["errors"], 0);
    let messages = json["messages"].as_u64().unwrap();
    assert!((2000..2000 + 16).contains(&messages), "{json}");
    assert!(json["msgs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(json["mb_per_sec"].as_f64().unwrap() > 0.0);
    assert_percentiles(&json["latency_us"]);
    assert!(json["e2e_latency_us"].is_null(), "{json}");
    assert!(
        json["broker_cpu_us_per_msg"].is_null(),
        "no --broker-pid: {json}"
    );
    assert!(
        json["bench_cpu_us_per_msg"].as_f64().unwrap() > 0.0,
        "{json}"
    );
}

#[test]
fn with_broker_pid_the_brokers_cpu_per_message_is_reported() {
    let broker = Broker::start();
    let json = report(
        &broker,
        &[
            "produce",
            "--topic",
            "SmokeCpu",
            "--messages",
            "3000",
            "--broker-pid",
            &broker.pid,
        ],
    );
    let broker_us = json["broker_cpu_us_per_msg"].as_f64().unwrap();
    // A debug broker spends somewhere between a microsecond and a few milliseconds per
    // message: a figure outside that says the units or the arithmetic are wrong.
    assert!((1.0..5_000.0).contains(&broker_us), "{json}");
    assert!(
        json["bench_cpu_us_per_msg"].as_f64().unwrap() > 0.0,
        "{json}"
    );

    let refused = bench(
        Some(&broker),
        &["produce", "--messages", "10", "--broker-pid", "999999999"],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--broker-pid 999999999"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn e2e_receives_every_message_it_sends_in_open_loop() {
    let broker = Broker::start();
    let json = report(
        &broker,
        &[
            "e2e",
            "--topic",
            "SmokeE2e",
            "--rate",
            "1000",
            "--messages",
            "1000",
            "--batch",
            "4",
        ],
    );
    assert_eq!(json["mode"], "e2e");
    assert_eq!(json["errors"], 0, "lost messages count as errors: {json}");
    assert_eq!(json["messages"], 1000);
    let secs = json["seconds"].as_f64().unwrap();
    assert!(
        secs > 0.8,
        "1000 msgs at 1000/s took {secs} s: the rate was not applied"
    );
    assert_percentiles(&json["latency_us"]);
    assert_percentiles(&json["e2e_latency_us"]);
}

#[test]
fn timed_messages_arrive_and_their_lateness_is_the_e2e_latency() {
    let broker = Broker::start();
    let json = report(
        &broker,
        &[
            "e2e",
            "--topic",
            "SmokeTimed",
            "--rate",
            "500",
            "--messages",
            "500",
            "--deliver-within-ms",
            "1500",
        ],
    );
    assert_eq!(json["errors"], 0, "every timed message arrives: {json}");
    assert_eq!(json["messages"], 500);
    // Lateness past due, not the delay: far below the 1.5 s the due times spread over.
    let p50_us = json["e2e_latency_us"]["p50"].as_u64().unwrap();
    assert!(p50_us < 500_000, "p50 lateness {p50_us} µs: {json}");
    let refused = bench(
        Some(&broker),
        &[
            "e2e",
            "--topic",
            "SmokeTimed",
            "--deliver-within-ms",
            "10",
            "--batch",
            "4",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--batch 1"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn consume_drains_what_produce_wrote() {
    let broker = Broker::start();
    report(
        &broker,
        &[
            "produce",
            "--topic",
            "SmokeDrain",
            "--messages",
            "500",
            "--size",
            "100",
        ],
    );
    let json = report(
        &broker,
        &[
            "consume",
            "--topic",
            "SmokeDrain",
            "--messages",
            "500",
            "--group",
            "drain",
        ],
    );
    assert_eq!(json["mode"], "consume");
    assert!(json["messages"].as_u64().unwrap() >= 500, "{json}");
    assert!(json["latency_us"].is_null(), "{json}");
    assert_percentiles(&json["e2e_latency_us"]);
}

/// Asked for more messages than the topic holds, consume gives up after
/// --stall-timeout-secs with a non-zero exit and the count it reached, instead of waiting
/// forever.
#[test]
fn consume_of_more_than_stored_stops_with_the_count_reached() {
    let broker = Broker::start();
    report(
        &broker,
        &["produce", "--topic", "SmokeStall", "--messages", "20"],
    );
    let started = std::time::Instant::now();
    let out = bench(
        Some(&broker),
        &[
            "consume",
            "--topic",
            "SmokeStall",
            "--messages",
            "50",
            "--group",
            "stall",
            "--stall-timeout-secs",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("stalled: 20 of 50 messages"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[test]
fn e2e_through_the_pull_api_receives_every_message() {
    let broker = Broker::start();
    let json = report(
        &broker,
        &[
            "e2e",
            "--api",
            "pull",
            "--topic",
            "SmokePull",
            "--messages",
            "300",
            "--rate",
            "1000",
        ],
    );
    assert_eq!(json["errors"], 0, "{json}");
    assert_percentiles(&json["e2e_latency_us"]);
}

#[test]
fn longpoll_reports_wake_latency_for_each_message() {
    let broker = Broker::start();
    let json = report(
        &broker,
        &[
            "longpoll",
            "--topic",
            "SmokeLp",
            "--messages",
            "10",
            "--interval-ms",
            "20",
            "--idle-ms",
            "300",
        ],
    );
    assert_eq!(json["mode"], "longpoll");
    assert_eq!(json["errors"], 0, "{json}");
    assert_eq!(json["messages"], 10);
    assert_percentiles(&json["e2e_latency_us"]);
}

#[test]
fn unreachable_name_server_fails_with_a_reason() {
    let out = bench(
        None,
        &[
            "e2e",
            "--namesrv",
            "127.0.0.1:1",
            "--topic",
            "T",
            "--duration",
            "1",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}
