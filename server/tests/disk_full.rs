//! The broker on a small tmpfs the test fills (the kernel's ENOSPC, no simulation): sends
//! are refused with a clear status above the limit, pulls go on, sends resume without a
//! restart once space is freed, a restart on a full disk serves reads, and nothing
//! acknowledged is lost. Skipped, with the reason printed, where a tmpfs cannot be mounted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::message::record::iter_records;
use ringmq_testkit::tmpfs::Tmpfs;
use support::{pull_request, send_request, Broker, TestClient};

const TOPIC: &str = "DiskFullTopic";
const FS_BYTES: u64 = 8 << 20;
const SEGMENT_BYTES: &str = "262144";
const BODY_BYTES: usize = 1024;

fn body(i: usize) -> Vec<u8> {
    let mut body = format!("m{i:06}-").into_bytes();
    body.resize(BODY_BYTES, b'x');
    body
}

fn send(client: &mut TestClient, i: usize) -> RemotingCommand {
    client.call(send_request(TOPIC, 0, "", &body(i)))
}

/// Every message of queue 0 from offset 0, by queue offset (bodies' first 8 bytes).
fn pull_all(client: &mut TestClient) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    let mut offset = 0;
    for _ in 0..10_000 {
        let response = client.call(pull_request("DiskFullGroup", TOPIC, 0, offset, 0));
        if response.code == response_code::PULL_OFFSET_MOVED {
            // Below the minimum (retention deleted it): skip forward as consumers do.
            let next: i64 = response.ext("nextBeginOffset").unwrap().parse().unwrap();
            assert!(next > offset, "an offset moved forward, never back");
            offset = next;
            continue;
        }
        if response.code != response_code::SUCCESS {
            break;
        }
        for record in iter_records(&response.body) {
            let record = record.unwrap();
            out.insert(
                record.queue_offset,
                String::from_utf8_lossy(&record.body[..8]).into_owned(),
            );
        }
        offset = response.ext("nextBeginOffset").unwrap().parse().unwrap();
    }
    out
}

fn start(store: tempfile::TempDir) -> Broker {
    Broker::start_on_store(
        store,
        &[
            "--shards",
            "1",
            "--segment-size",
            SEGMENT_BYTES,
            // Refuse sends above 60%; retention stays out of this test (see the next one).
            "--disk-warning-percent",
            "60",
            "--disk-max-used-percent",
            "100",
            "--disk-clean-forcibly-percent",
            "100",
        ],
    )
}

