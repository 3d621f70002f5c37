//! Memory under slow readers, with the real binary (issue 12, item 1): clients that send
//! pulls for big messages and never read the answers cannot grow the broker past its
//! `--max-memory` budget, and other clients keep being served meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use ringmq_protocol::codes::response_code;
use ringmq_protocol::header::SerializeType;
use support::{pull_request, send_request, Broker, TestClient};

const MIB: usize = 1024 * 1024;

fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

fn send_ok(client: &mut TestClient, topic: &str, body: &[u8]) {
    let response = client.call(send_request(topic, 0, "WAIT\u{1}true\u{2}", body));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
}

#[test]
fn slow_readers_of_big_messages_stay_within_the_memory_budget_and_others_are_served() {
    // RINGMQ_TEST_MEMORY_BUDGET=<bytes> reruns it with another budget (a huge one shows the
    // per-connection bound alone: 4 × 64 MiB).
    let budget: usize = std::env::var("RINGMQ_TEST_MEMORY_BUDGET")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(64 * MIB);
    let broker = Broker::start(&["--shards", "1", "--max-memory", &budget.to_string()]);
    let mut producer = broker.connect();
    let big = vec![b'x'; 3 * MIB];
    for _ in 0..4 {
        send_ok(&mut producer, "Big", &big);
    }
    let rss_before = rss_bytes(broker.child.id());

    // Four clients each ask for the 3 MiB message 300 times and read nothing: 3.6 GB of
    // answers if nothing bounded them.
    let mut slow: Vec<TestClient> = (0..4).map(|_| broker.connect()).collect();
    for client in &mut slow {
        for _ in 0..300 {
            client.send(pull_request("Slow", "Big", 0, 0, 0), SerializeType::Json);
        }
    }
    let started = Instant::now();
    let mut peak_rss = 0;
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        send_ok(&mut producer, "Small", b"hello");
        let response = producer.call(pull_request("Other", "Small", 0, 0, 0));
        assert_eq!(
            response.code,
            response_code::SUCCESS,
            "{:?}",
            response.remark
        );
        slowest = slowest.max(asked.elapsed());
        peak_rss = peak_rss.max(rss_bytes(broker.child.id()));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "RSS {} MiB before, {} MiB at peak; slowest other send + pull {slowest:?}",
        rss_before / MIB,
        peak_rss / MIB
    );
    // The budget, plus the messages being read at the moment, plus allocator slack.
    let allowed_growth = budget + 64 * MIB;
    assert!(
        peak_rss < rss_before + allowed_growth,
        "RSS grew from {} MiB to {} MiB with a {} MiB budget",
        rss_before / MIB,
        peak_rss / MIB,
        budget / MIB
    );
    assert!(
        slowest < Duration::from_secs(1),
        "another client's send + pull took {slowest:?} while slow readers held their answers"
    );

    // The slow readers go away: the memory their answers held goes back to the OS, so the
    // broker's RSS falls back near what it was before the burst.
    drop(slow);
    let settle_bound = rss_before + 8 * MIB;
    let gone = Instant::now();
    let mut rss_after = rss_bytes(broker.child.id());
    while rss_after > settle_bound && gone.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        rss_after = rss_bytes(broker.child.id());
    }
    eprintln!(
        "RSS {} MiB {:?} after the slow readers left (before the burst: {} MiB)",
        rss_after / MIB,
        gone.elapsed(),
        rss_before / MIB
    );
    assert!(
        rss_after <= settle_bound,
        "RSS stayed at {} MiB after the burst (before: {} MiB)",
        rss_after / MIB,
        rss_before / MIB
    );
}
