//! A rocketmq-client-rust push consumer subscribed to "TagA" receives only the TagA messages
//! of a topic that also carries TagB messages.
#![recursion_limit = "512"]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::{
    bodies, describe_missing, message, send_all, start_producer, start_push_consumer, Broker,
    ClientEnv,
};

const PER_TAG: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_subscription_receives_only_its_tag() {
    let broker = Broker::start();
    let env = ClientEnv::new("tags");
    let topic = "CompatTags";

    let producer = start_producer(&env, &broker, "compat_producer_tags").await;
    // Interleaved, so every queue holds both tags.
    let messages = (0..PER_TAG)
        .flat_map(|i| {
            [
                message(topic, "TagA", &format!("a-{i}"), &format!("a-{i}")),
                message(topic, "TagB", &format!("b-{i}"), &format!("b-{i}")),
            ]
        })
        .collect();
    send_all(&producer, messages, 16).await;

    let (mut consumer, inbox) = start_push_consumer(
        &env,
        &broker,
        "compat_tag_group",
        "compat-tags",
        topic,
        "TagA",
    )
    .await;
    let want = bodies("a", PER_TAG);
    let done = inbox
        .wait_until(Duration::from_secs(60), |inbox| {
            inbox.distinct_bodies().len() >= PER_TAG
        })
        .await;
    // Give any wrongly delivered TagB message (they are interleaved after TagA ones) time
    // to arrive too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = inbox.distinct_bodies();
    let wrong_tags: Vec<_> = inbox
        .snapshot()
        .into_iter()
        .filter(|r| r.tags.as_deref() != Some("TagA"))
        .take(10)
        .collect();
    eprintln!(
        "TagA subscriber: {} deliveries, {} distinct, {} duplicated",
        inbox.len(),
        got.len(),
        inbox.duplicates().len()
    );
    assert!(
        wrong_tags.is_empty(),
        "delivered other tags: {wrong_tags:?}"
    );
    assert!(
        done,
        "not every TagA message arrived: {}",
        describe_missing(&want, &got)
    );
    assert_eq!(got, want, "{}", describe_missing(&want, &got));

    consumer.shutdown().await;
    let mut producer = producer;
    producer.shutdown().await;
    env.shutdown().await;
}
