//! Delayed and timed messages, and retries with back-off, against a real broker (issue 15):
//! a message with a delay level stays invisible on its topic until due, also when the broker
//! is killed in the middle of the delay; 10,000 timed messages with random due times are each
//! delivered once, close to their due time; a listener that always fails gets the message
//! back after growing delays until it lands in the group's dead-letter queue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringmq_client::{
    Admin, ConsumeFrom, ConsumeStatus, Message, MessageExt, MessageQueue, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig, QueuePuller, Subscription,
};

/// Level n waits n × 500 ms: short enough for a test, long enough to see "not yet".
const TEST_LEVELS: &str = "500ms 1s 1500ms 2s 2500ms 3s 3500ms 4s";

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// (body, wall ms when the listener saw it, reconsume count, store timestamp) in arrival
/// order.
type Received = Arc<Mutex<Vec<(String, i64, i32, i64)>>>;

/// A started push consumer of `group` on `topic` (from its first offset) whose listener
/// records what it sees and answers `status`.
async fn start_group(
    ns: &str,
    group: &str,
    topic: &str,
    status: ConsumeStatus,
    max_reconsume_times: i32,
) -> (PushConsumer, Received) {
    let received: Received = Arc::default();
    let seen_by_listener = Arc::clone(&received);
    let mut config = PushConsumerConfig::new(ns, group);
    config.consume_from = ConsumeFrom::FirstOffset;
    config.client.heartbeat_interval = Duration::from_secs(1);
    config.rebalance_interval = Duration::from_secs(1);
    config.max_reconsume_times = max_reconsume_times;
    let consumer = PushConsumer::new(config, move |msgs: &[MessageExt]| {
        let now = wall_ms();
        let mut seen = seen_by_listener.lock().unwrap();
        for m in msgs {
            seen.push((
                String::from_utf8_lossy(&m.body).into_owned(),
                now,
                m.reconsume_times,
                m.store_timestamp,
            ));
        }
        status
    });
    consumer.subscribe(topic, "*").unwrap();
    consumer.start().await.unwrap();
    (consumer, received)
}

