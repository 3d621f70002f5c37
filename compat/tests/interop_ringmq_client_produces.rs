//! The two clients interoperate through ringmq (issue 5): what ringmq-client produces,
//! rocketmq-client-rust consumes.
#![recursion_limit = "512"]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use ringmq_client::{Message, Producer, ProducerConfig};
use support::{bodies, describe_missing, start_push_consumer, Broker, ClientEnv};

const COUNT: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringmq_client_produces_and_rocketmq_client_rust_consumes() {
    let broker = Broker::start();
    let producer = Producer::start(ProducerConfig::new(&broker.namesrv(), "interop_ours"))
        .await
        .unwrap();
    let topic = "InteropOursToTheirs";
    for i in 0..COUNT {
        let msg = Message::new(topic, format!("o-{i}").into_bytes()).with_tags("T");
        producer.send(msg).await.unwrap();
    }
    producer.shutdown().await;

    let env = ClientEnv::new("interop-theirs");
    let (mut consumer, inbox) =
        start_push_consumer(&env, &broker, "interop_theirs_group", "theirs", topic, "*").await;
    let want = bodies("o", COUNT);
    let done = inbox
        .wait_until(Duration::from_secs(60), |inbox| {
            inbox.distinct_bodies().len() >= COUNT
        })
        .await;
    let got = inbox.distinct_bodies();
    assert!(done, "{}", describe_missing(&want, &got));
    assert_eq!(got, want);
    consumer.shutdown().await;
    env.shutdown().await;
}
