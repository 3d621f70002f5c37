//! rocketmq-client-rust's lite-pull consumer, assigned one queue and seeked to an explicit
//! offset, reads exactly that queue's messages from that offset on, in offset order.
#![recursion_limit = "512"]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use rocketmq_client_rust::DefaultLitePullConsumer;
use support::{message, send_all, start_producer, Broker, ClientEnv};

const MESSAGE_COUNT: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_pull_reads_one_queue_from_a_seeked_offset() {
    let broker = Broker::start();
    let env = ClientEnv::new("lite-pull");
    let topic = "CompatLitePull";

    let producer = start_producer(&env, &broker, "compat_producer_lite").await;
    let messages = (0..MESSAGE_COUNT)
        .map(|i| message(topic, "TagA", &format!("key-{i}"), &format!("p-{i}")))
        .collect();
    let results = send_all(&producer, messages, 4).await;

    // The queue of the first message, and what the broker acknowledged storing there.
    let queue = results[0].message_queue.clone().unwrap();
    let mut in_queue: Vec<(i64, String)> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.message_queue.as_ref().unwrap().queue_id() == queue.queue_id())
        .map(|(i, r)| (r.queue_offset as i64, format!("p-{i}")))
        .collect();
    in_queue.sort();
    assert!(
        in_queue.len() >= 20,
        "queue {} holds only {} of {MESSAGE_COUNT} messages",
        queue.queue_id(),
        in_queue.len()
    );
    let seek_offset = in_queue[in_queue.len() / 2].0;
    let want: Vec<(i64, String)> = in_queue
        .iter()
        .filter(|(offset, _)| *offset >= seek_offset)
        .cloned()
        .collect();

    let consumer = DefaultLitePullConsumer::builder(env.runtime())
        .name_server_addr(broker.namesrv())
        .consumer_group("compat_lite_group")
        .instance_name("compat-lite")
        .auto_commit(false)
        .build()
        .expect("lite pull consumer builds");
    consumer.start().await.expect("lite pull consumer starts");
    // Fetching the topic's queues also loads its route (and so the broker's address) into
    // this consumer's client instance, which `seek` needs for its min/max offset checks.
    let fetched = consumer
        .fetch_message_queues(topic)
        .await
        .expect("fetch the topic's queues");
    let queue = fetched
        .into_iter()
        .find(|q| q.queue_id() == queue.queue_id() && q.broker_name() == queue.broker_name())
        .expect("the name server routes the queue the producer sent to");
    consumer
        .assign(vec![queue.clone()])
        .await
        .expect("assign one queue");
    if let Err(e) = consumer.seek(&queue, seek_offset).await {
        panic!(
            "seek to offset {seek_offset} of {queue:?} failed: {}",
            support::error_chain(&e)
        );
    }

    let mut got: Vec<(i64, String, i32)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want.len() && Instant::now() < deadline {
        for msg in consumer.poll_with_timeout(1_000).await {
            let body = String::from_utf8_lossy(&msg.body().unwrap_or_default()).into_owned();
            got.push((msg.queue_offset(), body, msg.queue_id()));
        }
    }
    // Nothing beyond the tail may arrive.
    for msg in consumer.poll_with_timeout(1_000).await {
        let body = String::from_utf8_lossy(&msg.body().unwrap_or_default()).into_owned();
        got.push((msg.queue_offset(), body, msg.queue_id()));
    }
    eprintln!(
        "queue {} holds {} messages; seeked to offset {seek_offset}; polled {}",
        queue.queue_id(),
        in_queue.len(),
        got.len()
    );

    assert!(
        got.iter()
            .all(|(_, _, queue_id)| *queue_id == queue.queue_id()),
        "polled messages of other queues: {:?}",
        got.iter()
            .filter(|m| m.2 != queue.queue_id())
            .take(5)
            .collect::<Vec<_>>()
    );
    let got: Vec<(i64, String)> = got.into_iter().map(|(o, b, _)| (o, b)).collect();
    assert_eq!(
        got, want,
        "expected exactly the queue's messages from offset {seek_offset}"
    );

    consumer.shutdown().await;
    let mut producer = producer;
    producer.shutdown().await;
    env.shutdown().await;
}
