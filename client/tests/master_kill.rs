//! kill -9 of a SYNC_MASTER under load (issue 13), with ringmq-client: every message the
//! master acknowledged is read from the slave, by a consumer that was running before the
//! kill and by a new group started after it; the master restarted on its store takes its
//! slave back (replication resumes) and gets the offsets consumers committed to the slave.
//! A separate name server outlives the master, as in production.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_client::{
    ConsumeFrom, ConsumeStatus, Message, MessageExt, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig, SendStatus,
};
use ringmq_testkit::{free_port_pair, request, Broker, NameServer, TestClient};

const TOPIC: &str = "KillTopic";
const QUEUES: i32 = 4;
const BROKER_NAME: &str = "killed";

/// What a consumer received: body → arrival times (more than one is a duplicate).
#[derive(Default)]
struct Inbox {
    arrivals: Mutex<BTreeMap<String, Vec<Instant>>>,
}

impl Inbox {
    fn bodies(&self) -> BTreeSet<String> {
        self.arrivals.lock().unwrap().keys().cloned().collect()
    }

    fn duplicates(&self) -> usize {
        let arrivals = self.arrivals.lock().unwrap();
        arrivals.values().map(|a| a.len() - 1).sum()
    }

    /// The longest time without a new message between `from` and the last arrival: what a
    /// consumer with a backlog sees of the kill.
    fn longest_gap_after(&self, from: Instant) -> Duration {
        let arrivals = self.arrivals.lock().unwrap();
        let mut times: Vec<Instant> = arrivals.values().flatten().copied().collect();
        times.sort();
        let mut gap = Duration::ZERO;
        let mut last = from;
        for t in times.into_iter().filter(|t| *t >= from) {
            gap = gap.max(t - last);
            last = t;
        }
        gap
    }

    /// The latest first arrival among `bodies`: when the last of them was first seen.
    fn last_first_arrival(&self, bodies: &BTreeSet<String>) -> Option<Instant> {
        let arrivals = self.arrivals.lock().unwrap();
        bodies
            .iter()
            .filter_map(|b| arrivals.get(b).and_then(|a| a.first().copied()))
            .max()
    }
}

/// A push consumer from the first offset; `per_message` of work per message (a slow consumer
/// has a backlog when the master dies).
async fn consumer(
    namesrv: &str,
    group: &str,
    inbox: Arc<Inbox>,
    per_message: Duration,
) -> PushConsumer {
    let mut config = PushConsumerConfig::new(namesrv, group);
    config.consume_from = ConsumeFrom::FirstOffset;
    config.client.route_refresh_interval = Duration::from_secs(1);
    config.client.heartbeat_interval = Duration::from_secs(1);
    config.persist_interval = Duration::from_secs(1);
    config.rebalance_interval = Duration::from_secs(2);
    config.suspend_timeout = Duration::from_secs(2);
    config.pull_timeout = Duration::from_secs(5);
    config.consume_threads = 1;
    let consumer = PushConsumer::new(config, move |msgs: &[MessageExt]| {
        for m in msgs {
            std::thread::sleep(per_message);
            let body = String::from_utf8_lossy(&m.body).into_owned();
            let mut arrivals = inbox.arrivals.lock().unwrap();
            arrivals.entry(body).or_default().push(Instant::now());
        }
        ConsumeStatus::Success
    });
    consumer.subscribe(TOPIC, "*").unwrap();
    consumer.start().await.unwrap();
    consumer
}

fn seconds_after(at: Option<Instant>, since: Instant) -> f64 {
    at.map_or(f64::NAN, |t| {
        t.saturating_duration_since(since).as_secs_f64()
    })
}

