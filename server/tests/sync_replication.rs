//! SYNC_MASTER (`--replication sync`, issue 13) with real broker processes: a send is
//! answered SEND_OK only once a slave has acknowledged its bytes; without a slave it is
//! answered SLAVE_NOT_AVAILABLE (11), and when the slave stops acknowledging,
//! FLUSH_SLAVE_TIMEOUT (12) within the timeout. No SEND_OK is ever given for bytes the slave
//! does not hold: the master is killed after the slave, and the slave, restarted alone on its
//! store, serves every message that was answered SEND_OK. With `--flush sync` on both, that
//! holds through a power cut of the slave's disk too (testkit's `PowerCutFs`): the slave
//! fdatasyncs a frame before it acknowledges it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::header::SerializeType;
use ringmq_protocol::message::batch::encode_batch_entry;
use ringmq_protocol::message::msg_id::decode_offset_msg_id;
use ringmq_protocol::message::record::iter_records;
use ringmq_testkit::powercut::{CutMode, PowerCutFs};
use ringmq_testkit::report;
use support::{pull_request, request, send_request, Broker, TestClient};

const TOPIC: &str = "SyncTopic";
const SEGMENT: &str = "65536";
const QUEUES: i32 = 4;
/// Small, so that the timeout paths are quick.
const TIMEOUT_MS: u64 = 800;

