//! Acceptance crash test (issue 3, item 1). A child process (this test binary, re-run with
//! `--ignored --exact crash_child`) appends from many concurrent tasks and prints every
//! acknowledged append; the parent SIGKILLs it at a random moment, reopens the store and
//! checks that every acknowledged message reads back byte-identical, by physical offset
//! and through its ConsumeQueue, and that every queue agrees with the log. With sync flush
//! an acknowledgement means durable; with async flush it means written to the page cache,
//! which a process kill does not lose. A tail torn after the kill is truncated, not fatal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ringmq_engine::commitlog::flush::{checkpoint_path, FlushPolicy};
use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::store::{GetMessageStatus, PutMessage, Store, StoreConfig};
use ringmq_protocol::message::view_record;

mod support;

const SEGMENT: u64 = 64 * 1024;
const TOPICS: [&str; 3] = ["TopicA", "TopicB", "%RETRY%g"];
const QUEUES: i32 = 2;
const TASKS: u64 = 16;

fn config(flush: FlushPolicy) -> StoreConfig {
    StoreConfig {
        segment_size_bytes: SEGMENT,
        flush,
        // Frequent checkpoints so that a kill lands between checkpoints, too.
        checkpoint_interval_ms: 50,
        total_ram_bytes: Some(1 << 30),
        disk_guard: support::unlimited_disk_guard(),
        ..StoreConfig::default()
    }
}

fn flush_from_env(value: &str) -> FlushPolicy {
    match value {
        "sync" => FlushPolicy::Sync,
        _ => FlushPolicy::Async { interval_ms: 100 },
    }
}

/// Deterministic body of message `n`: its length and bytes follow from `n`.
fn body(n: u64) -> Vec<u8> {
    let len = 20 + (n.wrapping_mul(2_654_435_761) % 1500) as usize;
    (0..len).map(|i| (n as usize * 31 + i * 7) as u8).collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The child: appends until killed, printing `ACK topic queue queue_offset physical hash`.
#[test]
#[ignore = "child process of the crash tests; run by them"]
fn crash_child() {
    let dir = std::env::var("RINGMQ_CRASH_DIR").expect("RINGMQ_CRASH_DIR");
    let flush = flush_from_env(&std::env::var("RINGMQ_CRASH_FLUSH").unwrap_or_default());
    compio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let store = Store::open(&dir, 0, config(flush)).await.unwrap();
            let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    let store = store.clone();
                    compio::runtime::spawn(async move {
                        for k in 0.. {
                            let n = k * TASKS + task;
                            let topic = TOPICS[(n % 3) as usize];
                            let queue_id = ((n / 3) % QUEUES as u64) as i32;
                            let body = body(n);
                            let hash = fnv(&body);
                            let msg = PutMessage {
                                topic: topic.to_owned(),
                                queue_id,
                                flag: 0,
                                sys_flag: 0,
                                born_timestamp: 1,
                                born_host: host,
                                store_host: host,
                                reconsume_times: 0,
                                prepared_transaction_offset: 0,
                                body: Bytes::from(body),
                                properties: format!("TAGS\u{1}t{}\u{2}", n % 5),
                            };
                            let r = store.put(msg).await.unwrap();
                            println!(
                                "ACK {topic} {queue_id} {} {} {hash}",
                                r.queue_offset, r.physical_offset
                            );
                        }
                    })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        });
}

#[derive(Debug)]
struct Ack {
    topic: String,
    queue_id: i32,
    queue_offset: i64,
    physical_offset: i64,
    hash: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut it = line.strip_prefix("ACK ")?.split(' ');
    Some(Ack {
        topic: it.next()?.to_owned(),
        queue_id: it.next()?.parse().ok()?,
        queue_offset: it.next()?.parse().ok()?,
        physical_offset: it.next()?.parse().ok()?,
        hash: it.next()?.parse().ok()?,
    })
}