#[test]
fn a_full_disk_refuses_sends_serves_reads_and_resumes_without_a_restart() {
    let Some(fs) = Tmpfs::mount_or_skip("a_full_disk_refuses_sends", FS_BYTES) else {
        return;
    };
    let broker = start(tempfile::tempdir_in(fs.path()).unwrap());
    let mut client = broker.connect();
    let mut acked = BTreeMap::new();
    for i in 0..300 {
        let response = send(&mut client, i);
        assert_eq!(
            response.code,
            response_code::SUCCESS,
            "{:?}",
            response.remark
        );
        let offset: i64 = response.ext("queueOffset").unwrap().parse().unwrap();
        acked.insert(offset, format!("m{i:06}-"));
    }

    // Past the 60% limit with a file the test owns: refused, with a reason.
    let filler = fs.fill_leaving(FS_BYTES / 4).unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // the guard's statvfs interval
    let refused = send(&mut client, 300);
    assert_eq!(refused.code, response_code::SERVICE_NOT_AVAILABLE);
    let remark = refused.remark.clone().unwrap_or_default();
    assert!(remark.contains("disk"), "the remark says why: {remark}");
    assert_eq!(
        pull_all(&mut client),
        acked,
        "reads go on while sends are refused"
    );

    // Space freed: sends resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    let started = Instant::now();
    let resumed = loop {
        let response = send(&mut client, 301);
        if response.code == response_code::SUCCESS {
            break response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sends did not resume after space was freed: {:?}",
            response.remark
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let offset: i64 = resumed.ext("queueOffset").unwrap().parse().unwrap();
    acked.insert(offset, "m000301-".to_owned());
    eprintln!(
        "sends resumed {} ms after space was freed",
        started.elapsed().as_millis()
    );

    // Full to the last byte, then a restart: the broker comes up and serves every
    // acknowledged message; sends are refused.
    drop(client);
    let _filler = fs.fill_leaving(0).unwrap();
    let store = broker.kill9();
    let broker = start(store);
    let mut client = broker.connect();
    assert_eq!(
        pull_all(&mut client),
        acked,
        "a restart on a full disk serves reads"
    );
    let refused = send(&mut client, 302);
    assert_eq!(
        refused.code,
        response_code::SERVICE_NOT_AVAILABLE,
        "{:?}",
        refused.remark
    );
}

#[test]
fn forced_retention_frees_a_full_disk_and_sends_resume_by_themselves() {
    let Some(fs) = Tmpfs::mount_or_skip("forced_retention_frees_a_full_disk", FS_BYTES) else {
        return;
    };
    let broker = Broker::start_on_store(
        tempfile::tempdir_in(fs.path()).unwrap(),
        &[
            "--shards",
            "1",
            "--segment-size",
            SEGMENT_BYTES,
            "--disk-warning-percent",
            "80",
            "--disk-clean-forcibly-percent",
            "60",
            "--clean-resource-interval-ms",
            "200",
        ],
    );
    let mut client = broker.connect();
    // The test's own file takes half the disk; the broker's sends fill the rest until the
    // 80% limit refuses them, and forced retention (60%) frees old segments meanwhile.
    let _filler = fs.fill_leaving(FS_BYTES / 2).unwrap();
    let mut refused = 0;
    let mut acked = BTreeMap::new();
    let started = Instant::now();
    let mut i = 0;
    // Bounded in time and count: far more than the disk holds, so retention must free it.
    while i < 20_000 && started.elapsed() < Duration::from_secs(60) {
        let response = send(&mut client, i);
        if response.code == response_code::SUCCESS {
            let offset: i64 = response.ext("queueOffset").unwrap().parse().unwrap();
            acked.insert(offset, format!("m{i:06}-"));
        } else {
            assert_eq!(
                response.code,
                response_code::SERVICE_NOT_AVAILABLE,
                "{:?}",
                response.remark
            );
            refused += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        i += 1;
    }
    let written_bytes = acked.len() * BODY_BYTES;
    assert!(
        written_bytes as u64 > FS_BYTES,
        "the broker stored {written_bytes} bytes through an {FS_BYTES}-byte disk: retention freed space ({refused} sends refused meanwhile)"
    );
    // What is left is a contiguous tail of what was acknowledged, each byte-identical.
    let left = pull_all(&mut client);
    let first = *left.keys().next().expect("the newest messages are kept");
    assert!(first > 0, "the oldest segments were deleted");
    let expected: BTreeMap<i64, String> =
        acked.range(first..).map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(
        left, expected,
        "every acknowledged message above the new minimum is intact"
    );
    eprintln!(
        "stored {} messages ({written_bytes} bytes) on an {FS_BYTES}-byte tmpfs; {refused} refused while full; min offset now {first}",
        acked.len()
    );
}

/// A broker started on a filesystem already past its send limit (here any filesystem in
/// use: the limit is 0.001%) says so at start, naming the flag, and refuses sends with the
/// reason; the test brokers' defaults keep every other test clear of the machine's disk.
#[test]
fn a_store_already_past_the_send_limit_is_named_at_start() {
    let log_dir = tempfile::tempdir().unwrap();
    let log_file = log_dir.path().join("broker.log");
    let broker = Broker::start_logging_to(
        &log_file,
        &["--shards", "1", "--disk-warning-percent", "0.001"],
    );
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("above --disk-warning-percent 0%: every send is refused"),
        "the start log names the limit: {log}"
    );
    let mut client = broker.connect();
    let refused = send(&mut client, 0);
    assert_eq!(refused.code, response_code::SERVICE_NOT_AVAILABLE);
    let remark = refused.remark.unwrap_or_default();
    assert!(remark.contains("disk"), "the remark says why: {remark}");
}
