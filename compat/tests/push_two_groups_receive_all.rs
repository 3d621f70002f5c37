//! rocketmq-client-rust's producer sends 10,000 messages to a topic that does not exist yet
//! (auto-created from TBW102); two push consumers in different groups each receive all of
//! them from the first offset.
#![recursion_limit = "512"]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use support::{
    bodies, describe_missing, message, send_all, start_producer, start_push_consumer, Broker,
    ClientEnv,
};

const MESSAGE_COUNT: usize = 10_000;
/// Sync sends in flight at once: well under the client's 512 pending requests.
const SEND_CONCURRENCY: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sends_are_received_in_full_by_two_groups() {
    let broker = Broker::start();
    let env = ClientEnv::new("two-groups");
    let topic = "CompatTenThousand";

    let producer = start_producer(&env, &broker, "compat_producer_10k").await;
    let messages = (0..MESSAGE_COUNT)
        .map(|i| message(topic, "TagA", &format!("key-{i}"), &format!("m-{i}")))
        .collect();
    let send_started = Instant::now();
    let results = send_all(&producer, messages, SEND_CONCURRENCY).await;
    let send_elapsed = send_started.elapsed();
    assert_eq!(results.len(), MESSAGE_COUNT);
    let queues_used: std::collections::BTreeSet<i32> = results
        .iter()
        .map(|r| {
            r.message_queue
                .as_ref()
                .expect("send result names its queue")
                .queue_id()
        })
        .collect();
    eprintln!(
        "sent {MESSAGE_COUNT} messages (all SEND_OK) in {send_elapsed:?} with {SEND_CONCURRENCY} \
         sync senders, queues {queues_used:?}"
    );

    // Both groups start after every message is stored: they must begin at the first offset.
    let consume_started = Instant::now();
    let (mut consumer_a, inbox_a) =
        start_push_consumer(&env, &broker, "compat_group_a", "compat-a", topic, "*").await;
    let (mut consumer_b, inbox_b) =
        start_push_consumer(&env, &broker, "compat_group_b", "compat-b", topic, "*").await;

    let want = bodies("m", MESSAGE_COUNT);
    let limit = Duration::from_secs(90);
    let a_done = inbox_a
        .wait_until(limit, |inbox| {
            inbox.distinct_bodies().len() >= MESSAGE_COUNT
        })
        .await;
    let a_elapsed = consume_started.elapsed();
    let b_done = inbox_b
        .wait_until(limit, |inbox| {
            inbox.distinct_bodies().len() >= MESSAGE_COUNT
        })
        .await;
    let b_elapsed = consume_started.elapsed();
    // Let late duplicates (redeliveries) show up before counting them.
    tokio::time::sleep(Duration::from_secs(1)).await;

    for (name, inbox, done, elapsed) in [
        ("A", &inbox_a, a_done, a_elapsed),
        ("B", &inbox_b, b_done, b_elapsed),
    ] {
        let duplicates = inbox.duplicates();
        eprintln!(
            "group {name}: {} deliveries, {} distinct, {} duplicated bodies (first: {:?}), \
             all received after {elapsed:?}",
            inbox.len(),
            inbox.distinct_bodies().len(),
            duplicates.len(),
            duplicates.iter().take(5).collect::<Vec<_>>()
        );
        assert!(
            done,
            "group {name} did not receive all {MESSAGE_COUNT} messages within {limit:?}: {}; \
             missing (body, queue, offset): {:?}",
            describe_missing(&want, &inbox.distinct_bodies()),
            support::missing_slots("m", &results, &inbox.distinct_bodies())
        );
        assert_eq!(
            inbox.distinct_bodies(),
            want,
            "group {name}: {}",
            describe_missing(&want, &inbox.distinct_bodies())
        );
    }

    consumer_a.shutdown().await;
    consumer_b.shutdown().await;
    let mut producer = producer;
    producer.shutdown().await;
    env.shutdown().await;
}