/// Runs the child on `dir`, kills it with SIGKILL at a random moment after it acknowledged
/// at least `min_acks` appends, and returns the acknowledgements it printed.
fn run_child_and_kill(dir: &Path, flush: &str, min_acks: usize) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RINGMQ_CRASH_DIR", dir)
        .env("RINGMQ_CRASH_FLUSH", flush)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines
        .iter()
        .filter(|l: &&String| l.starts_with("ACK "))
        .count()
        < min_acks
    {
        assert!(
            Instant::now() < deadline,
            "the child acknowledged too little"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            lines.push(line);
        }
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_millis(u64::from(nanos % 400)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    // A line cut by the kill does not parse and is no acknowledgement.
    lines.iter().filter_map(|l| parse_ack(l)).collect()
}

async fn assert_acknowledged_messages_read_back(store: &Store, acks: &[Ack]) {
    for ack in acks {
        let bytes = store.read_record_at(ack.physical_offset).await.unwrap();
        let view = view_record(&bytes).unwrap();
        assert_eq!(view.topic, ack.topic);
        assert_eq!(view.queue_id, ack.queue_id);
        assert_eq!(view.queue_offset, ack.queue_offset);
        assert_eq!(fnv(view.body), ack.hash, "body of {ack:?}");
        assert!(view.body_crc_matches());
        let pulled = store
            .get_messages(
                &ack.topic,
                ack.queue_id,
                ack.queue_offset,
                1,
                u64::MAX,
                &TagFilter::All,
            )
            .await
            .unwrap();
        assert_eq!(pulled.status, GetMessageStatus::Found, "{ack:?}");
        assert_eq!(pulled.messages[0].physical_offset, ack.physical_offset);
        assert_eq!(
            &pulled.data[..],
            &bytes[..],
            "the pull returns the same bytes"
        );
    }
}

async fn assert_queues_agree_with_log(store: &Store) {
    for (topic, queue_id) in store.queues() {
        let (min, max) = (
            store.min_offset(&topic, queue_id),
            store.max_offset(&topic, queue_id),
        );
        let mut offset = min;
        while offset < max {
            let r = store
                .get_messages(&topic, queue_id, offset, 32, u64::MAX, &TagFilter::All)
                .await
                .unwrap();
            assert_eq!(r.status, GetMessageStatus::Found);
            for m in &r.messages {
                let view = view_record(&r.data[m.data_range.clone()]).unwrap();
                assert_eq!((view.topic, view.queue_id), (topic.as_str(), queue_id));
                assert_eq!(view.queue_offset, m.queue_offset);
                assert!(view.body_crc_matches());
            }
            offset = r.next_begin_offset;
        }
    }
}

fn reopen_and_check(dir: &Path, flush: FlushPolicy, acks: &[Ack]) {
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(dir, 0, config(flush)).await.unwrap();
        assert_acknowledged_messages_read_back(&store, acks).await;
        assert_queues_agree_with_log(&store).await;
        // And the store takes appends again, continuing the queue.
        let max = store.max_offset("TopicA", 0);
        let host: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let r = store
            .put(PutMessage {
                topic: "TopicA".to_owned(),
                queue_id: 0,
                flag: 0,
                sys_flag: 0,
                born_timestamp: 1,
                born_host: host,
                store_host: host,
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                body: Bytes::from_static(b"after the crash"),
                properties: String::new(),
            })
            .await
            .unwrap();
        assert_eq!(r.queue_offset, max);
        store.close().await.unwrap();
    });
}

#[test]
fn sync_flush_acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let acks = run_child_and_kill(dir.path(), "sync", 300);
    assert!(acks.len() >= 300);
    reopen_and_check(dir.path(), FlushPolicy::Sync, &acks);
}

#[test]
fn a_store_recovered_after_a_kill_survives_the_next_kill_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut acks = run_child_and_kill(dir.path(), "sync", 200);
    // The second child recovers the killed store, appends more and is killed in turn.
    acks.extend(run_child_and_kill(dir.path(), "sync", 200));
    reopen_and_check(dir.path(), FlushPolicy::Sync, &acks);
}

#[test]
fn async_flush_acknowledged_messages_survive_a_process_kill() {
    let dir = tempfile::tempdir().unwrap();
    let acks = run_child_and_kill(dir.path(), "async", 2000);
    reopen_and_check(dir.path(), FlushPolicy::Async { interval_ms: 100 }, &acks);
}

#[test]
fn a_tail_torn_after_a_kill_is_truncated_and_earlier_messages_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut acks = run_child_and_kill(dir.path(), "sync", 300);
    // Tear the newest acknowledged record (as if its last page never reached the disk) and
    // drop the checkpoint so that recovery must find the tear by itself.
    acks.sort_by_key(|a| a.physical_offset);
    let torn = acks.pop().unwrap();
    let start = torn.physical_offset as u64 / SEGMENT * SEGMENT;
    let path = dir.path().join("commitlog/0").join(format!("{start:020}"));
    let mut bytes = std::fs::read(&path).unwrap();
    let at = (torn.physical_offset as u64 - start) as usize + 30;
    for b in &mut bytes[at..at + 16] {
        *b = !*b;
    }
    std::fs::write(&path, bytes).unwrap();
    std::fs::remove_file(checkpoint_path(&dir.path().join("commitlog/0"))).unwrap();
    // Records after the torn one (appended, maybe unacknowledged) are cut with it.
    reopen_and_check(dir.path(), FlushPolicy::Sync, &acks);
}
