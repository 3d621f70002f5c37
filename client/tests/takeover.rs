//! A group member's process killed with SIGKILL while messages flow: the survivors take its
//! queues over and every message is still consumed (at least once). Members are separate
//! processes (the `push_consume` example); the test reports the takeover time and the
//! duplicate count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringmq_client::core::now_ms;
use ringmq_client::{Admin, Message, Producer, ProducerConfig};

/// examples/push_consume next to the test executable (`cargo test` builds examples; a
/// filtered `--test takeover` run does not, hence the instruction in the failure).
fn member_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join("push_consume");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p ringmq-client --examples` (cargo test builds it)",
        bin.display()
    );
    bin
}

struct Member {
    child: Child,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (member index, unix ms, queue id, msg id) of each RECV line; READY lines as (index, 0, -1, cid).
type Line = (usize, i64, i32, String);

fn spawn_member(bin: &PathBuf, ns: &str, index: usize, tx: mpsc::Sender<Line>) -> Member {
    let mut child = Command::new(bin)
        .args([ns, "Takeover", "takeover-group", "first"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let parsed = match parts.as_slice() {
                ["READY", cid] => Some((index, 0, -1, (*cid).to_owned())),
                ["RECV", ms, q, _reconsume, id] => Some((
                    index,
                    ms.parse().unwrap(),
                    q.parse().unwrap(),
                    (*id).to_owned(),
                )),
                _ => None,
            };
            if let Some(p) = parsed {
                if tx.send(p).is_err() {
                    break;
                }
            }
        }
    });
    Member { child }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_with_sigkill_has_its_queues_taken_over_and_no_message_is_lost() {
    let broker = support::start_broker(&[]);
    let bin = member_binary();
    let ns = broker.namesrv_addr.unwrap().to_string();
    let admin = Admin::connect(&ns);
    support::create_routed_topic(&admin, "Takeover", 8).await;

    let (tx, rx) = mpsc::channel::<Line>();
    let mut members: Vec<Member> = (0..3)
        .map(|i| spawn_member(&bin, &ns, i, tx.clone()))
        .collect();
    drop(tx);
    let mut lines: Vec<Line> = Vec::new();
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    while lines.iter().filter(|l| l.2 == -1).count() < 3 {
        let left = ready_deadline.saturating_duration_since(Instant::now());
        lines.push(rx.recv_timeout(left).expect("members did not start"));
    }
    // Let the membership notifications settle the split before the measured part.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let producer = Producer::start(ProducerConfig::new(&ns, "takeover-producers"))
        .await
        .unwrap();
    // RINGMQ_TAKEOVER_MESSAGES raises the count for a measurement run (default kept small).
    let total: usize = std::env::var("RINGMQ_TAKEOVER_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut sent = BTreeSet::new();
    let mut kill_ms = 0;
    for i in 0..total {
        if i == total / 3 {
            members[0].child.kill().unwrap();
            kill_ms = now_ms();
        }
        let r = producer
            .send(Message::new("Takeover", format!("{i}")))
            .await
            .unwrap();
        sent.insert(r.msg_id);
    }
    let consumed_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: BTreeSet<&String> = lines.iter().filter(|l| l.2 >= 0).map(|l| &l.3).collect();
        if sent.iter().all(|id| got.contains(id)) {
            break;
        }
        let left = consumed_deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{} of {} messages never consumed",
            sent.iter().filter(|id| !got.contains(id)).count(),
            sent.len()
        );
        if let Ok(line) = rx.recv_timeout(left.min(Duration::from_millis(200))) {
            lines.push(line);
        }
    }
    // Drain what is still arriving (redeliveries) for a moment.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        lines.push(line);
    }
    let dead_queues: BTreeSet<i32> = lines
        .iter()
        .filter(|l| l.0 == 0 && l.2 >= 0)
        .map(|l| l.2)
        .collect();
    assert!(!dead_queues.is_empty(), "the killed member never consumed");
    let takeover_ms = lines
        .iter()
        .filter(|l| l.0 != 0 && l.1 >= kill_ms && dead_queues.contains(&l.2))
        .map(|l| l.1 - kill_ms)
        .min()
        .expect("no survivor consumed the dead member's queues");
    // Queues the survivors already read before the kill would mean the split had not settled.
    let overlap: BTreeSet<i32> = lines
        .iter()
        .filter(|l| l.0 != 0 && l.2 >= 0 && l.1 < kill_ms && dead_queues.contains(&l.2))
        .map(|l| l.2)
        .collect();
    let mut receipts: HashMap<&String, usize> = HashMap::new();
    for l in lines.iter().filter(|l| l.2 >= 0) {
        *receipts.entry(&l.3).or_default() += 1;
    }
    let duplicates: usize = receipts.values().map(|n| n - 1).sum();
    eprintln!(
        "takeover after SIGKILL: {takeover_ms} ms; duplicates: {duplicates} of {total} \
         messages ({:.0} per 10,000); dead member's queues: {dead_queues:?}, \
         read by survivors before the kill: {overlap:?}",
        duplicates as f64 * 10_000.0 / total as f64
    );
    assert!(takeover_ms < 25_000, "takeover took {takeover_ms} ms");
    for m in &mut members[1..] {
        drop(m.child.stdin.take()); // graceful shutdown of the survivors
    }
    producer.shutdown().await;
}
