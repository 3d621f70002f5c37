//! Two push consumers of rocketmq-client-rust in one clustering group (distinct instance
//! names) split the topic's queues between them: together they receive every message, each
//! receives some, and in steady state no queue is consumed by both.
#![recursion_limit = "512"]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{
    bodies, describe_missing, message, send_all, start_producer, start_push_consumer, Broker,
    ClientEnv,
};

const MESSAGE_COUNT: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_of_one_group_split_the_queues() {
    let broker = Broker::start();
    let env = ClientEnv::new("split");
    let topic = "CompatSplit";
    let group = "compat_split_group";

    // Create the topic (4 queues from TBW102) before the consumers subscribe, so their first
    // rebalance already sees every queue.
    let producer = start_producer(&env, &broker, "compat_producer_split").await;
    let first = send_all(
        &producer,
        vec![message(topic, "TagA", "warmup", "warmup")],
        1,
    )
    .await;
    assert_eq!(first.len(), 1);

    let (mut consumer_1, inbox_1) =
        start_push_consumer(&env, &broker, group, "compat-split-1", topic, "*").await;
    let (mut consumer_2, inbox_2) =
        start_push_consumer(&env, &broker, group, "compat-split-2", topic, "*").await;

    // Steady state: the membership change (NOTIFY_CONSUMER_IDS_CHANGED) has been acted on by
    // both members once the warm-up message has been consumed and a few seconds have passed.
    let warm = inbox_1
        .wait_until(Duration::from_secs(30), |_| {
            inbox_1.len() + inbox_2.len() >= 1
        })
        .await;
    assert!(
        warm,
        "neither member consumed the warm-up message within 30 s"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let steady_from_1 = inbox_1.len();
    let steady_from_2 = inbox_2.len();

    let messages = (0..MESSAGE_COUNT)
        .map(|i| message(topic, "TagA", &format!("key-{i}"), &format!("s-{i}")))
        .collect();
    let results = send_all(&producer, messages, 16).await;
    let queues_sent: BTreeSet<i32> = results
        .iter()
        .map(|r| r.message_queue.as_ref().unwrap().queue_id())
        .collect();

    let want = bodies("s", MESSAGE_COUNT);
    let union_of = |a: &support::Inbox, b: &support::Inbox| -> BTreeSet<String> {
        let mut all = a.distinct_bodies();
        all.extend(b.distinct_bodies());
        all.retain(|body| body != "warmup");
        all
    };
    let done = inbox_1
        .wait_until(Duration::from_secs(60), |_| {
            union_of(&inbox_1, &inbox_2).len() >= MESSAGE_COUNT
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let steady_1: Vec<_> = inbox_1.snapshot().split_off(steady_from_1);
    let steady_2: Vec<_> = inbox_2.snapshot().split_off(steady_from_2);
    let queues_1: BTreeSet<i32> = steady_1.iter().map(|r| r.queue_id).collect();
    let queues_2: BTreeSet<i32> = steady_2.iter().map(|r| r.queue_id).collect();
    let both: Vec<String> = {
        let seen_1: BTreeSet<&String> = steady_1.iter().map(|r| &r.body).collect();
        steady_2
            .iter()
            .filter(|r| seen_1.contains(&r.body))
            .map(|r| r.body.clone())
            .collect()
    };
    eprintln!(
        "sent to queues {queues_sent:?}; member 1 got {} from queues {queues_1:?}, member 2 got \
         {} from queues {queues_2:?}; {} bodies delivered to both",
        steady_1.len(),
        steady_2.len(),
        both.len()
    );

    let all = union_of(&inbox_1, &inbox_2);
    assert!(
        done && all == want,
        "the group did not receive every message: {}; missing (body, queue, offset): {:?}",
        describe_missing(&want, &all),
        support::missing_slots("s", &results, &all)
    );
    assert!(
        !steady_1.is_empty(),
        "member 1 received nothing: the queues were not split"
    );
    assert!(
        !steady_2.is_empty(),
        "member 2 received nothing: the queues were not split"
    );
    assert!(
        queues_1.is_disjoint(&queues_2),
        "in steady state both members consumed queues {:?}",
        queues_1.intersection(&queues_2).collect::<Vec<_>>()
    );
    assert_eq!(
        queues_1
            .union(&queues_2)
            .copied()
            .collect::<BTreeSet<i32>>(),
        queues_sent,
        "together the members consume exactly the queues that were sent to"
    );

    consumer_1.shutdown().await;
    consumer_2.shutdown().await;
    let mut producer = producer;
    producer.shutdown().await;
    env.shutdown().await;
}