/// Waits (bounded) until `inbox` holds every body of `want`.
async fn wait_all(inbox: &Inbox, want: &BTreeSet<String>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if inbox.bodies().is_superset(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn offset_request(client: &mut TestClient, code: i32, fields: &[(&str, &str)]) -> Option<i64> {
    let response = client.call(request(code, fields));
    (response.code == 0)
        .then(|| response.ext("offset").and_then(|o| o.parse().ok()))
        .flatten()
}

fn max_offsets(client: &mut TestClient) -> Vec<Option<i64>> {
    (0..QUEUES)
        .map(|q| {
            offset_request(
                client,
                ringmq_client::protocol::codes::request_code::GET_MAX_OFFSET,
                &[("topic", TOPIC), ("queueId", &q.to_string())],
            )
        })
        .collect()
}

fn committed(client: &mut TestClient, group: &str) -> Vec<Option<i64>> {
    (0..QUEUES)
        .map(|q| {
            offset_request(
                client,
                ringmq_client::protocol::codes::request_code::QUERY_CONSUMER_OFFSET,
                &[
                    ("consumerGroup", group),
                    ("topic", TOPIC),
                    ("queueId", &q.to_string()),
                ],
            )
        })
        .collect()
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sync_master_is_killed_every_acknowledged_message_is_read_from_the_slave() {
    let namesrv = NameServer::start();
    let ns = namesrv.addr.to_string();
    let listen = format!("127.0.0.1:{}", free_port_pair());
    let master_args = [
        "--namesrv",
        &ns,
        "--listen",
        &listen,
        "--broker-name",
        BROKER_NAME,
        "--replication",
        "sync",
        "--shards",
        "2",
    ];
    let master = Broker::start(&master_args);
    let master_addr = master.broker_addr.to_string();
    let slave = Broker::start(&[
        "--namesrv",
        &ns,
        "--broker-name",
        BROKER_NAME,
        "--role",
        "slave",
        "--broker-id",
        "1",
        "--master",
        &master_addr,
        "--shards",
        "2",
    ]);
    namesrv.wait_registered(master.broker_addr);
    namesrv.wait_registered(slave.broker_addr);
    let mut admin = master.connect();
    let created = admin.call(request(
        ringmq_client::protocol::codes::request_code::UPDATE_AND_CREATE_TOPIC,
        &[
            ("topic", TOPIC),
            ("readQueueNums", &QUEUES.to_string()),
            ("writeQueueNums", &QUEUES.to_string()),
            ("perm", "6"),
            ("topicFilterType", "SINGLE_TAG"),
            ("defaultTopic", "TBW102"),
            ("order", "false"),
        ],
    ));
    assert_eq!(created.code, 0, "{:?}", created.remark);
    // The slave serves the topic once it copied the master's table (every 3 s).
    let mut to_slave = slave.connect();
    assert!(
        eventually(Duration::from_secs(20), || max_offsets(&mut to_slave)
            .iter()
            .all(Option::is_some)),
        "the slave never took the topic"
    );

    let before = Arc::new(Inbox::default());
    // Slower than the producer: it still has a backlog when the master dies.
    let running = consumer(
        &ns,
        "kill_before",
        Arc::clone(&before),
        Duration::from_millis(2),
    )
    .await;

    let mut producer_config = ProducerConfig::new(&ns, "kill_producer");
    producer_config.client.route_refresh_interval = Duration::from_secs(1);
    producer_config.send_timeout = Duration::from_secs(3);
    producer_config.retry_times = 0;
    let producer = Producer::start(producer_config).await.unwrap();

    // Load, then the kill in the middle of it.
    let mut acked = BTreeSet::new();
    let mut refused = 0usize;
    let mut sent = 0usize;
    let load_until = Instant::now() + Duration::from_secs(2);
    let mut killed_at = None;
    let mut backlog_seen_at_kill = 0;
    let mut master_store = None;
    let mut master = Some(master);
    let stop_at = load_until + Duration::from_secs(2);
    while Instant::now() < stop_at && sent < 200_000 {
        if killed_at.is_none() && Instant::now() >= load_until {
            master_store = master.take().map(Broker::kill9);
            killed_at = Some(Instant::now());
            backlog_seen_at_kill = before.bodies().len();
        }
        let body = format!("kill-{sent:06}");
        sent += 1;
        match producer
            .send(Message::new(TOPIC, body.clone().into_bytes()))
            .await
        {
            Ok(result) if result.status == SendStatus::SendOk => {
                acked.insert(body);
            }
            _ => refused += 1,
        }
    }
    producer.shutdown().await;
    let killed_at = killed_at.expect("the master was killed");
    let backlog_at_kill = acked.len().saturating_sub(backlog_seen_at_kill);
    let master_store = master_store.expect("the master's store");
    assert!(
        acked.len() > 50,
        "too little load before the kill: {}",
        acked.len()
    );

    // A consumer that ran through the kill, and a group that starts after it.
    let after = Arc::new(Inbox::default());
    let started = consumer(&ns, "kill_after", Arc::clone(&after), Duration::ZERO).await;
    let limit = Duration::from_secs(60);
    let before_complete = wait_all(&before, &acked, limit).await;
    let after_complete = wait_all(&after, &acked, limit).await;
    let missing_before: Vec<_> = acked
        .difference(&before.bodies())
        .take(5)
        .cloned()
        .collect();
    let missing_after: Vec<_> = acked.difference(&after.bodies()).take(5).cloned().collect();
    eprintln!(
        "kill test: sent {sent}, acknowledged {}, refused or failed {refused}; running group \
         (backlog at the kill {backlog_at_kill}): all read {:.2} s after the kill, longest pause \
         {:.2} s, {} duplicates; new group: all read {:.2} s after the kill, {} duplicates",
        acked.len(),
        seconds_after(before.last_first_arrival(&acked), killed_at),
        before.longest_gap_after(killed_at).as_secs_f64(),
        before.duplicates(),
        seconds_after(after.last_first_arrival(&acked), killed_at),
        after.duplicates(),
    );
    assert!(
        before_complete,
        "the running group misses acknowledged messages, e.g. {missing_before:?}"
    );
    assert!(
        after_complete,
        "the new group misses acknowledged messages, e.g. {missing_after:?}"
    );

    // The master comes back on its store and address: the slave follows it again and the
    // running group's progress, committed to the slave meanwhile, reaches the master.
    let master = Broker::start_on_store(master_store, &master_args);
    let mut to_master = master.connect();
    assert!(
        eventually(Duration::from_secs(30), || max_offsets(&mut to_master)
            == max_offsets(&mut to_slave)),
        "the slave did not follow the restarted master: master {:?}, slave {:?}",
        max_offsets(&mut to_master),
        max_offsets(&mut to_slave)
    );
    let slave_offsets = committed(&mut to_slave, "kill_before");
    assert!(
        slave_offsets.iter().any(|o| o.is_some_and(|o| o > 0)),
        "the running group committed nothing to the slave: {slave_offsets:?}"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let master = committed(&mut to_master, "kill_before");
            master
                .iter()
                .zip(&slave_offsets)
                .all(|(m, s)| m.unwrap_or(-1) >= s.unwrap_or(-1))
        }),
        "the master's offsets {:?} stay behind the slave's {slave_offsets:?}",
        committed(&mut to_master, "kill_before")
    );
    running.shutdown().await;
    started.shutdown().await;
}