fn common_args() -> Vec<String> {
    [
        "--shards",
        "2",
        "--segment-size",
        SEGMENT,
        "--broker-name",
        "syncrep",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn sync_master() -> Broker {
    let mut args = common_args();
    args.extend(
        [
            "--replication",
            "sync",
            "--sync-replication-timeout-ms",
            &TIMEOUT_MS.to_string(),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Broker::start(&args)
}

fn slave_args(master: &Broker) -> Vec<String> {
    let mut args = common_args();
    args.extend(master.slave_flags());
    args
}

fn start_slave(args: &[String], store: Option<tempfile::TempDir>) -> Broker {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match store {
        Some(store) => Broker::start_on_store(store, &args),
        None => Broker::start(&args),
    }
}

fn signal(broker: &Broker, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(broker.child.id()).unwrap();
    // SAFETY: kill(2) on a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// One send; the response and how long it took.
fn send(client: &mut TestClient, queue_id: i32, body: &str) -> (RemotingCommand, Duration) {
    let started = Instant::now();
    let response = client.call(send_request(TOPIC, queue_id, "", body.as_bytes()));
    (response, started.elapsed())
}

/// A stored-but-not-replicated answer carries the full send response header, as SEND_OK
/// does: the Java client decodes it into its SendResult.
fn assert_send_header(response: &RemotingCommand) {
    for key in ["msgId", "queueId", "queueOffset"] {
        assert!(
            response.ext(key).is_some(),
            "code {} without {key}: {:?}",
            response.code,
            response.ext_fields
        );
    }
}

/// Sends until one is answered SEND_OK (the slave follows), bounded.
fn wait_send_ok(client: &mut TestClient, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0.. {
        let (response, _) = send(client, i % QUEUES, &format!("probe-{what}-{i}"));
        if response.code == response_code::SUCCESS {
            return;
        }
        assert!(
            [
                response_code::SLAVE_NOT_AVAILABLE,
                response_code::FLUSH_SLAVE_TIMEOUT
            ]
            .contains(&response.code),
            "{what}: code {} {:?}",
            response.code,
            response.remark
        );
        assert!(Instant::now() < deadline, "{what}: no SEND_OK within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sync_master_answers_send_ok_only_while_a_slave_acknowledges() {
    let master = sync_master();
    let mut to_master = master.connect();

    // No slave: stored, but SLAVE_NOT_AVAILABLE at once.
    for i in 0..4 {
        let (response, took) = send(&mut to_master, i, "before any slave");
        assert_eq!(response.code, response_code::SLAVE_NOT_AVAILABLE);
        assert_send_header(&response);
        assert!(took < Duration::from_millis(TIMEOUT_MS), "{took:?}");
    }

    // A slave follows: SEND_OK, on every queue (both shards).
    let slave = start_slave(&slave_args(&master), None);
    wait_send_ok(&mut to_master, "slave started");
    for i in 0..40 {
        let (response, _) = send(&mut to_master, i % QUEUES, &format!("followed-{i}"));
        assert_eq!(
            response.code,
            response_code::SUCCESS,
            "{:?}",
            response.remark
        );
    }

    // A slave that stops acknowledging: FLUSH_SLAVE_TIMEOUT after the timeout, not before.
    signal(&slave, libc::SIGSTOP);
    let (response, took) = send(&mut to_master, 1, "slave stopped");
    signal(&slave, libc::SIGCONT);
    assert_eq!(response.code, response_code::FLUSH_SLAVE_TIMEOUT);
    assert_send_header(&response);
    assert!(
        took >= Duration::from_millis(TIMEOUT_MS - 50) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
    wait_send_ok(&mut to_master, "slave continued");

    // A killed slave: never SEND_OK again; FLUSH_SLAVE_TIMEOUT while the master may still
    // count it, then SLAVE_NOT_AVAILABLE, each within the timeout.
    drop(slave.kill9());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut codes = Vec::new();
    loop {
        let (response, took) = send(&mut to_master, codes.len() as i32 % QUEUES, "slave gone");
        assert!(
            took < Duration::from_millis(TIMEOUT_MS + 2000),
            "answered after {took:?}"
        );
        assert_send_header(&response);
        codes.push(response.code);
        if response.code == response_code::SLAVE_NOT_AVAILABLE {
            break;
        }
        assert_eq!(
            response.code,
            response_code::FLUSH_SLAVE_TIMEOUT,
            "{codes:?}"
        );
        assert!(Instant::now() < deadline, "{codes:?}");
    }
}

#[test]
fn every_stored_answer_of_a_sync_master_without_slave_says_so() {
    let master = sync_master();
    let mut client = master.connect();

    // A batch: stored whole, SLAVE_NOT_AVAILABLE with the batch's msgIds and first offset.
    let mut body = Vec::new();
    for i in 0..3 {
        encode_batch_entry(0, format!("batch-{i}").as_bytes(), "", &mut body).unwrap();
    }
    let mut batch = send_request(TOPIC, 2, "", &body);
    batch.code = request_code::SEND_BATCH_MESSAGE;
    batch.ext_fields.insert("m".to_owned(), "true".to_owned());
    let response = client.call(batch);
    assert_eq!(response.code, response_code::SLAVE_NOT_AVAILABLE);
    assert_send_header(&response);
    assert_eq!(response.ext("msgId").unwrap().split(',').count(), 3);

    // A producer that does not wait for the store (WAIT=false) is answered at once.
    let response = client.call(send_request(TOPIC, 1, "WAIT\u{1}false\u{2}", b"no wait"));
    assert_eq!(response.code, response_code::SUCCESS);

    // A send-back is answered as Java answers any put that is not PUT_OK.
    let (stored, _) = send(&mut client, 0, "to be sent back");
    let (_, physical_offset) = decode_offset_msg_id(stored.ext("msgId").unwrap()).unwrap();
    let response = client.call(request(
        request_code::CONSUMER_SEND_MSG_BACK,
        &[
            ("offset", &physical_offset.to_string()),
            ("group", "SyncGroup"),
            ("delayLevel", "0"),
        ],
    ));
    assert_eq!(response.code, response_code::SYSTEM_ERROR);
    assert_eq!(response.remark.as_deref(), Some("SLAVE_NOT_AVAILABLE"));
}

/// What a sender got: the bodies answered SEND_OK by queue, and every code seen.
#[derive(Debug, Default)]
struct Sent {
    ok: BTreeSet<(i32, String)>,
    codes: BTreeMap<i32, usize>,
}

/// Sends `round`'s messages with 8 in flight until `stop` (or 5,000 messages), recording
/// which were answered SEND_OK.
fn sender(mut client: TestClient, round: usize, stop: Arc<AtomicBool>) -> Sent {
    const IN_FLIGHT: usize = 8;
    let mut sent = Sent::default();
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) && next < 5000 {
        let mut pending = BTreeMap::new();
        for _ in 0..IN_FLIGHT {
            let queue_id = (next % QUEUES as usize) as i32;
            let body = format!("round-{round}-message-{next:05}");
            let opaque = client.send(
                send_request(TOPIC, queue_id, "", body.as_bytes()),
                SerializeType::Json,
            );
            pending.insert(opaque, (queue_id, body));
            next += 1;
        }
        while !pending.is_empty() {
            let response = client.receive().expect("the master answers every send");
            let Some(sent_as) = pending.remove(&response.opaque) else {
                continue;
            };
            *sent.codes.entry(response.code).or_default() += 1;
            if response.code == response_code::SUCCESS {
                sent.ok.insert(sent_as);
            }
        }
    }
    sent
}

/// Every message body of the topic's queues, by queue.
fn pull_all(client: &mut TestClient) -> BTreeSet<(i32, String)> {
    let mut out = BTreeSet::new();
    for queue_id in 0..QUEUES {
        let mut offset = 0;
        for _ in 0..10_000 {
            let response = client.call(pull_request("SyncCheck", TOPIC, queue_id, offset, 0));
            if response.code != response_code::SUCCESS {
                break;
            }
            for record in iter_records(&response.body) {
                let record = record.unwrap();
                out.insert((queue_id, String::from_utf8_lossy(record.body).into_owned()));
            }
            offset = response.ext("nextBeginOffset").unwrap().parse().unwrap();
        }
    }
    out
}

#[test]
fn no_send_ok_precedes_the_slave_having_the_bytes() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for round in 0..3 {
        let master = sync_master();
        let args = slave_args(&master);
        let slave = start_slave(&args, None);
        let mut probe = master.connect();
        wait_send_ok(&mut probe, "round start");
        drop(probe);

        let stop = Arc::new(AtomicBool::new(false));
        let client = master.connect();
        let worker = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || sender(client, round, stop))
        };
        // Kill the slave at a point that differs run to run and round to round.
        let kill_after_ms = 100 + (seed.wrapping_mul(round as u64 + 7) >> 3) % 400;
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        let slave_store = slave.kill9();
        // The sender keeps going against the slave-less master for a while.
        std::thread::sleep(Duration::from_millis(TIMEOUT_MS + 300));
        stop.store(true, Ordering::Relaxed);
        let sent = worker.join().unwrap();
        // The master dies too: the slave has only what it had when it was killed.
        drop(master.kill9());

        let slave = start_slave(&args, Some(slave_store));
        let mut to_slave = slave.connect();
        let held = pull_all(&mut to_slave);
        let missing: Vec<_> = sent.ok.difference(&held).collect();
        eprintln!(
            "round {round}: slave killed after {kill_after_ms} ms; codes {:?}; the slave holds {} messages",
            sent.codes,
            held.len()
        );
        assert!(
            missing.is_empty(),
            "round {round} (slave killed after {kill_after_ms} ms): {} of {} SEND_OK'd messages are not on the slave, e.g. {:?}; codes {:?}",
            missing.len(),
            sent.ok.len(),
            missing.first(),
            sent.codes
        );
        assert!(!sent.ok.is_empty(), "round {round}: codes {:?}", sent.codes);
        let refused = sent
            .codes
            .iter()
            .filter(|(code, _)| **code != response_code::SUCCESS);
        for (code, _) in refused {
            assert!(
                [
                    response_code::SLAVE_NOT_AVAILABLE,
                    response_code::FLUSH_SLAVE_TIMEOUT
                ]
                .contains(code),
                "round {round}: codes {:?}",
                sent.codes
            );
        }
        assert!(
            sent.codes.len() > 1,
            "round {round}: the slave's death never showed: codes {:?}",
            sent.codes
        );
    }
}

/// Sync flush on both, the slave's store on a filesystem that loses what was not synced: a
/// SEND_OK means the slave had fdatasynced the bytes, so they survive the slave's power cut
/// even when the master is lost too.
#[test]
fn with_sync_flush_every_send_ok_survives_a_power_cut_of_the_slave() {
    const TEST: &str = "with_sync_flush_every_send_ok_survives_a_power_cut_of_the_slave";
    let backing = tempfile::tempdir().unwrap();
    let Some(fs) = PowerCutFs::mount_or_skip(TEST, backing.path()) else {
        return;
    };
    let master = Broker::start(&[
        "--shards",
        "2",
        "--segment-size",
        SEGMENT,
        "--broker-name",
        "syncrep",
        "--replication",
        "sync",
        "--sync-replication-timeout-ms",
        &TIMEOUT_MS.to_string(),
        "--flush",
        "sync",
    ]);
    let mut args = slave_args(&master);
    args.extend(["--flush".to_owned(), "sync".to_owned()]);
    // The slave's store directories are durable first, as on a slave started long ago.
    let slave = start_slave(&args, Some(tempfile::tempdir_in(fs.path()).unwrap()));
    wait_send_ok(&mut master.connect(), "slave prepared");
    let (status, store) = slave.terminate();
    assert!(status.success(), "{status:?}");
    fs.sync_all();

    let slave = start_slave(&args, Some(store));
    wait_send_ok(&mut master.connect(), "slave restarted");
    let stop = Arc::new(AtomicBool::new(false));
    let client = master.connect();
    let worker = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || sender(client, 0, stop))
    };
    std::thread::sleep(Duration::from_millis(300));
    let store = slave.kill9();
    let cut = fs.cut(CutMode::DropAllPending).unwrap();
    std::thread::sleep(Duration::from_millis(TIMEOUT_MS + 300));
    stop.store(true, Ordering::Relaxed);
    let sent = worker.join().unwrap();
    drop(master.kill9());

    let slave = start_slave(&args, Some(store));
    let held = pull_all(&mut slave.connect());
    let missing: Vec<_> = sent.ok.difference(&held).collect();
    report(&format!(
        "RAN {TEST}: codes {:?}; the cut dropped {} file ops, {} bytes; the slave holds {}",
        sent.codes,
        cut.file_ops_dropped,
        cut.bytes_dropped,
        held.len()
    ));
    assert!(
        missing.is_empty(),
        "{} of {} SEND_OK'd messages lost with the slave's power, e.g. {:?}",
        missing.len(),
        sent.ok.len(),
        missing.first()
    );
    assert!(!sent.ok.is_empty(), "codes {:?}", sent.codes);
}
