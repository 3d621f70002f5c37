//! kill -9 of the broker under a stream of acknowledged sends, then a restart on the same
//! store: every acknowledged message is there, at the offset its acknowledgement named
//! (issue 4). With `--flush sync` an acknowledgement means fdatasync'd; with `--flush async`
//! it means in the page cache, which a process kill does not lose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::message::record::iter_records;
use support::{request, Broker, TestClient};

const TOPIC: &str = "CrashTopic";
const SENDERS: i32 = 4;

/// (queue id, queue offset) → body of every acknowledged send.
type Acked = Arc<Mutex<BTreeMap<(i32, i64), String>>>;

fn send_until_refused(addr: std::net::SocketAddr, queue_id: i32, acked: Acked) {
    let mut client = TestClient::connect(addr);
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let queue = queue_id.to_string();
    for i in 0..1_000_000u64 {
        let body = format!("q{queue_id}-m{i}");
        let command = request(
            request_code::SEND_MESSAGE_V2,
            &[
                ("a", "PG"),
                ("b", TOPIC),
                ("c", "TBW102"),
                ("d", "4"),
                ("e", &queue),
                ("f", "0"),
                ("g", "1700000000000"),
                ("h", "0"),
            ],
        )
        .with_body(Bytes::from(body.clone()));
        let opaque = client.send(command, ringmq_protocol::header::SerializeType::Json);
        let Some(response) = client.receive() else {
            return; // the broker died: this send is not acknowledged
        };
        assert_eq!(response.opaque, opaque);
        if response.code != response_code::SUCCESS {
            return;
        }
        let offset: i64 = response.ext("queueOffset").unwrap().parse().unwrap();
        acked.lock().unwrap().insert((queue_id, offset), body);
    }
}

fn pull_all(client: &mut TestClient, queue_id: i32) -> BTreeMap<(i32, i64), String> {
    let mut found = BTreeMap::new();
    let mut offset = 0i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let response = client.call(request(
            request_code::PULL_MESSAGE,
            &[
                ("consumerGroup", "CHECK"),
                ("topic", TOPIC),
                ("queueId", &queue_id.to_string()),
                ("queueOffset", &offset.to_string()),
                ("maxMsgNums", "32"),
                ("sysFlag", "4"),
                ("commitOffset", "0"),
                ("suspendTimeoutMillis", "0"),
                ("subscription", "*"),
                ("subVersion", "0"),
            ],
        ));
        if response.code != response_code::SUCCESS {
            assert_eq!(
                response.code,
                response_code::PULL_NOT_FOUND,
                "{:?}",
                response.remark
            );
            return found;
        }
        for record in iter_records(&response.body) {
            let record = record.unwrap();
            assert!(record.body_crc_matches());
            found.insert(
                (queue_id, record.queue_offset),
                String::from_utf8(record.body.to_vec()).unwrap(),
            );
        }
        offset = response.ext("nextBeginOffset").unwrap().parse().unwrap();
    }
    panic!("pulling queue {queue_id} did not finish within 60 s");
}

fn acknowledged_sends_survive_kill9(flush: &str) {
    let flags = ["--flush", flush, "--shards", "2"];
    let broker = Broker::start(&flags);
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|queue_id| {
            let acked = Arc::clone(&acked);
            let addr = broker.broker_addr;
            std::thread::spawn(move || send_until_refused(addr, queue_id, acked))
        })
        .collect();
    // Kill at a "random" moment between 300 and 1,000 ms into the stream.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_millis(300 + u64::from(nanos % 700)));
    let store = broker.kill9();
    for sender in senders {
        sender.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );

    let broker = Broker::start_on_store(store, &flags);
    let mut client = broker.connect();
    let mut stored = BTreeMap::new();
    for queue_id in 0..SENDERS {
        stored.extend(pull_all(&mut client, queue_id));
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|(key, body)| stored.get(key) != Some(body))
        .map(|(key, _)| *key)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost or changed after kill -9 ({flush} flush), first: {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
    eprintln!(
        "{flush} flush: {} acknowledged, {} stored after restart",
        acked.len(),
        stored.len()
    );
}

#[test]
fn acknowledged_sends_survive_kill9_with_sync_flush() {
    acknowledged_sends_survive_kill9("sync");
}

#[test]
fn acknowledged_sends_survive_kill9_with_async_flush() {
    acknowledged_sends_survive_kill9("async");
}
