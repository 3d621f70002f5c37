//! The two clients interoperate through ringmq (issue 5): what rocketmq-client-rust
//! produces, ringmq-client consumes.
#![recursion_limit = "512"]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_client::{ConsumeFrom, ConsumeStatus, MessageExt, PushConsumer, PushConsumerConfig};
use support::{bodies, describe_missing, message, send_all, start_producer, Broker, ClientEnv};

const COUNT: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketmq_client_rust_produces_and_ringmq_client_consumes() {
    let broker = Broker::start();
    let env = ClientEnv::new("interop-theirs-producer");
    let topic = "InteropTheirsToOurs";
    let producer = start_producer(&env, &broker, "interop_theirs_producer").await;
    let messages = (0..COUNT)
        .map(|i| message(topic, "T", &format!("t-{i}"), &format!("t-{i}")))
        .collect();
    send_all(&producer, messages, 16).await;
    let mut producer = producer;
    producer.shutdown().await;

    let received: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let sink = Arc::clone(&received);
    let mut config = PushConsumerConfig::new(&broker.namesrv(), "interop_ours_group");
    config.consume_from = ConsumeFrom::FirstOffset;
    let consumer = PushConsumer::new(config, move |msgs: &[MessageExt]| {
        let mut sink = sink.lock().unwrap();
        for m in msgs {
            sink.insert(String::from_utf8_lossy(&m.body).into_owned());
        }
        ConsumeStatus::Success
    });
    consumer.subscribe(topic, "*").unwrap();
    consumer.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().unwrap().len() < COUNT && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer.shutdown().await;
    let got = received.lock().unwrap().clone();
    let want = bodies("t", COUNT);
    assert_eq!(got, want, "{}", describe_missing(&want, &got));
    env.shutdown().await;
}
