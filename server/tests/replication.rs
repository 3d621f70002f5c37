//! Master/slave replication between two real broker processes (issue 13): the slave copies
//! every shard's log byte for byte, builds the same queues, serves pulls and refuses sends,
//! resumes from its own tail after a restart, and a slave whose log is not the master's is
//! refused and stops with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ringmq_protocol::codes::{request_code, response_code};
use ringmq_protocol::message::record::iter_records;
use support::{pull_request, request, send_request, Broker, TestClient};

const TOPIC: &str = "ReplicatedTopic";
const SEGMENT: &str = "65536";

fn master() -> Broker {
    Broker::start(&[
        "--shards",
        "2",
        "--segment-size",
        SEGMENT,
        "--broker-name",
        "rep",
    ])
}

fn slave_args(master: &Broker) -> Vec<String> {
    let mut args: Vec<String> = [
        "--shards",
        "2",
        "--segment-size",
        SEGMENT,
        "--broker-name",
        "rep",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(master.slave_flags());
    args
}

fn start_slave(master: &Broker, store: Option<tempfile::TempDir>) -> Broker {
    let args = slave_args(master);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match store {
        Some(store) => Broker::start_on_store(store, &args),
        None => Broker::start(&args),
    }
}

fn send_many(client: &mut TestClient, from: usize, count: usize) {
    for i in from..from + count {
        let body = format!("message-{i:05}-{}", "x".repeat(i % 300));
        let response = client.call(send_request(TOPIC, (i % 4) as i32, "", body.as_bytes()));
        assert_eq!(
            response.code,
            response_code::SUCCESS,
            "{:?}",
            response.remark
        );
    }
}

fn max_offset(client: &mut TestClient, queue_id: i32) -> Option<i64> {
    let response = client.call(request(
        request_code::GET_MAX_OFFSET,
        &[("topic", TOPIC), ("queueId", &queue_id.to_string())],
    ));
    (response.code == response_code::SUCCESS)
        .then(|| response.ext("offset").and_then(|o| o.parse().ok()))
        .flatten()
}

/// Waits (bounded) until the slave's queues end where the master's do.
fn wait_caught_up(master: &mut TestClient, slave: &mut TestClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let caught_up = (0..4).all(|q| {
            let m = max_offset(master, q);
            m.is_some() && max_offset(slave, q) == m
        });
        if caught_up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the slave did not catch up within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every message body of the topic's 4 queues, by (queue, offset).
fn pull_all(client: &mut TestClient) -> BTreeMap<(i32, i64), Vec<u8>> {
    let mut out = BTreeMap::new();
    for queue_id in 0..4 {
        let mut offset = 0;
        for _ in 0..1000 {
            let response = client.call(pull_request("RepGroup", TOPIC, queue_id, offset, 0));
            if response.code != response_code::SUCCESS {
                break;
            }
            for record in iter_records(&response.body) {
                let record = record.unwrap();
                out.insert((queue_id, record.queue_offset), record.body.to_vec());
            }
            offset = response.ext("nextBeginOffset").unwrap().parse().unwrap();
        }
    }
    out
}

/// The data-holding segments of each shard's log, by shard and name.
fn logs(store: &Path) -> BTreeMap<(String, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    for shard in ["0", "1"] {
        let dir = store.join("commitlog").join(shard);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.len() != 20 {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            if bytes.iter().any(|&b| b != 0) {
                out.insert((shard.to_owned(), name), bytes);
            }
        }
    }
    out
}

/// The value of `key=` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Per shard, the log offsets the master logged for `event` ("slave connected" with
/// `from`, "slave disconnected" with `acked`), in order.
fn logged_offsets(log: &str, event: &str, key: &str) -> BTreeMap<u64, Vec<u64>> {
    let mut out: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains(event)) {
        if let (Some(shard), Some(offset)) = (field(line, "shard"), field(line, key)) {
            out.entry(shard).or_default().push(offset);
        }
    }
    out
}

#[test]
fn a_slave_copies_every_shard_log_serves_pulls_and_resumes_from_its_tail() {
    let log_dir = tempfile::tempdir().unwrap();
    let master_log = log_dir.path().join("master.log");
    let master = Broker::start_logging_to(
        &master_log,
        &[
            "--shards",
            "2",
            "--segment-size",
            SEGMENT,
            "--broker-name",
            "rep",
        ],
    );
    let mut to_master = master.connect();
    // Sent before the slave exists: it copies them from the start.
    send_many(&mut to_master, 0, 200);
    let slave = start_slave(&master, None);
    let mut to_slave = slave.connect();
    send_many(&mut to_master, 200, 200);
    wait_caught_up(&mut to_master, &mut to_slave);
    let from_master = pull_all(&mut to_master);
    assert_eq!(from_master.len(), 400);
    assert_eq!(
        pull_all(&mut to_slave),
        from_master,
        "the slave serves the same messages"
    );

    let refused = to_slave.call(send_request(TOPIC, 0, "", b"to the slave"));
    assert_eq!(refused.code, response_code::SERVICE_NOT_AVAILABLE);
    assert!(
        refused.remark.unwrap_or_default().contains("slave"),
        "the refusal says why"
    );

    // Restart the slave on its store while the master takes more.
    drop(to_slave);
    let (_, slave_store) = slave.terminate();
    send_many(&mut to_master, 400, 100);
    let slave = start_slave(&master, Some(slave_store));
    let mut to_slave = slave.connect();
    wait_caught_up(&mut to_master, &mut to_slave);
    assert_eq!(pull_all(&mut to_slave), pull_all(&mut to_master));

    // Each shard's link resumed exactly where the stopped slave's log ended: only the new
    // bytes crossed the wire.
    let log = std::fs::read_to_string(&master_log).unwrap();
    let connected = logged_offsets(&log, "slave connected", "from");
    let disconnected = logged_offsets(&log, "slave disconnected", "acked");
    for shard in [0, 1] {
        let (Some(from), Some(acked)) = (connected.get(&shard), disconnected.get(&shard)) else {
            panic!("no connect/disconnect lines for shard {shard} in:\n{log}");
        };
        assert_eq!(from.len(), 2, "shard {shard}: two connections: {from:?}");
        assert_eq!(from[0], 0, "the first copy starts at the beginning");
        assert!(acked[0] > 0, "shard {shard} copied nothing");
        assert_eq!(
            from[1], acked[0],
            "shard {shard}: the restarted slave resumes where its log ended"
        );
    }

    // Byte for byte, shard by shard (flushed by a clean stop of both).
    drop((to_master, to_slave));
    let (_, slave_store) = slave.terminate();
    let (_, master_store) = master.terminate();
    let (m, s) = (logs(master_store.path()), logs(slave_store.path()));
    assert!(!m.is_empty());
    assert_eq!(m.keys().collect::<Vec<_>>(), s.keys().collect::<Vec<_>>());
    for (key, bytes) in &m {
        assert!(s[key] == *bytes, "segment {key:?} differs");
    }
}

#[test]
fn a_slave_whose_log_is_not_the_masters_is_refused_and_stops() {
    let master = master();
    let mut to_master = master.connect();
    send_many(&mut to_master, 0, 20);
    // Another broker's store, with messages of its own.
    let other = Broker::start(&["--shards", "2", "--segment-size", SEGMENT]);
    let mut to_other = other.connect();
    send_many(&mut to_other, 1000, 50);
    drop(to_other);
    let (_, other_store) = other.terminate();
    let mut slave = start_slave(&master, Some(other_store));
    let deadline = Instant::now() + Duration::from_secs(20);
    while slave.is_running() {
        assert!(
            Instant::now() < deadline,
            "a diverged slave kept running instead of stopping"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = slave.terminate();
    assert!(
        !status.success(),
        "it stops with a failure status: {status:?}"
    );
}

fn commit(client: &mut TestClient, queue_id: i32, offset: i64) {
    let response = client.call(request(
        request_code::UPDATE_CONSUMER_OFFSET,
        &[
            ("consumerGroup", "HandBackGroup"),
            ("topic", TOPIC),
            ("queueId", &queue_id.to_string()),
            ("commitOffset", &offset.to_string()),
        ],
    ));
    assert_eq!(
        response.code,
        response_code::SUCCESS,
        "{:?}",
        response.remark
    );
}

fn committed(client: &mut TestClient, queue_id: i32) -> Option<i64> {
    let response = client.call(request(
        request_code::QUERY_CONSUMER_OFFSET,
        &[
            ("consumerGroup", "HandBackGroup"),
            ("topic", TOPIC),
            ("queueId", &queue_id.to_string()),
        ],
    ));
    (response.code == response_code::SUCCESS)
        .then(|| response.ext("offset").and_then(|o| o.parse().ok()))
        .flatten()
}

/// Waits (bounded) until `client` reports these committed offsets, queue by queue.
fn wait_offsets(client: &mut TestClient, want: &[(i32, i64)], who: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now: Vec<(i32, Option<i64>)> = want
            .iter()
            .map(|&(q, _)| (q, committed(client, q)))
            .collect();
        if now
            .iter()
            .zip(want)
            .all(|((_, got), (_, w))| *got == Some(*w))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} has offsets {now:?}, expected {want:?} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn offsets_committed_to_the_slave_while_the_master_is_away_are_handed_back_higher_wins() {
    let port = ringmq_testkit::free_port_pair().to_string();
    let listen = format!("127.0.0.1:{port}");
    let master_args = [
        "--shards",
        "2",
        "--segment-size",
        SEGMENT,
        "--broker-name",
        "rep",
        "--listen",
        &listen,
    ];
    let master = Broker::start(&master_args);
    let slave = start_slave(&master, None);
    let mut to_master = master.connect();
    let mut to_slave = slave.connect();
    send_many(&mut to_master, 0, 40);
    wait_caught_up(&mut to_master, &mut to_slave);
    commit(&mut to_master, 0, 3);
    commit(&mut to_master, 2, 9);
    wait_offsets(&mut to_slave, &[(0, 3), (2, 9)], "the slave");
    // Subscription groups come along with the offsets.
    let group = ringmq_protocol::body::SubscriptionGroupConfig {
        retry_max_times: 3,
        ..ringmq_protocol::body::SubscriptionGroupConfig::new("CopiedGroup")
    };
    let created = to_master.call(
        request(request_code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, &[])
            .with_body(ringmq_protocol::body::JsonBody::encode(&group).unwrap()),
    );
    assert_eq!(created.code, response_code::SUCCESS, "{:?}", created.remark);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table = to_slave.call(request(request_code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG, &[]));
        let table: ringmq_protocol::body::SubscriptionGroupWrapper =
            ringmq_protocol::body::JsonBody::decode(&table.body).unwrap();
        if table.subscription_group_table.get("CopiedGroup") == Some(&group) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slave never copied the group"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The master goes away; consumers commit to the slave.
    drop(to_master);
    let (_, master_store) = master.terminate();
    commit(&mut to_slave, 0, 7);
    commit(&mut to_slave, 1, 2);
    commit(&mut to_slave, 2, 4);

    // Back on the same address: it gets the slave's progress where it is ahead, keeps its
    // own where the slave's is behind, and the slave takes the master's higher one.
    let master = Broker::start_on_store(master_store, &master_args);
    let mut to_master = master.connect();
    wait_offsets(&mut to_master, &[(0, 7), (1, 2), (2, 9)], "the master");
    wait_offsets(&mut to_slave, &[(0, 7), (1, 2), (2, 9)], "the slave");
}