/// The broker's name server address, and an admin client once `topic` (with `queues`
/// queues) is routed.
async fn routed_topic(broker: &support::Broker, topic: &str, queues: i32) -> (String, Admin) {
    let ns = broker.namesrv_addr.unwrap().to_string();
    let admin = Admin::connect(&ns);
    support::create_routed_topic(&admin, topic, queues).await;
    (ns, admin)
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

async fn queue_max_offset(admin: &Admin, topic: &str, queue_id: i32) -> i64 {
    let queues = admin.topic_queues(topic).await.unwrap();
    let mq: &MessageQueue = queues.iter().find(|q| q.queue_id == queue_id).unwrap();
    admin.max_offset(mq).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_is_invisible_until_due_also_across_a_crash() {
    let broker = support::start_broker(&["--message-delay-level", TEST_LEVELS]);
    let (ns, admin) = routed_topic(&broker, "DelayTopic", 1).await;
    let producer = Producer::start(ProducerConfig::new(&ns, "delay_producer"))
        .await
        .unwrap();

    // Level 2 (1 s): not on its topic at 0.5 s, there by 1 s + a margin.
    let sent_at = wall_ms();
    producer
        .send(Message::new("DelayTopic", &b"level-2"[..]).with_delay_level(2))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        queue_max_offset(&admin, "DelayTopic", 0).await,
        0,
        "visible early"
    );
    let (group, received) =
        start_group(&ns, "delay_group", "DelayTopic", ConsumeStatus::Success, 16).await;
    assert!(
        wait_until(Duration::from_secs(10), || !received
            .lock()
            .unwrap()
            .is_empty())
        .await
    );
    let (body, at, _, _) = received.lock().unwrap()[0].clone();
    assert_eq!(body, "level-2");
    let after_ms = at - sent_at;
    assert!(
        (1000..3000).contains(&after_ms),
        "delivered {after_ms} ms after the send"
    );
    ringmq_testkit::report(&format!(
        "delay level 2 (1 s): consumed {after_ms} ms after the send"
    ));
    group.shutdown().await;

    // Level 6 (3 s) and level 1 (0.5 s), then kill -9 at 1 s: the first is due after the
    // restart, the second came due before the kill; each is delivered once. (Read before
    // the send: the broker's clock starts the delay between the two.)
    let parked_at = wall_ms();
    producer
        .send(Message::new("DelayTopic", &b"level-6"[..]).with_delay_level(6))
        .await
        .unwrap();
    producer
        .send(Message::new("DelayTopic", &b"level-1"[..]).with_delay_level(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    producer.shutdown().await;
    admin.shutdown().await;
    let store = broker.kill9();
    let broker = support::Broker::start_on_store(store, &["--message-delay-level", TEST_LEVELS]);
    let (ns, admin) = routed_topic(&broker, "DelayTopic", 1).await;
    let before_due = queue_max_offset(&admin, "DelayTopic", 0).await;
    assert!(
        wall_ms() < parked_at + 3000,
        "the restart took too long to test 'not yet'"
    );
    assert_eq!(
        before_due, 2,
        "level-2 and level-1 only, before level-6 is due"
    );
    let (group, received) = start_group(
        &ns,
        "delay_group_2",
        "DelayTopic",
        ConsumeStatus::Success,
        16,
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(15), || received.lock().unwrap().len()
            >= 3)
        .await
    );
    // Anything delivered twice would show within another second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = received.lock().unwrap().clone();
    let mut bodies: Vec<&str> = seen.iter().map(|(b, _, _, _)| b.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["level-1", "level-2", "level-6"], "{seen:?}");
    let level_6_at = seen.iter().find(|(b, _, _, _)| b == "level-6").unwrap().1;
    assert!(
        level_6_at >= parked_at + 3000,
        "level-6 came {} ms early",
        parked_at + 3000 - level_6_at
    );
    ringmq_testkit::report(&format!(
        "delay across kill -9: level 6 (3 s) consumed {} ms after its send",
        level_6_at - parked_at
    ));
    group.shutdown().await;
    admin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_timed_messages_are_each_delivered_once_on_time() {
    const COUNT: usize = 10_000;
    const SPREAD_MS: i64 = 8_000;
    let broker = support::start_broker(&[]);
    let (ns, admin) = routed_topic(&broker, "TimedTopic", 4).await;
    let (group, received) =
        start_group(&ns, "timed_group", "TimedTopic", ConsumeStatus::Success, 16).await;
    let producer = Arc::new(
        Producer::start(ProducerConfig::new(&ns, "timed_producer"))
            .await
            .unwrap(),
    );
    // Due times spread over SPREAD_MS from 2 s after the start, in random order (a fixed
    // seed: the same run every time).
    let start_ms = wall_ms() + 2_000;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut due_by_index = Vec::with_capacity(COUNT);
    for _ in 0..COUNT {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        due_by_index.push(start_ms + (seed % SPREAD_MS as u64) as i64);
    }
    let due_by_index = Arc::new(due_by_index);
    let senders: Vec<_> = (0..8)
        .map(|lane| {
            let producer = Arc::clone(&producer);
            let due_by_index = Arc::clone(&due_by_index);
            tokio::spawn(async move {
                for index in (lane..COUNT).step_by(8) {
                    let msg = Message::new("TimedTopic", format!("{index}").into_bytes())
                        .with_property("TIMER_DELIVER_MS", due_by_index[index].to_string());
                    producer.send(msg).await.unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let sent_by_ms = wall_ms();
    assert!(
        wait_until(Duration::from_millis((SPREAD_MS + 20_000) as u64), || {
            received.lock().unwrap().len() >= COUNT
        })
        .await,
        "{} of {COUNT} delivered",
        received.lock().unwrap().len()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    group.shutdown().await;
    producer.shutdown().await;

    let seen = received.lock().unwrap().clone();
    let mut times: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    let mut stored_at: BTreeMap<usize, i64> = BTreeMap::new();
    for (body, at, _, store_timestamp) in &seen {
        times.entry(body.parse().unwrap()).or_default().push(*at);
        stored_at.insert(body.parse().unwrap(), *store_timestamp);
    }
    assert_eq!(times.len(), COUNT, "every message delivered");
    let twice: Vec<_> = times.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    // Lateness of those due after the last send (earlier ones waited for their send).
    let mut lateness_ms: Vec<i64> = times
        .iter()
        .filter(|(index, _)| due_by_index[**index] > sent_by_ms)
        .map(|(index, at)| at[0] - due_by_index[*index])
        .collect();
    lateness_ms.sort_unstable();
    let early: Vec<_> = lateness_ms.iter().filter(|&&l| l < 0).collect();
    assert!(early.is_empty(), "delivered before due: {early:?}");
    let pick = |sorted: &[i64], q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    let (p50, p99, max) = (
        pick(&lateness_ms, 0.5),
        pick(&lateness_ms, 0.99),
        *lateness_ms.last().unwrap(),
    );
    // The broker's part: stored on the real topic (store timestamp) minus due.
    let mut stored_lateness_ms: Vec<i64> = stored_at
        .iter()
        .filter(|(index, _)| due_by_index[**index] > sent_by_ms)
        .map(|(index, at)| at - due_by_index[*index])
        .collect();
    stored_lateness_ms.sort_unstable();
    ringmq_testkit::report(&format!(
        "timed messages: {} of {COUNT} due after the last send; consumed late by p50 {p50} ms, p99 {p99} ms, max {max} ms; stored on their topic late by p50 {} ms, p99 {} ms, max {} ms",
        lateness_ms.len(),
        pick(&stored_lateness_ms, 0.5),
        pick(&stored_lateness_ms, 0.99),
        stored_lateness_ms.last().unwrap(),
    ));
    assert!(
        lateness_ms.len() > COUNT / 4,
        "too few due after the sends to judge"
    );
    // The goal is 100 ms (met on release builds: docs/decisions.md; this debug build
    // measured p99 13-25 ms alone); here the test's own debug client and the other tests of
    // this file share the 2 cores, so the bound has slack. Once, with another tenant on the
    // cores (the 10,000 sends took 3.4 s instead of under 2), p99 was 260 ms: the bound is
    // 500 ms, which still fails a schedule that is late by its own fault (a missed wake-up
    // waits for the schedule's longest sleep, 1 s).
    assert!(p99 <= 500, "p99 lateness {p99} ms");
    admin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_messages_survive_a_kill_in_the_middle_and_few_come_twice() {
    const COUNT: usize = 2_000;
    let broker = support::start_broker(&[]);
    let (ns, admin) = routed_topic(&broker, "KillTimed", 4).await;
    let producer = Arc::new(
        Producer::start(ProducerConfig::new(&ns, "kill_timed_producer"))
            .await
            .unwrap(),
    );
    // Due 1 to 4 s from now: copies are being parked again and delivered at the kill.
    let start_ms = wall_ms() + 1_000;
    let senders: Vec<_> = (0..4)
        .map(|lane| {
            let producer = Arc::clone(&producer);
            tokio::spawn(async move {
                for index in (lane..COUNT).step_by(4) {
                    let due = start_ms + (index as i64 * 7_919) % 3_000;
                    let msg = Message::new("KillTimed", format!("{index}").into_bytes())
                        .with_property("TIMER_DELIVER_MS", due.to_string());
                    producer.send(msg).await.unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    producer.shutdown().await;
    admin.shutdown().await;
    let wait_ms = (start_ms + 1_500 - wall_ms()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    let store = broker.kill9();
    let broker = support::Broker::start_on_store(store, &[]);
    let (ns, admin) = routed_topic(&broker, "KillTimed", 4).await;
    let (group, received) = start_group(
        &ns,
        "kill_timed_group",
        "KillTimed",
        ConsumeStatus::Success,
        16,
    )
    .await;
    let unique = |received: &Received| {
        received
            .lock()
            .unwrap()
            .iter()
            .map(|(body, _, _, _)| body.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert!(
        wait_until(Duration::from_secs(30), || unique(&received) >= COUNT).await,
        "{} of {COUNT} delivered after the restart",
        unique(&received)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    group.shutdown().await;
    admin.shutdown().await;
    let total = received.lock().unwrap().len();
    let twice = total - COUNT;
    ringmq_testkit::report(&format!(
        "timed messages across kill -9: {COUNT} of {COUNT} delivered, {twice} delivered twice"
    ));
    // A crash repeats the turn it interrupted, nothing else (a turn hands over at most a
    // few hundred copies); before turns recorded their progress it was ~10%.
    assert!(twice <= COUNT / 20, "{twice} delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_listener_gets_growing_delays_then_the_dead_letter_queue() {
    // Send-back uses level 3 + reconsume count: 300, 400, 500 ms here.
    let levels = "100ms 200ms 300ms 400ms 500ms 600ms 700ms 800ms";
    let broker = support::start_broker(&["--message-delay-level", levels]);
    let (ns, admin) = routed_topic(&broker, "FailTopic", 1).await;
    let (group, received) = start_group(
        &ns,
        "fail_group",
        "FailTopic",
        ConsumeStatus::ReconsumeLater,
        3,
    )
    .await;
    let producer = Producer::start(ProducerConfig::new(&ns, "fail_producer"))
        .await
        .unwrap();
    producer
        .send(Message::new("FailTopic", &b"always-fails"[..]))
        .await
        .unwrap();
    // Delivered 1 + 3 times, then in %DLQ%fail_group.
    assert!(
        wait_until(Duration::from_secs(20), || received.lock().unwrap().len()
            >= 4)
        .await
    );
    let dlq = MessageQueue {
        topic: "%DLQ%fail_group".to_owned(),
        broker_name: broker_name(&admin).await,
        queue_id: 0,
    };
    assert!(
        wait_until_async(Duration::from_secs(10), || async {
            admin.max_offset(&dlq).await.unwrap_or(0) == 1
        })
        .await,
        "the message reached the DLQ"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    group.shutdown().await;
    let seen = received.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let counts: Vec<i32> = seen.iter().map(|(_, _, r, _)| *r).collect();
    assert_eq!(counts, [0, 1, 2, 3]);
    let gaps: Vec<i64> = seen.windows(2).map(|w| w[1].1 - w[0].1).collect();
    ringmq_testkit::report(&format!(
        "retry gaps (levels 3, 4, 5 = 300, 400, 500 ms): {gaps:?} ms"
    ));
    for (gap, level_ms) in gaps.iter().zip([300, 400, 500]) {
        assert!(
            *gap >= level_ms,
            "gap {gap} ms shorter than its level's {level_ms} ms"
        );
        assert!(
            *gap < level_ms + 2_000,
            "gap {gap} ms far longer than {level_ms} ms"
        );
    }
    let dead = first_message(&admin, &dlq).await;
    assert_eq!(&dead.body[..], b"always-fails");
    assert_eq!(dead.property("RETRY_TOPIC"), Some("FailTopic"));
    assert_eq!(dead.property("DLQ_ORIGIN_TOPIC"), Some("FailTopic"));
    assert!(dead.property("ORIGIN_MESSAGE_ID").is_some());
    assert_eq!(dead.reconsume_times, 4);
    producer.shutdown().await;
    admin.shutdown().await;

    // The admin CLI lists the dead letter and sends it back to its topic.
    let listed = cli(
        &ns,
        &["--json", "dlq", "list", "fail_group", "--wait-ms", "300"],
    );
    assert!(
        listed.contains("\"original_topic\": \"FailTopic\"") && listed.contains("always-fails"),
        "{listed}"
    );
    let resent = cli(
        &ns,
        &["--json", "dlq", "resend", "fail_group", "--wait-ms", "300"],
    );
    assert!(resent.contains("\"topic\": \"FailTopic\""), "{resent}");
    let consumed = cli(
        &ns,
        &[
            "--json",
            "consume",
            "FailTopic",
            "--from",
            "first",
            "--wait-ms",
            "500",
        ],
    );
    assert_eq!(
        consumed.matches("always-fails").count(),
        2,
        "the original and the copy: {consumed}"
    );
}

/// Runs the `ringmq` admin CLI (built beside the server by `cargo test --workspace`) and
/// returns its stdout; it must succeed.
fn cli(ns: &str, args: &[&str]) -> String {
    let binary = ringmq_testkit::server_binary().with_file_name("ringmq");
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build -p ringmq-tools`",
        binary.display()
    );
    let out = std::process::Command::new(&binary)
        .args(["--namesrv", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ringmq {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn broker_name(admin: &Admin) -> String {
    admin.topic_route("FailTopic").await.unwrap().broker_datas[0]
        .broker_name
        .clone()
}

async fn wait_until_async<F, Fut>(limit: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The queue's first message, pulled.
async fn first_message(admin: &Admin, mq: &MessageQueue) -> MessageExt {
    let mut puller = QueuePuller::new(
        Arc::clone(admin.core()),
        "dlq_reader",
        mq.clone(),
        Subscription::new(&mq.topic, "*"),
        0,
    );
    for _ in 0..10 {
        if let Some(first) = puller.next_batch().await.unwrap().messages().first() {
            return first.clone();
        }
    }
    panic!("nothing to pull from {mq:?}");
}
