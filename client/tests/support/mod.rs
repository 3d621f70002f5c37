//! Shared by the client's integration tests: the real `ringmq-server` binary, started on port 0
//! with a temporary store by the shared test kit (`ringmq-testkit`), and scripted peers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod scripted;

pub use ringmq_testkit::Broker;

/// Starts a broker with an embedded name server on a fresh store (see `ringmq_testkit`).
pub fn start_broker(extra_args: &[&str]) -> Broker {
    Broker::start(extra_args)
}

/// Creates `topic` with `queues` queues on the broker's cluster through `admin` and waits
/// (at most 10 s) until the name server routes it.
pub async fn create_routed_topic(admin: &ringmq_client::Admin, topic: &str, queues: i32) {
    let cluster = admin
        .cluster_info()
        .await
        .unwrap()
        .cluster_addr_table
        .keys()
        .next()
        .unwrap()
        .clone();
    admin
        .create_topic(
            &cluster,
            &ringmq_client::admin::TopicSpec::new(topic, queues),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while admin.topic_route(topic).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "topic {topic} was never routed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
